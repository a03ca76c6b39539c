//! A session that changes socket: claimed by a new socket (whose task waits for the old one's
//! to stop), resumed on it, or handed over to another gate and installed there. Everything
//! the client has not acknowledged goes again, in order.

use std::num::NonZeroU64;
use std::sync::Arc;

use bytes::Bytes;

use super::super::items::Items;
use super::super::{Outbox, Queue, State};
use super::Numbering;
use crate::codec::Tag;

impl Queue {
    /// The session `socket` claims, with the client saying it has everything up to
    /// `last_seq`: none unless the queue is open and the session is that socket's and did
    /// not overflow nor move to another gate. Everything kept counts as not written, save
    /// what the client has, which is dropped: the rest goes again, in order, with one
    /// message per latest key (the newest: a written one the client did not get is no
    /// longer counted by anyone). `open`: the outbox's state is `Open`.
    pub(super) fn claimed(
        &mut self,
        socket: NonZeroU64,
        last_seq: u64,
        open: bool,
    ) -> Option<(&mut Items, &mut Numbering)> {
        let Queue { items, session, .. } = self;
        let n = session
            .as_mut()
            .filter(|n| open && n.socket == Some(socket) && !n.overflowed && !n.handed_over)?;
        // What is kept is numbered: volatile payloads not yet written are never replayed.
        items.drop_volatile(n.sent);
        n.sent = items.len();
        n.ack(items, last_seq);
        n.sent = 0;
        // The client has none of what is left: of each latest key, only the newest goes.
        items.keep_last_per_key(0);
        Some((items, n))
    }
}

impl Outbox {
    /// Claims the session for a new socket `socket`; the task that served it stops at its
    /// next wake-up. Gives the lock to wait on until that task has stopped, or `None` if the
    /// session has ended (or moved to another gate).
    pub(crate) fn claim(&self, socket: NonZeroU64) -> Option<Arc<tokio::sync::Mutex<()>>> {
        let mut q = self.lock();
        let open = self.state() == State::Open;
        let n = q
            .session
            .as_mut()
            .filter(|n| open && !n.overflowed && !n.handed_over)?;
        n.socket = Some(socket);
        n.drop_socket = false;
        let driving = Arc::clone(&n.driving);
        drop(q);
        self.wake.raise();
        Some(driving)
    }

    /// The lock the task serving the session holds while it does.
    pub(crate) fn driving(&self) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.lock().session.as_ref().map(|n| Arc::clone(&n.driving))
    }

    /// Resumes the session on `socket` (claimed, and its former task stopped): forgets what
    /// the client has (up to `last_seq`), queues `answer(in_seq)` (`LL_Resumed`) first and
    /// every kept message after it. Returns `(in_seq, replayed)`, or `None` if the session
    /// ended or another socket claimed it meanwhile.
    pub(crate) fn resume(
        &self,
        socket: NonZeroU64,
        last_seq: u64,
        answer: impl FnOnce(u64) -> Option<Bytes>,
    ) -> Option<(u64, usize)> {
        let mut q = self.lock();
        let (items, n) = q.claimed(socket, last_seq, self.state() == State::Open)?;
        if last_seq + 1 < n.first_seq {
            tracing::debug!(
                last_seq,
                first_kept = n.first_seq,
                "resume: the client acknowledged more than it says it has"
            );
        }
        n.control = answer(n.in_seq).into_iter().collect();
        n.acked_in = n.in_seq;
        let replayed = items.len();
        let in_seq = n.in_seq;
        drop(q);
        self.wake.raise();
        Some((in_seq, replayed))
    }

    /// A session handed over from another gate, served by `socket`: `kept` (numbered from
    /// `last_seq + 1`, each with its delivery tag as this gate classifies it) goes before
    /// anything queued since, `answer` (`LL_Resumed`) before all; `in_seq` is the client
    /// messages the other gate had handled. The client has none of it: of each latest key,
    /// only the newest stays, and one queued later replaces it as on any session.
    pub(crate) fn install(
        &self,
        socket: NonZeroU64,
        last_seq: u64,
        in_seq: u64,
        kept: Vec<(Bytes, Tag)>,
        answer: Option<Bytes>,
    ) -> bool {
        let mut q = self.lock();
        let Queue { items, session, .. } = &mut *q;
        let Some(n) = session.as_mut().filter(|n| n.socket == Some(socket)) else {
            return false;
        };
        for (item, tag) in kept.into_iter().rev() {
            items.push_front_tagged(item, tag);
        }
        items.keep_last_per_key(0);
        n.first_seq = last_seq + 1;
        n.sent = 0;
        n.in_seq = in_seq;
        n.acked_in = in_seq;
        n.control = answer.into_iter().collect();
        drop(q);
        self.wake.raise();
        true
    }
}
