//! Numbered group broadcasts (and commands to a gate): each node numbers the group
//! broadcasts it publishes, in the order it publishes them, in three NATS headers: `Ll-Src` (the publisher: a random number
//! drawn when the node connects, so that a restarted node with the same id counts afresh),
//! `Ll-Seq` (1, 2, ...) and `Ll-Node` (the node's id, where a gate asks for what it missed).
//! NATS keeps one publisher's messages in order for every subscriber; a gate delivers them
//! in that order and, when a number is missing (it was not subscribed while NATS restarted,
//! say), asks the node for the missing ones (`cluster::replay`) before it goes on. So a gate
//! that has delivered a publisher's number `n` has delivered (or reported lost) every one
//! before it. A session handed over between gates carries, per publisher, the last number
//! its former gate delivered to it; the new gate delivers exactly what comes after
//! (`cluster::gate::feed`).
//!
//! What a node sends to one gate's own subject (`ToGate` commands: pushes, logins, group
//! changes, acknowledgements...) is numbered the same way, one count per gate, and kept and
//! asked for again the same way: a gate applies each node's commands in order, once. The
//! number is the NATS message's: a batch of commands (`cluster::coalesce`) is numbered,
//! kept and sent again whole. A gate reports, about once a second, the last number it has
//! applied (`P.delivered.<node>`, `cluster::gate::delivered`): the node keeps only what
//! comes after it, so what it holds for a gate is what that gate may still miss, not its
//! last 4 MiB of commands (`longlink_cluster_commands_kept_bytes`).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use async_nats::HeaderMap;
use bytes::Bytes;

use super::wire::{ANSWER_BYTES, ReplayAnswer, ReplayRequest, Replayed};
use crate::metrics::CachedGauge;

/// The header naming the publisher.
const SRC: &str = "Ll-Src";
/// The header numbering the broadcast.
const SEQ: &str = "Ll-Seq";
/// The header naming the publishing node.
const NODE: &str = "Ll-Node";

/// How many of its last broadcasts a node keeps for gates that missed them (and of its
/// last NATS messages of commands to each gate).
pub(crate) const KEPT: usize = 4096;
/// At most this many payload bytes are kept of the broadcasts (the oldest go first).
const KEPT_BYTES: usize = 16 * 1024 * 1024;
/// At most this many payload bytes are kept of the commands to one gate.
const KEPT_GATE_BYTES: usize = 4 * 1024 * 1024;
/// The commands to a gate this node has sent nothing to for this long are forgotten.
const GATE_IDLE: std::time::Duration = std::time::Duration::from_secs(300);

/// A group broadcast's number: its publisher, its number, and the node that published it
/// (empty from a node that does not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Num {
    pub(crate) src: u64,
    pub(crate) seq: u64,
    pub(crate) node: String,
}

/// One stream's count and its last messages.
struct Numbering {
    /// The last number given.
    last: u64,
    /// The last messages, oldest first, and their payload bytes.
    kept: VecDeque<Replayed>,
    kept_bytes: usize,
    max_bytes: usize,
    /// When the last one was numbered.
    used: std::time::Instant,
}

impl Numbering {
    fn new(max_bytes: usize) -> Numbering {
        Numbering {
            last: 0,
            kept: VecDeque::new(),
            kept_bytes: 0,
            max_bytes,
            used: std::time::Instant::now(),
        }
    }

    /// Forgets what is numbered up to `seq` (its receiver has it). Gives the payload bytes
    /// forgotten.
    fn forget_through(&mut self, seq: u64) -> usize {
        let mut freed = 0;
        while self.kept.front().is_some_and(|e| e.seq <= seq) {
            if let Some(old) = self.kept.pop_front() {
                freed += old.payload.len();
            }
        }
        self.kept_bytes -= freed;
        freed
    }

    /// The next number, for a message to group `token` (empty for a command). Gives the
    /// payload bytes forgotten to stay within the bounds.
    fn next(&mut self, token: &str, payload: &Bytes) -> (u64, usize) {
        self.last += 1;
        self.used = std::time::Instant::now();
        self.kept_bytes += payload.len();
        self.kept.push_back(Replayed {
            seq: self.last,
            token: token.to_owned(),
            payload: payload.clone(),
        });
        let mut freed = 0;
        while self.kept.len() > KEPT || self.kept_bytes > self.max_bytes {
            let Some(old) = self.kept.pop_front() else {
                break;
            };
            self.kept_bytes -= old.payload.len();
            freed += old.payload.len();
        }
        (self.last, freed)
    }
}

