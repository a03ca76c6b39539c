//! What the delivery classes change in a push: a volatile payload joins only a short queue
//! (and never one of a session without its socket); a latest-per-key payload takes the
//! place of its key's unwritten one. Reliable payloads are pushed as before (`mod.rs`).

use std::sync::MutexGuard;

use bytes::Bytes;

use super::{Outbox, Queue};
use crate::codec::Tag;

/// What became of a payload given to [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued.
    Queued,
    /// A latest-per-key payload that took the place of the one of its key that waited.
    Replaced,
    /// A volatile payload dropped: the queue was too long, or the session has no socket.
    Dropped,
}

impl Outbox {
    /// Queues a volatile payload if the socket can take it soon: there is one, and fewer
    /// than `volatile_queue` payloads (and `pending_write_bytes`) wait before it.
    pub(super) fn push_volatile(
        &self,
        q: MutexGuard<'_, Queue>,
        payload: Bytes,
        attached: bool,
    ) -> Pushed {
        let bound = usize::from(self.volatile);
        let over_bytes = self.max_bytes > 0 && q.items.bytes() + payload.len() > self.max_bytes;
        if !attached || q.unwritten() >= bound || over_bytes {
            return Pushed::Dropped;
        }
        let mut q = q;
        q.items.push_tagged(payload, Tag::Volatile);
        self.queued(q, attached);
        Pushed::Queued
    }
}

/// A latest-per-key payload for which one of its type and key waits unwritten: it takes
/// that one's place, or, when a reliable payload was queued after that one, the waiting one
/// is withdrawn and this one queued last (it never overtakes a reliable payload queued
/// before it). Either way the queue's length stays, and no payload the client may have
/// counted changes. `None`: none waits.
pub(super) fn replace_waiting(q: &mut Queue, payload: &Bytes, tag: Tag) -> Option<Pushed> {
    let from = q.session.as_ref().map_or(0, |n| n.sent);
    let (i, reliable_after) = q.items.waiting(from, tag)?;
    if reliable_after {
        q.items.remove(i);
        q.items.push_tagged(payload.clone(), tag);
    } else {
        q.items.replace(i, payload.clone());
    }
    Some(Pushed::Replaced)
}
