//! Where sessions went between gates, by the token a client may still hold: a client whose
//! `LL_Resumed` was lost (its socket cut after `LL_Resume`, or its patience ran out while the
//! session moved) comes back with the token it resumed with, which names the gate the session
//! left. That gate remembers where it handed the session ([`Moved::gone`]), and the gate that
//! took it accepts that token for it ([`Moved::took`]) until the client shows it has the new
//! one or the session ends; both for `resume_window`.

use std::collections::{HashMap, VecDeque};

use subtle::ConstantTimeEq;

use super::{Resumption, parse, random_secret, token_of};
use crate::agent::Agent;

/// A token's gate and session key: `("gate2", 0x2a)` for `gate2.000000000000002a…`.
type Named = (String, u64);

/// The moves this gate remembers.
#[derive(Default)]
pub(crate) struct Moved {
    /// A token of a session handed over from here → the gate it went to, until when.
    gone: HashMap<Named, (String, u64)>,
    /// `(when it is forgotten, token)`, oldest first.
    gone_order: VecDeque<(u64, Named)>,
    /// The token a session was taken over with (its secret) → the session's key here.
    taken: HashMap<Named, ([u8; 16], u64)>,
    /// A session's key here → the token it was taken over with.
    taken_by: HashMap<u64, Named>,
}

/// A token's gate, key and secret (`<node>.<key: 16 hex><secret: 32 hex>`).
pub(crate) fn split(token: &str) -> Option<(&str, u64, [u8; 16])> {
    let (node, rest) = token.rsplit_once('.')?;
    let (key, secret) = parse(rest)?;
    Some((node, key, secret))
}

impl Moved {
    /// The session `key` here was taken over from another gate with `token`: that token
    /// finds it here too, until [`Moved::confirmed`].
    pub(crate) fn took(&mut self, token: &str, key: u64) {
        let Some((node, old, secret)) = split(token) else {
            return;
        };
        let named = (node.to_owned(), old);
        self.taken.insert(named.clone(), (secret, key));
        if let Some(before) = self.taken_by.insert(key, named) {
            self.taken.remove(&before);
        }
    }

    /// The key here of the session taken over with `token`, if its secret matches.
    pub(crate) fn adopted(&self, token: &str) -> Option<u64> {
        let (node, old, secret) = split(token)?;
        let (kept, key) = self.taken.get(&(node.to_owned(), old))?;
        bool::from(kept.ct_eq(&secret)).then_some(*key)
    }

    /// The client of session `key` has the new token (or the session ended here): the one
    /// it was taken over with no longer finds it.
    pub(crate) fn confirmed(&mut self, key: u64) {
        if let Some(named) = self.taken_by.remove(&key) {
            self.taken.remove(&named);
        }
    }

    /// The session `key` (its tokens named `node`) went to the gate `to`; a resume with its
    /// token, or with the one it was taken over with, is sent there until `until_ms`.
    pub(crate) fn gone(&mut self, node: &str, key: u64, to: &str, now_ms: u64, until_ms: u64) {
        self.forget_until(now_ms);
        let mut names = vec![(node.to_owned(), key)];
        if let Some(named) = self.taken_by.remove(&key) {
            self.taken.remove(&named);
            names.push(named);
        }
        for named in names {
            self.gone.insert(named.clone(), (to.to_owned(), until_ms));
            self.gone_order.push_back((until_ms, named));
        }
    }

    /// The gate the session of `token` went to, if it left this one.
    pub(crate) fn gone_to(&mut self, token: &str, now_ms: u64) -> Option<String> {
        self.forget_until(now_ms);
        let (node, key, _) = split(token)?;
        self.gone
            .get(&(node.to_owned(), key))
            .map(|(to, _)| to.clone())
    }

    fn forget_until(&mut self, now_ms: u64) {
        while let Some((until, _)) = self.gone_order.front() {
            if *until > now_ms {
                break;
            }
            // A token that went again later keeps its newer entry.
            if let Some((_, named)) = self.gone_order.pop_front()
                && self
                    .gone
                    .get(&named)
                    .is_some_and(|(_, until)| *until <= now_ms)
            {
                self.gone.remove(&named);
            }
        }
    }
}

impl Resumption {
    /// `agent`'s session was just taken over from another gate with `token`.
    pub(crate) fn took(&self, token: &str, agent: &Agent) {
        self.lock_moved().took(token, agent.id());
    }

    /// Whether `token` names a session taken over by this gate (and not yet confirmed): a
    /// resume with it is served here, not asked of the gate it names.
    pub(crate) fn adopted(&self, token: &str) -> bool {
        self.lock_moved().adopted(token).is_some()
    }

    /// The session of a token this gate took it over with: the agent and its next token.
    pub(super) fn take_adopted(&self, token: &str) -> Option<(Agent, String)> {
        let key = self.lock_moved().adopted(token)?;
        let mut table = self.lock();
        let live = table.live.get_mut(&key)?;
        live.secret = random_secret();
        let next = format!("{}{}", self.prefix, token_of(key, &live.secret));
        Some((live.agent.clone(), next))
    }

    /// `agent`'s session was handed over to the gate `to`: a resume here with any token it
    /// may still be known by is sent there, for `resume_window`.
    pub(crate) fn gone(&self, agent: &Agent, to: &str, now_ms: u64) {
        let node = self.prefix.trim_end_matches('.');
        let until = now_ms + self.window.as_millis() as u64;
        self.lock_moved().gone(node, agent.id(), to, now_ms, until);
    }

    /// The gate the session of `token` was handed over to, if it left this one.
    pub(crate) fn gone_to(&self, token: &str, now_ms: u64) -> Option<String> {
        self.lock_moved().gone_to(token, now_ms)
    }

    pub(super) fn lock_moved(&self) -> std::sync::MutexGuard<'_, Moved> {
        self.moved.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "gate1.000000000000002a0123456789abcdef0123456789abcdef";

    #[test]
    fn a_taken_token_finds_its_session_until_confirmed() {
        let mut m = Moved::default();
        m.took(T, 7);
        assert_eq!(m.adopted(T), Some(7));
        let wrong = T.replace("cdef0123", "cdef0124");
        assert_eq!(m.adopted(&wrong), None);
        m.confirmed(7);
        assert_eq!(m.adopted(T), None);
    }

    #[test]
    fn a_gone_session_is_found_by_both_tokens_for_the_window() {
        let mut m = Moved::default();
        m.took(T, 7);
        m.gone("gate2", 7, "gate3", 0, 100);
        let own = "gate2.00000000000000070123456789abcdef0123456789abcdef";
        assert_eq!(m.gone_to(own, 50).as_deref(), Some("gate3"));
        assert_eq!(m.gone_to(T, 50).as_deref(), Some("gate3"));
        assert_eq!(m.adopted(T), None);
        assert_eq!(m.gone_to(T, 100), None);
        assert_eq!(m.gone_to("gate2.nonsense", 0), None);
    }
}