/// A node's streams: its group broadcasts, and its commands to each gate.
struct Streams {
    groups: Numbering,
    gates: std::collections::HashMap<String, Numbering>,
    /// Commands numbered since idle gates were last looked for.
    since_pruned: usize,
    /// The payload bytes kept of the commands to every gate.
    commands_bytes: usize,
}

/// The gauge of the command bytes a node keeps for gates that may miss them.
const KEPT_METRIC: &str = "longlink_cluster_commands_kept_bytes";

/// One node's numbering of its group broadcasts and gate commands, and the last ones it
/// sent.
pub(crate) struct GroupSeq {
    /// This connection's publisher number.
    src: u64,
    node: String,
    /// Held while a message is queued, so that numbers go out in order.
    state: Mutex<Streams>,
    /// The bytes of `commands_bytes`, on `/metrics`.
    kept: CachedGauge,
}

impl GroupSeq {
    pub(crate) fn new(node: &str) -> GroupSeq {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        GroupSeq {
            src: u64::from_le_bytes(bytes),
            node: node.to_owned(),
            state: Mutex::new(Streams {
                groups: Numbering::new(KEPT_BYTES),
                gates: std::collections::HashMap::new(),
                since_pruned: 0,
                commands_bytes: 0,
            }),
            kept: CachedGauge::new(KEPT_METRIC, "node", node),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Streams> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `queue` with the next broadcast's headers, under the numbering's lock: what
    /// `queue` queues goes out in the order of the numbers. The broadcast (to the group
    /// whose token is `token`) is kept among the last ones.
    pub(crate) fn stamp<R>(
        &self,
        token: &str,
        payload: &Bytes,
        queue: impl FnOnce(HeaderMap) -> R,
    ) -> R {
        let mut s = self.lock();
        let (seq, _) = s.groups.next(token, payload);
        queue(self.headers(seq))
    }

    /// The headers of the next NATS message of commands to gate `gate` (its own count): one
    /// command, or a batch of them (`payload`, kept whole among the last ones). The node's
    /// publisher calls it as it publishes, so numbers go out in order.
    pub(crate) fn number_command(&self, gate: &str, payload: &Bytes) -> HeaderMap {
        let mut s = self.lock();
        s.since_pruned += 1;
        if s.since_pruned >= KEPT {
            s.since_pruned = 0;
            s.gates.retain(|_, n| n.used.elapsed() < GATE_IDLE);
            s.commands_bytes = s.gates.values().map(|n| n.kept_bytes).sum();
        }
        let numbering = match s.gates.get_mut(gate) {
            Some(n) => n,
            None => s
                .gates
                .entry(gate.to_owned())
                .or_insert_with(|| Numbering::new(KEPT_GATE_BYTES)),
        };
        let (seq, freed) = numbering.next("", payload);
        s.commands_bytes = s.commands_bytes + payload.len() - freed;
        self.kept.set(s.commands_bytes as f64);
        self.headers(seq)
    }

    /// Gate `report.gate` has applied this node's commands up to `report.after` (the
    /// report has a replay request's fields): what it has is kept no longer. A report about
    /// an earlier start of this node (another `src`) changes nothing.
    pub(crate) fn delivered(&self, report: &ReplayRequest) {
        if report.src != self.src || report.gate.is_empty() {
            return;
        }
        let mut s = self.lock();
        let Some(numbering) = s.gates.get_mut(&report.gate) else {
            return;
        };
        let freed = numbering.forget_through(report.after);
        if freed > 0 {
            s.commands_bytes -= freed;
            self.kept.set(s.commands_bytes as f64);
        }
    }

    fn headers(&self, seq: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SRC, self.src.to_string().as_str());
        headers.insert(SEQ, seq.to_string().as_str());
        headers.insert(NODE, self.node.as_str());
        headers
    }

    /// The answer to a gate that asks for what it missed.
    /// (Commands: the request names the gate.)
    pub(crate) fn replay(&self, request: &ReplayRequest) -> ReplayAnswer {
        let s = self.lock();
        let stream = if request.gate.is_empty() {
            Some(&s.groups)
        } else {
            s.gates.get(&request.gate)
        };
        let mut answer = ReplayAnswer {
            known: request.src == self.src,
            last: stream.map_or(0, |n| n.last),
            more: false,
            entries: Vec::new(),
        };
        let Some(stream) = stream.filter(|_| answer.known) else {
            return answer;
        };
        let mut bytes = 0;
        for e in stream.kept.iter().filter(|e| e.seq > request.after) {
            if bytes > 0 && bytes + e.payload.len() > ANSWER_BYTES {
                answer.more = true;
                break;
            }
            bytes += e.payload.len();
            answer.entries.push(e.clone());
        }
        answer
    }
}

/// A group broadcast's number, if it carries one.
pub(crate) fn read(headers: Option<&HeaderMap>) -> Option<Num> {
    let headers = headers?;
    let src = headers.get(SRC)?.as_str().parse().ok()?;
    let seq = headers.get(SEQ)?.as_str().parse().ok()?;
    let node = headers.get(NODE).map(|n| n.as_str().to_owned());
    Some(Num {
        src,
        seq,
        node: node.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_each_other_and_read_back() {
        let s = GroupSeq::new("n1");
        let p = Bytes::from_static(b"x");
        let a = s.stamp("room", &p, |h| read(Some(&h)));
        let b = s.stamp("room", &p, |h| read(Some(&h)));
        let num = |seq| Num {
            src: s.src,
            seq,
            node: "n1".into(),
        };
        assert_eq!(a, Some(num(1)));
        assert_eq!(b, Some(num(2)));
        assert_eq!(read(None), None);
        let mut bad = HeaderMap::new();
        bad.insert(SRC, "x");
        bad.insert(SEQ, "1");
        assert_eq!(read(Some(&bad)), None);
    }

    #[test]
    fn the_last_broadcasts_are_kept_and_replayed_after_a_number() {
        let s = GroupSeq::new("n1");
        for i in 0..(KEPT + 10) {
            let payload = Bytes::from(i.to_string());
            s.stamp("room", &payload, |_| ());
        }
        let all = s.replay(&ReplayRequest {
            src: s.src,
            after: 0,
            gate: String::new(),
        });
        assert!(all.known);
        assert_eq!(all.last, (KEPT + 10) as u64);
        assert_eq!(all.entries.len(), KEPT);
        assert_eq!(all.entries[0].seq, 11);
        let tail = s.replay(&ReplayRequest {
            src: s.src,
            after: (KEPT + 8) as u64,
            gate: String::new(),
        });
        let seqs: Vec<u64> = tail.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [(KEPT + 9) as u64, (KEPT + 10) as u64]);
        assert_eq!(tail.entries[1].payload, Bytes::from((KEPT + 9).to_string()));
        let other = s.replay(&ReplayRequest {
            src: s.src ^ 1,
            after: 0,
            gate: String::new(),
        });
        assert!(!other.known && other.entries.is_empty());
        // Commands count per gate, apart from the broadcasts.
        let p = Bytes::from_static(b"c");
        let seq = |gate| read(Some(&s.number_command(gate, &p))).unwrap().seq;
        assert_eq!(seq("g1"), 1);
        assert_eq!(seq("g2"), 1);
        assert_eq!(seq("g1"), 2);
        let g1 = s.replay(&ReplayRequest {
            src: s.src,
            after: 1,
            gate: "g1".into(),
        });
        assert_eq!((g1.last, g1.entries.len(), g1.entries[0].seq), (2, 1, 2));
    }

    #[test]
    fn what_a_gate_reports_delivered_is_kept_no_longer() {
        let s = GroupSeq::new("n1");
        let p = Bytes::from_static(b"cmd");
        for _ in 0..5 {
            s.number_command("g1", &p);
            s.number_command("g2", &p);
        }
        let report = |src, after, gate: &str| ReplayRequest {
            src,
            after,
            gate: gate.into(),
        };
        let kept = |gate: &str| {
            let a = s.replay(&report(s.src, 0, gate));
            a.entries.iter().map(|e| e.seq).collect::<Vec<_>>()
        };
        s.delivered(&report(s.src, 3, "g1"));
        assert_eq!(kept("g1"), [4, 5]);
        assert_eq!(kept("g2"), [1, 2, 3, 4, 5], "another gate's are its own");
        s.delivered(&report(s.src, 2, "g1"));
        assert_eq!(kept("g1"), [4, 5], "an older report changes nothing");
        s.delivered(&report(s.src ^ 1, 5, "g1"));
        assert_eq!(
            kept("g1"),
            [4, 5],
            "a report about an earlier start changes nothing"
        );
        s.delivered(&report(s.src, 5, "g1"));
        assert!(kept("g1").is_empty());
        assert_eq!(s.lock().commands_bytes, 5 * p.len(), "g2's alone");
        assert_eq!(
            s.replay(&report(s.src, 0, "g1")).last,
            5,
            "the count goes on"
        );
    }
}
