//! A session handed over to another gate in steps: copied first (the holder keeps it), then
//! what reached it meanwhile, and let go only once the other gate has all of it. A hand-over
//! that fails leaves the session as it was.

use std::num::NonZeroU64;

use bytes::Bytes;

use super::super::{Outbox, Queue, State};

impl Outbox {
    /// A copy of what the session claimed by `socket` keeps for a hand-over: `(in_seq, every
    /// kept message after last_seq)`. What the client has (up to `last_seq`) is dropped; the
    /// rest stays here. `None` if the session ended or another socket claimed it.
    pub(crate) fn hand_over_copy(
        &self,
        socket: NonZeroU64,
        last_seq: u64,
    ) -> Option<(u64, Vec<Bytes>)> {
        let mut q = self.lock();
        let (items, n) = q.claimed(socket, last_seq, self.state() == State::Open)?;
        let kept = items.payloads_from(0);
        // Copied is as good as written: a latest payload queued during the hand-over must
        // not take the place of one the other gate has already, but follow (it is offered).
        n.sent = kept.len();
        Some((n.in_seq, kept))
    }

    /// The other gate has the first `copied` messages of the session claimed by `socket`:
    /// `Ok` hands it over (nothing is kept here, and the task that waited for the client
    /// stops quietly), or `Err` gives the messages that reached it since (it stays here).
    /// `None` if the session ended or another socket claimed it.
    pub(crate) fn hand_over_rest(
        &self,
        socket: NonZeroU64,
        copied: usize,
    ) -> Option<Result<(), Vec<Bytes>>> {
        let mut q = self.lock();
        let open = self.state() == State::Open;
        let Queue { items, session, .. } = &mut *q;
        let n = session
            .as_mut()
            .filter(|n| open && n.socket == Some(socket) && !n.overflowed && !n.handed_over)?;
        // Only numbered payloads go to the other gate: volatile ones are not kept.
        items.drop_volatile(copied);
        if items.len() > copied {
            n.sent = items.len();
            return Some(Err(items.payloads_from(copied)));
        }
        n.handed_over = true;
        n.control = Vec::new();
        items.clear();
        drop(q);
        self.wake.raise();
        Some(Ok(()))
    }
}
