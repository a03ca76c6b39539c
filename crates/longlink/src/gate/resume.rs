//! [`Resumption`]: a gate's resumable sessions (`resume_window` on): their tokens, the
//! tombstones of ended ones (so a late resume hears why), and the protocol's messages in the
//! gate's encoding, and [`claim`], which takes a session from the task that serves it. The
//! connection's side of it (start, resume, acknowledge, wait without a socket) is in
//! `conn::session`.
//!
//! A token is 48 hex digits: the session's key (the agent's id, 16 digits) and 128 bits from
//! the operating system's random source (32 digits); in a cluster, after the id of the gate
//! node that holds the session and a dot, so that another gate can ask that one for it. It is compared in constant time and
//! replaced at every resume: an old token is refused (`"replaced"`) — except the one just
//! replaced, until the client shows it has the new one (it sends anything on the new
//! socket): a cut that loses the `LL_Resumed` answer must not lose the session. `moved`
//! does the same across gates.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use longlink_wire::resume::{
    LlAck, LlMove, LlResume, LlResumeRefused, LlResumed, LlSession, LlSessionStart, RefuseReason,
};
use subtle::ConstantTimeEq;

use super::link::ClusterLink;
use crate::agent::Agent;
use crate::agent::outbox::next_socket;
use crate::codec::Codec;
use crate::processor::Decoded;
use moved::Moved;

mod moved;

/// A protocol message a client sent.
pub(crate) enum Protocol {
    SessionStart,
    Resume(LlResume),
    Ack(u64),
}

/// A live session's entry.
struct Live {
    agent: Agent,
    secret: [u8; 16],
    /// The token before the last resume, until the client has shown it got the new one.
    previous: Option<[u8; 16]>,
}

#[derive(Default)]
struct Table {
    live: HashMap<u64, Live>,
    /// Ended sessions and why, until `window` after their end.
    ended: HashMap<u64, RefuseReason>,
    /// `(when it is forgotten, key)`, oldest first.
    ended_order: VecDeque<(u64, u64)>,
}

/// The gate's resumable sessions.
pub(crate) struct Resumption {
    /// `resume_window`.
    pub(crate) window: Duration,
    /// `resume_buffer`.
    pub(crate) buffer: usize,
    codec: Arc<Codec>,
    /// `"<node id>."` in a cluster, before every token; empty without one.
    prefix: String,
    /// The registry indexes of the three messages a client sends.
    start: usize,
    resume: usize,
    ack: usize,
    table: Mutex<Table>,
    /// Sessions handed over to or from other gates, by the tokens their clients may hold.
    moved: Mutex<Moved>,
}

impl Resumption {
    /// `codec` has the protocol's messages registered.
    pub(crate) fn new(
        window: Duration,
        buffer: usize,
        codec: Arc<Codec>,
        node: Option<&str>,
    ) -> Option<Resumption> {
        let r = codec.registry();
        Some(Resumption {
            window,
            buffer,
            prefix: node.map(|n| format!("{n}.")).unwrap_or_default(),
            start: r.index_of::<LlSessionStart>()?,
            resume: r.index_of::<LlResume>()?,
            ack: r.index_of::<LlAck>()?,
            codec,
            table: Mutex::default(),
            moved: Mutex::default(),
        })
    }

    /// Whether the message at `index` is one of the protocol's (incoming) ones.
    pub(crate) fn is_protocol(&self, index: usize) -> bool {
        index == self.start || index == self.resume || index == self.ack
    }

    /// The protocol message in `decoded`, if it is one.
    pub(crate) fn protocol(&self, decoded: Decoded) -> Option<Protocol> {
        let index = decoded.index();
        let value = decoded.into_typed()?;
        if index == self.start {
            Some(Protocol::SessionStart)
        } else if index == self.resume {
            value
                .downcast::<LlResume>()
                .ok()
                .map(|m| Protocol::Resume(*m))
        } else if index == self.ack {
            value.downcast::<LlAck>().ok().map(|m| Protocol::Ack(m.seq))
        } else {
            None
        }
    }

