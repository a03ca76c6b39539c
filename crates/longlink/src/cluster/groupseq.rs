//! Numbered group broadcasts: each node numbers the group broadcasts it publishes, in the
//! order it publishes them, in two NATS headers: `Ll-Src` (the publisher: a random number
//! drawn when the node connects, so that a restarted node with the same id counts afresh) and
//! `Ll-Seq` (1, 2, ...). NATS keeps one publisher's messages in order for every subscriber,
//! so a gate that has delivered a publisher's number `n` has seen every one before it. A
//! session handed over between gates carries, per publisher, the last number its former gate
//! delivered to it; the new gate delivers exactly what comes after (`cluster::gate::feed`).

use std::sync::{Mutex, MutexGuard};

use async_nats::HeaderMap;

/// The header naming the publisher.
const SRC: &str = "Ll-Src";
/// The header numbering the broadcast.
const SEQ: &str = "Ll-Seq";

/// One node's numbering of its group broadcasts.
pub(crate) struct GroupSeq {
    /// This connection's publisher number.
    src: u64,
    /// The last number given; held while a broadcast is queued, so that numbers go out in
    /// order.
    last: Mutex<u64>,
}

impl GroupSeq {
    pub(crate) fn new() -> GroupSeq {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        GroupSeq {
            src: u64::from_le_bytes(bytes),
            last: Mutex::new(0),
        }
    }

    /// Runs `queue` with the next broadcast's headers, under the numbering's lock: what
    /// `queue` queues goes out in the order of the numbers.
    pub(crate) fn stamp<R>(&self, queue: impl FnOnce(HeaderMap) -> R) -> R {
        let mut last: MutexGuard<'_, u64> = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last += 1;
        let mut headers = HeaderMap::new();
        headers.insert(SRC, self.src.to_string().as_str());
        headers.insert(SEQ, last.to_string().as_str());
        queue(headers)
    }
}

/// The header naming the one connection a broadcast is not for: `"<conn> <gate>"`.
const EXCEPT: &str = "Ll-Except";

/// Names connection `conn` of gate `gate` as the one member the broadcast is not for.
pub(crate) fn except(headers: &mut HeaderMap, gate: &str, conn: u64) {
    headers.insert(EXCEPT, format!("{conn} {gate}").as_str());
}

/// The connection of gate `gate` a broadcast is not for, if its headers name one there.
pub(crate) fn except_here(headers: Option<&HeaderMap>, gate: &str) -> Option<u64> {
    let (conn, at) = headers?.get(EXCEPT)?.as_str().split_once(' ')?;
    (at == gate).then(|| conn.parse().ok()).flatten()
}

/// A group broadcast's `(publisher, number)`, if it carries them.
pub(crate) fn read(headers: Option<&HeaderMap>) -> Option<(u64, u64)> {
    let headers = headers?;
    let src = headers.get(SRC)?.as_str().parse().ok()?;
    let seq = headers.get(SEQ)?.as_str().parse().ok()?;
    Some((src, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_each_other_and_read_back() {
        let s = GroupSeq::new();
        let a = s.stamp(|h| read(Some(&h)));
        let b = s.stamp(|h| read(Some(&h)));
        assert_eq!(a, Some((s.src, 1)));
        assert_eq!(b, Some((s.src, 2)));
        assert_eq!(read(None), None);
        let mut bad = HeaderMap::new();
        bad.insert(SRC, "x");
        bad.insert(SEQ, "1");
        assert_eq!(read(Some(&bad)), None);
    }

    #[test]
    fn an_exception_is_read_on_its_gate_only() {
        let mut h = HeaderMap::new();
        assert_eq!(except_here(Some(&h), "g1"), None);
        except(&mut h, "g1", 42);
        assert_eq!(except_here(Some(&h), "g1"), Some(42));
        assert_eq!(except_here(Some(&h), "g2"), None);
        assert_eq!(except_here(None, "g1"), None);
        h.insert(EXCEPT, "x g1");
        assert_eq!(except_here(Some(&h), "g1"), None);
    }
}
