//! A gate's feed of cluster group broadcasts, and how a session moving between gates gets
//! each of them exactly once.
//!
//! Every gate hears every group broadcast (`ll.grp.>`), numbered by its publisher
//! (`cluster::groupseq`), and writes it to its own members. `marks` is, per publisher, the
//! last number this gate has delivered: everything before it has been delivered too (NATS
//! keeps one publisher's order). A session moving from gate A to gate B:
//!
//! 1. B, before it asks A, *stages*: from now on it logs every broadcast it hears, and the
//!    new connection is skipped by live deliveries; it sends its marks (`after`) with the ask.
//! 2. A, at the first commit, waits until it has delivered at least as far as B's marks
//!    (bounded), then *cuts* the session off its groups: what comes for it from then on is
//!    held aside; A's marks at that moment go back with `Done`.
//! 3. B, at `Done`, writes from its log every broadcast to the session's groups numbered past
//!    A's marks, joins the groups, and from then on drops any broadcast numbered up to A's
//!    marks that reaches it late (B was behind A).
//!
//! Nothing is missed (B logs from before A's cut, since A waited for B's marks) and nothing
//! comes twice (A delivered up to its marks, B only past them). A hand-over that fails gives
//! A's held messages to the session, in order, and the cut ends. Broadcasts without numbers
//! (from an older node) are delivered as before, without these guarantees.
//!
//! Numbered broadcasts are delivered in their publisher's order, once (`order`): one that
//! comes after a missing number waits until the missing ones are sent again, and what is
//! lost for good is reported to the members here.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::order::{Fetch, Order, Ready};
use crate::agent::Agent;
use crate::cluster::groupseq::Num;
use crate::cluster::wire::ReplayAnswer;
use crate::codec::Encoded;

/// Per publisher, the last number.
pub(super) type Marks = HashMap<u64, u64>;

/// A broadcast heard while some session was staging.
struct Logged {
    token: String,
    num: Option<(u64, u64)>,
    msg: Encoded,
}

/// Where a broadcast goes: the members of a group token here, and a member's agent.
pub(super) struct Targets<'a> {
    pub(super) members: &'a dyn Fn(&str) -> Vec<u64>,
    pub(super) agent: &'a dyn Fn(u64) -> Option<Agent>,
}

/// What the gate does next: requests to make, and how many broadcasts are lost for good.
#[derive(Default)]
pub(super) struct Next {
    pub(super) fetch: Option<Fetch>,
    pub(super) lost: u64,
}

#[derive(Default)]
struct State {
    /// Per publisher, what has been delivered, and what waits for a missing number.
    order: Order,
    /// Every broadcast heard since the oldest staging session began (while one stages);
    /// `base` is the index of its first.
    log: VecDeque<Logged>,
    base: usize,
    /// Where each staging session's part of the log begins: index -> how many.
    stagers: BTreeMap<usize, usize>,
    /// New connections taking a session over: live deliveries skip them.
    staging: HashSet<u64>,
    /// Sessions being handed away: their broadcasts are held here.
    cut: HashMap<u64, Vec<Encoded>>,
    /// Sessions taken over: a broadcast numbered up to the mark is dropped.
    filters: HashMap<u64, Marks>,
}

/// One gate's feed.
#[derive(Default)]
pub(super) struct Feed {
    state: Mutex<State>,
}

/// A staging session's place in the log, and the marks sent with the ask.
pub(super) struct Stage {
    conn: u64,
    from: usize,
    pub(super) after: Vec<(u64, u64)>,
}

impl Feed {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One broadcast heard for group `token`, numbered `num`: delivered in its publisher's
    /// order (now, or once the numbers before it are here) to each of its members here
    /// that is not staging, cut or filtered out. The members are read under the feed's
    /// lock: a session taken over joins its groups under it too.
    pub(super) fn deliver(
        &self,
        token: &str,
        num: Option<Num>,
        msg: &Encoded,
        to: &Targets<'_>,
    ) -> Next {
        let mut s = self.lock();
        match num {
            None => {
                write(&mut s, token, None, msg, to);
                Next::default()
            }
            Some(num) => {
                let ready = s.order.heard(num, token, msg);
                release(&mut s, ready, to)
            }
        }
    }

    /// Publisher `src`'s answer (`None`: none came in time) to a request for what this gate
    /// missed.
    pub(super) fn replayed(
        &self,
        src: u64,
        answer: Option<ReplayAnswer>,
        to: &Targets<'_>,
    ) -> Next {
        let mut s = self.lock();
        let gone = answer.as_ref().is_none_or(|a| !a.known);
        let ready = s.order.answered(src, answer);
        let next = release(&mut s, ready, to);
        if gone {
            s.order.forget_if_idle(src);
        }
        next
    }

    /// This gate's NATS connection came back: what to ask every publisher.
    pub(super) fn sweep(&self) -> Vec<Fetch> {
        self.lock().order.sweep()
    }

    /// Step 1, at the new gate: `conn` stages.
    pub(super) fn stage(&self, conn: u64) -> Stage {
        let mut s = self.lock();
        let from = s.base + s.log.len();
        *s.stagers.entry(from).or_default() += 1;
        s.staging.insert(conn);
        Stage {
            conn,
            from,
            after: s.order.marks().into_iter().collect(),
        }
    }

