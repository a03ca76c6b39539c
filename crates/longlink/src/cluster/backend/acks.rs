//! The acknowledgements (`ToGate::Handled`) a backend node sent lately, per gate: a gate
//! back from a NATS outage asks for them (`ToBackend::Acked`), as one sent while it had not
//! subscribed again may be lost for good (the gate asks its commands again only of the nodes
//! it had heard from), and the message would be refused though it was handled.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::{FastMap, lock};

/// At most this many are kept per gate.
const KEPT: usize = 16384;

/// Per gate, the sequence numbers acknowledged lately, oldest first, with when.
#[derive(Default)]
pub(super) struct Acks {
    sent: Mutex<FastMap<String, VecDeque<(Instant, u64)>>>,
}

impl Acks {
    /// Gate `gate`'s forwarded message `seq` was acknowledged (`ToGate::Handled`); kept for
    /// `keep`.
    pub(super) fn sent(&self, gate: &str, seq: u64, keep: Duration) {
        let now = Instant::now();
        let mut sent = lock(&self.sent);
        // One lookup for a gate already known (every message but its first).
        let acks = match sent.get_mut(gate) {
            Some(acks) => acks,
            None => sent.entry(gate.to_owned()).or_default(),
        };
        acks.push_back((now, seq));
        while acks.len() > KEPT || acks.front().is_some_and(|(t, _)| now - *t > keep) {
            acks.pop_front();
        }
    }

    /// The answer to `gate`: its sequence numbers acknowledged lately.
    pub(super) fn of(&self, gate: &str) -> Bytes {
        let sent = lock(&self.sent);
        let acks = sent.get(gate);
        let mut out = BytesMut::with_capacity(acks.map_or(0, VecDeque::len) * 8);
        for (_, seq) in acks.into_iter().flatten() {
            out.put_u64_le(*seq);
        }
        out.freeze()
    }
}

/// The sequence numbers of an answer.
pub(crate) fn read(answer: &[u8]) -> Vec<u64> {
    answer
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_gate_hears_its_own_acknowledgements_in_order() {
        let acks = Acks::default();
        let keep = Duration::from_secs(60);
        for (gate, seq) in [("g1", 1), ("g2", 7), ("g1", 2), ("g1", 3), ("g2", 8)] {
            acks.sent(gate, seq, keep);
        }
        assert_eq!(read(&acks.of("g1")), vec![1, 2, 3]);
        assert_eq!(read(&acks.of("g2")), vec![7, 8]);
        assert!(read(&acks.of("g3")).is_empty());
    }

    #[test]
    fn old_acknowledgements_are_let_go() {
        let acks = Acks::default();
        acks.sent("g1", 1, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        acks.sent("g1", 2, Duration::ZERO);
        assert_eq!(read(&acks.of("g1")), vec![2]);
    }
}
