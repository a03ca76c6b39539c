//! The numbering of a resumable session, both ways, as plain data: what has been received,
//! what has been sent and is kept until the server acknowledges it, and when an
//! acknowledgement is due. No sockets here.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// One application message sent in a session and not yet acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub(crate) seq: u64,
    pub(crate) payload: Bytes,
    /// When it was last written to a socket; `None` while it waits for one.
    pub(crate) written: Option<Instant>,
}

/// A session's counters.
#[derive(Debug, Default)]
pub(crate) struct Numbering {
    /// The latest token: the session is resumable.
    pub(crate) token: Option<String>,
    /// How long the server waits for a resume after a drop.
    pub(crate) window: Duration,
    /// `LL_SessionStart` has been sent: the application messages sent are numbered.
    pub(crate) counting_out: bool,
    /// Server application messages received in this session (the last number).
    pub(crate) received: u64,
    /// The `seq` of the last `LL_Ack` sent (or of the `LL_Resume`).
    pub(crate) acked: u64,
    /// When an `LL_Ack` is due for what was received since `acked`.
    pub(crate) ack_due: Option<Instant>,
    /// Application messages sent in this session (the last number).
    pub(crate) sent: u64,
    /// Those not yet acknowledged, oldest first.
    pub(crate) kept: VecDeque<Kept>,
}

impl Numbering {
    /// `LL_SessionStart` sent: a new numbering of outgoing messages, from 1.
    pub(crate) fn start(&mut self) {
        *self = Numbering {
            counting_out: true,
            ..Numbering::default()
        };
    }

    /// `LL_Session` arrived: resumable, and the next server application message is 1.
    pub(crate) fn on_session(&mut self, token: String, window: Duration) {
        self.token = Some(token);
        self.window = window;
        self.received = 0;
        self.acked = 0;
        self.ack_due = None;
    }

    /// The session is gone: back to an unnumbered connection. Returns how many sent
    /// messages were not acknowledged (the server may or may not have handled them).
    pub(crate) fn lose(&mut self) -> usize {
        let unacknowledged = self.kept.len();
        *self = Numbering::default();
        unacknowledged
    }

    /// An application message to send: numbered and kept if the session counts (`written`
    /// says whether it goes out now). Returns whether it is kept.
    pub(crate) fn outgoing(&mut self, payload: &Bytes, written: Option<Instant>) -> bool {
        if !self.counting_out {
            return false;
        }
        self.sent += 1;
        self.kept.push_back(Kept {
            seq: self.sent,
            payload: payload.clone(),
            written,
        });
        true
    }

    /// The server's `LL_Ack{seq}`: it has everything up to `seq`.
    pub(crate) fn on_ack(&mut self, seq: u64) {
        while self.kept.front().is_some_and(|k| k.seq <= seq) {
            self.kept.pop_front();
        }
    }

    /// A server application message arrived. Returns whether it was numbered; an
    /// acknowledgement becomes due within `interval`.
    pub(crate) fn on_received(&mut self, now: Instant, interval: Duration) -> bool {
        if self.token.is_none() {
            return false;
        }
        self.received += 1;
        self.ack_due.get_or_insert(now + interval);
        true
    }

    /// Whether an acknowledgement should go now: `every` messages are waiting for one, or
    /// its time has come.
    pub(crate) fn ack_now(&self, now: Instant, every: u64) -> bool {
        let waiting = self.received.saturating_sub(self.acked);
        waiting > 0 && (waiting >= every || self.ack_due.is_some_and(|t| t <= now))
    }

    /// An `LL_Ack` goes out: its `seq`.
    pub(crate) fn take_ack(&mut self) -> u64 {
        self.acked = self.received;
        self.ack_due = None;
        self.received
    }

    /// `LL_Resume` goes out: it tells the server what was received, as an ack does.
    pub(crate) fn resuming(&mut self) {
        self.take_ack();
    }

    /// `LL_Resumed{token, last_seq}`: the new token, and the kept messages the server has
    /// not handled, to be written again now, in order.
    pub(crate) fn on_resumed(&mut self, token: String, last_seq: u64, now: Instant) -> Vec<Bytes> {
        self.token = Some(token);
        self.on_ack(last_seq);
        self.kept
            .iter_mut()
            .map(|k| {
                k.written = Some(now);
                k.payload.clone()
            })
            .collect()
    }

    /// When the connection is taken as dead for lack of an acknowledgement: `timeout` after
    /// the oldest kept message was written.
    pub(crate) fn ack_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.kept
            .iter()
            .find_map(|k| k.written)
            .map(|t| t + timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn sent_messages_are_numbered_kept_and_dropped_when_acknowledged() {
        let now = Instant::now();
        let mut n = Numbering::default();
        assert!(!n.outgoing(&Bytes::from_static(b"before"), Some(now)));
        n.start();
        for p in [&b"a"[..], b"b", b"c"] {
            assert!(n.outgoing(&Bytes::copy_from_slice(p), Some(now)));
        }
        assert_eq!(n.ack_deadline(10 * MS), Some(now + 10 * MS));
        n.on_ack(2);
        let left: Vec<_> = n.kept.iter().map(|k| k.seq).collect();
        assert_eq!(left, [3]);
        n.on_session("t".into(), Duration::from_secs(30));
        assert!(n.outgoing(&Bytes::from_static(b"d"), None));
        let resend = n.on_resumed("u".into(), 3, now);
        assert_eq!(resend, [Bytes::from_static(b"d")]);
        assert_eq!(n.token.as_deref(), Some("u"));
        n.on_ack(4);
        assert_eq!(n.ack_deadline(10 * MS), None);
        assert_eq!(n.lose(), 0);
        assert!(!n.counting_out && n.token.is_none());
    }

    #[test]
    fn acknowledgements_go_every_n_messages_or_after_the_interval() {
        let now = Instant::now();
        let mut n = Numbering::default();
        n.start();
        assert!(
            !n.on_received(now, 200 * MS),
            "not numbered before LL_Session"
        );
        n.on_session("t".into(), Duration::from_secs(30));
        for _ in 0..3 {
            assert!(n.on_received(now, 200 * MS));
        }
        assert!(!n.ack_now(now, 32));
        assert!(n.ack_now(now + 200 * MS, 32));
        assert!(n.ack_now(now, 3));
        assert_eq!(n.take_ack(), 3);
        assert!(!n.ack_now(now + 300 * MS, 1));
        n.on_received(now, 200 * MS);
        n.resuming();
        assert_eq!((n.acked, n.ack_due), (4, None));
    }
}