    /// Makes `agent`'s session resumable; its first token.
    pub(crate) fn start(&self, agent: &Agent) -> String {
        let secret = random_secret();
        self.lock().live.insert(
            agent.id(),
            Live {
                agent: agent.clone(),
                secret,
                previous: None,
            },
        );
        format!("{}{}", self.prefix, token_of(agent.id(), &secret))
    }

    /// The gate node that holds the session of `token`, when it is another one than this.
    pub(crate) fn holder<'t>(&self, token: &'t str) -> Option<&'t str> {
        let (node, _) = token.rsplit_once('.')?;
        (format!("{node}.") != self.prefix).then_some(node)
    }

    /// The session of `token`, with its next token (the given one is dead from now on), or
    /// why there is none.
    pub(crate) fn take(&self, token: &str, now_ms: u64) -> Result<(Agent, String), RefuseReason> {
        if let Some(found) = self.take_adopted(token) {
            return Ok(found);
        }
        let token = token
            .strip_prefix(self.prefix.as_str())
            .ok_or(RefuseReason::Unknown)?;
        let (key, secret) = parse(token).ok_or(RefuseReason::Unknown)?;
        let mut table = self.lock();
        table.forget_until(now_ms);
        if let Some(live) = table.live.get_mut(&key) {
            let current = same(&live.secret, &secret);
            let unconfirmed = live.previous.is_some_and(|p| same(&p, &secret));
            if !current && !unconfirmed {
                return Err(RefuseReason::Replaced);
            }
            if current {
                live.previous = Some(live.secret);
            }
            live.secret = random_secret();
            let next = format!("{}{}", self.prefix, token_of(key, &live.secret));
            return Ok((live.agent.clone(), next));
        }
        Err(table
            .ended
            .get(&key)
            .copied()
            .unwrap_or(RefuseReason::Unknown))
    }

    /// The client of `agent`'s session sent something on the socket it resumed on: it has
    /// the new token, the old one is dead.
    pub(crate) fn confirm(&self, agent: &Agent) {
        if let Some(live) = self.lock().live.get_mut(&agent.id()) {
            live.previous = None;
        }
        self.lock_moved().confirmed(agent.id());
    }

    /// The session of `agent` ended; a later resume hears `why` (for `window`), or
    /// `"unknown"` with `None`.
    pub(crate) fn ended(&self, agent: &Agent, why: Option<RefuseReason>, now_ms: u64) {
        self.lock_moved().confirmed(agent.id());
        let mut table = self.lock();
        if table.live.remove(&agent.id()).is_none() {
            return;
        }
        table.forget_until(now_ms);
        if let Some(why) = why {
            table.ended.insert(agent.id(), why);
            let until = now_ms + self.window.as_millis() as u64;
            table.ended_order.push_back((until, agent.id()));
        }
    }

    /// The agents of every live session.
    pub(crate) fn agents(&self) -> Vec<Agent> {
        self.lock().live.values().map(|l| l.agent.clone()).collect()
    }

    /// `LL_Session`.
    pub(crate) fn session(&self, token: String) -> Option<Bytes> {
        let window_s = u32::try_from(self.window.as_secs()).unwrap_or(u32::MAX);
        self.encode(&LlSession { token, window_s })
    }

    /// `LL_Resumed`.
    pub(crate) fn resumed(&self, token: String, last_seq: u64) -> Option<Bytes> {
        self.encode(&LlResumed { token, last_seq })
    }

    /// `LL_ResumeRefused`.
    pub(crate) fn refused(&self, why: RefuseReason) -> Option<Bytes> {
        self.encode(&LlResumeRefused {
            reason: why.as_str().to_owned(),
        })
    }

    /// `LL_Move`.
    pub(crate) fn moving(&self, after_ms: u32) -> Option<Bytes> {
        self.encode(&LlMove { after_ms })
    }

    /// `LL_Ack`.
    pub(crate) fn ack(&self, seq: u64) -> Option<Bytes> {
        self.encode(&LlAck { seq })
    }

    fn encode<T: 'static>(&self, msg: &T) -> Option<Bytes> {
        match self.codec.encode(msg) {
            Ok(encoded) => Some(encoded.bytes().clone()),
            Err(e) => {
                tracing::error!(error = %e, "resume protocol message not encoded");
                None
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Claims `session` for a new socket and waits until the task that served it has stopped
/// (a half-open socket's at once; one blocked on a full module mailbox once there is room),
/// at most `close_timeout`. In a `cluster`, a hand-over of the session to another gate still
/// under way is given up first.
pub(crate) async fn claim(
    session: &Agent,
    cluster: Option<&dyn ClusterLink>,
    close_timeout: Duration,
) -> Result<(NonZeroU64, tokio::sync::OwnedMutexGuard<()>), RefuseReason> {
    let theirs = session.local().ok_or(RefuseReason::Unknown)?;
    if let Some(cluster) = cluster {
        cluster.give_up_handover(session.id()).await;
    }
    let socket = next_socket();
    let driving = theirs.outbox.claim(socket).ok_or(RefuseReason::Unknown)?;
    let Ok(guard) = tokio::time::timeout(close_timeout, driving.lock_owned()).await else {
        tracing::debug!(
            conn = session.id(),
            "resume: the former socket's task did not stop; session ended"
        );
        session.destroy();
        return Err(RefuseReason::Unknown);
    };
    Ok((socket, guard))
}

/// A session claimed for a hand-over to another gate, the task that served it stopped.
pub(crate) struct Claimed {
    agent: Agent,
    socket: NonZeroU64,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Claimed {
    /// `agent`'s session, claimed for `socket`, the task that served it stopped (`guard`).
    pub(crate) fn new(
        agent: Agent,
        socket: NonZeroU64,
        guard: tokio::sync::OwnedMutexGuard<()>,
    ) -> Claimed {
        Claimed {
            agent,
            socket,
            _guard: guard,
        }
    }
}

impl Claimed {
    /// The session's agent on this gate.
    pub(crate) fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The number of the claim (the socket that claimed the session).
    pub(crate) fn socket(&self) -> NonZeroU64 {
        self.socket
    }

    /// The agent, the claim's number, and the lock held while it lasts.
    pub(crate) fn into_parts(self) -> (Agent, NonZeroU64, tokio::sync::OwnedMutexGuard<()>) {
        (self.agent, self.socket, self._guard)
    }
}

impl Table {
    /// Forgets the tombstones whose time is up.
    fn forget_until(&mut self, now_ms: u64) {
        while let Some(&(until, key)) = self.ended_order.front() {
            if until > now_ms {
                break;
            }
            self.ended_order.pop_front();
            self.ended.remove(&key);
        }
    }
}

fn random_secret() -> [u8; 16] {
    let mut secret = [0u8; 16];
    // The operating system's source does not fail on the platforms tokio runs on; if it
    // ever did, a token from the clock and a counter would be guessable: refuse to go on.
    getrandom::fill(&mut secret).expect("the operating system's random source failed");
    secret
}

fn token_of(key: u64, secret: &[u8; 16]) -> String {
    use std::fmt::Write;
    let mut s = format!("{key:016x}");
    for b in secret {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn parse(token: &str) -> Option<(u64, [u8; 16])> {
    if token.len() != 48 || !token.is_ascii() {
        return None;
    }
    let key = u64::from_str_radix(&token[..16], 16).ok()?;
    let mut secret = [0u8; 16];
    for (i, b) in secret.iter_mut().enumerate() {
        *b = u8::from_str_radix(&token[16 + 2 * i..18 + 2 * i], 16).ok()?;
    }
    Some((key, secret))
}

/// Constant-time equality (`subtle`'s): the time does not depend on where the secrets differ.
fn same(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_back_and_differ() {
        let a = random_secret();
        let b = random_secret();
        assert_ne!(a, b);
        let t = token_of(7, &a);
        assert_eq!(t.len(), 48);
        assert_eq!(parse(&t), Some((7, a)));
        assert!(same(&a, &a) && !same(&a, &b));
        for bad in [
            "",
            "zz",
            &t[..47],
            &format!("{}g", &t[..47]),
            &t.replace('0', "é"),
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