    /// Step 3, at the new gate: the session of `agent` is here, cut at `marks` by its former
    /// gate, in the groups `groups` (tokens, with those it joined here meanwhile): what it
    /// missed is written, and it joins the live deliveries (through `join`).
    pub(super) fn taken(
        &self,
        stage: Stage,
        agent: &Agent,
        groups: &[String],
        marks: &[(u64, u64)],
        join: impl Fn(&str),
        joined_here: impl Fn() -> Vec<String>,
    ) {
        let mut s = self.lock();
        let marks: Marks = marks.iter().copied().collect();
        let mut groups: HashSet<String> = groups.iter().cloned().collect();
        groups.extend(joined_here());
        let start = stage.from.saturating_sub(s.base);
        for logged in s.log.iter().skip(start) {
            let past = match logged.num {
                Some((src, seq)) => seq > marks.get(&src).copied().unwrap_or(0),
                None => true,
            };
            if past && groups.contains(&logged.token) {
                let _ = agent.write_encoded(&logged.msg);
            }
        }
        for group in &groups {
            join(group);
        }
        if !marks.is_empty() {
            s.filters.insert(stage.conn, marks);
        }
        unstage(&mut s, &stage);
    }

    /// The new gate's hand-over failed (or was refused): `stage` ends.
    pub(super) fn unstage(&self, stage: Stage) {
        unstage(&mut self.lock(), &stage);
    }

    /// Step 2, at the holder: waits (at most `wait`) until this gate has delivered as far as
    /// `after` (for the publishers it has heard from), then cuts `agent` off its groups.
    /// Gives the marks of the cut.
    pub(super) async fn cut(&self, agent: &Agent, after: &[(u64, u64)], wait: Duration) -> Marks {
        let conn = agent.id();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            {
                let mut s = self.lock();
                // A publisher this gate has never heard from has sent nothing since it
                // subscribed (what came before reached the session where it was then), or
                // its first messages since are still on their way here: not waited for, as
                // a gate younger than the new one would otherwise wait for every publisher
                // that fell silent before it started.
                let behind = after
                    .iter()
                    .any(|(src, seq)| s.order.mark(*src).is_some_and(|mark| mark < *seq));
                if !behind || tokio::time::Instant::now() >= deadline {
                    if behind {
                        crate::agent::logged::conn_event!(
                            WARN,
                            agent,
                            "group broadcasts did not catch up with the new gate's; the session may miss some"
                        );
                    }
                    s.cut.entry(conn).or_default();
                    return s.order.marks();
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The session of `conn` left this gate: what was held for it is dropped (the new gate
    /// has it).
    pub(super) fn gone(&self, conn: u64) {
        let mut s = self.lock();
        s.cut.remove(&conn);
        s.filters.remove(&conn);
    }

    /// A hand-over of `agent`'s session failed: what was held for it is written to it, in
    /// order, and it is no longer cut.
    pub(super) fn uncut(&self, agent: &Agent) {
        let mut s = self.lock();
        for msg in s.cut.remove(&agent.id()).unwrap_or_default() {
            let _ = agent.write_encoded(&msg);
        }
    }
}

/// Writes what `ready` makes due; the rest of it is for the caller.
fn release(s: &mut State, ready: Ready, to: &Targets<'_>) -> Next {
    for (num, token, msg) in ready.due {
        write(s, &token, Some((num.src, num.seq)), &msg, to);
    }
    Next {
        fetch: ready.fetch,
        lost: ready.lost,
    }
}

/// One broadcast, in its order, to the members of `token` here (logged for the sessions
/// staging).
fn write(s: &mut State, token: &str, num: Option<(u64, u64)>, msg: &Encoded, to: &Targets<'_>) {
    let members = (to.members)(token);
    if !s.stagers.is_empty() {
        s.log.push_back(Logged {
            token: token.to_owned(),
            num,
            msg: msg.clone(),
        });
    }
    for conn in members {
        if s.staging.contains(&conn) {
            continue;
        }
        if let Some(held) = s.cut.get_mut(&conn) {
            held.push(msg.clone());
            continue;
        }
        if filtered(&mut s.filters, conn, num) {
            continue;
        }
        if let Some(agent) = (to.agent)(conn) {
            let _ = agent.write_encoded(msg);
        }
    }
}

/// `stage` is over; the log keeps only what a session still staging may need.
fn unstage(s: &mut State, stage: &Stage) {
    s.staging.remove(&stage.conn);
    if let Some(n) = s.stagers.get_mut(&stage.from) {
        *n -= 1;
        if *n == 0 {
            s.stagers.remove(&stage.from);
        }
    }
    let keep_from = s
        .stagers
        .keys()
        .next()
        .copied()
        .unwrap_or(s.base + s.log.len());
    let drop = keep_from.saturating_sub(s.base).min(s.log.len());
    s.log.drain(..drop);
    s.base += drop;
}

/// Whether the filter of `conn` drops broadcast `num` (numbered up to its publisher's mark);
/// a publisher's mark is forgotten once passed.
fn filtered(filters: &mut HashMap<u64, Marks>, conn: u64, num: Option<(u64, u64)>) -> bool {
    let (Some(marks), Some((src, seq))) = (filters.get_mut(&conn), num) else {
        return false;
    };
    let Some(&mark) = marks.get(&src) else {
        return false;
    };
    if seq <= mark {
        return true;
    }
    marks.remove(&src);
    if marks.is_empty() {
        filters.remove(&conn);
    }
    false
}
