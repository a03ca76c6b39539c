//! [`Outbox`]: a local connection's bounded outgoing queue. Writers (any task) push encoded
//! payloads; the connection's task takes them in batches and wakes on every change.
//!
//! A resumable session (`session`) keeps written payloads, numbered, until the client
//! acknowledges them, and outlives its socket.

mod classes;
mod full;
mod items;
mod session;
mod signal;
#[cfg(test)]
mod tests;

pub(crate) use classes::Pushed;
use classes::replace_waiting;
use items::Items;

use session::Numbering;
pub(crate) use session::{Detached, SessionCheck, next_socket};

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use signal::{Raised, Signal};

use crate::codec::{EncodeError, Tag};

/// Why a write was refused. The connection stays open unless the error says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The message could not be encoded (e.g. not registered).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The payload is over `max_msg_len`; nothing was sent.
    #[error("message too long: {len} bytes, the limit is {max}")]
    TooLong {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The connection is closing or closed.
    #[error("connection closed")]
    Closed,
    /// The queue was full: with [`QueueFullPolicy::Disconnect`] the connection is now being
    /// destroyed; with [`QueueFullPolicy::Drop`] only this message was dropped.
    #[error("outgoing queue full ({0} messages)")]
    QueueFull(usize),
    /// As [`WriteError::QueueFull`], for the queue's bytes (`pending_write_bytes`): the
    /// message would have taken it over this many.
    #[error("outgoing queue full ({0} bytes)")]
    QueueFullBytes(usize),
}

/// What to do when a connection's outgoing queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueFullPolicy {
    /// Destroy that connection (leaf's behaviour): a client that does not read is cut off.
    #[default]
    Disconnect,
    /// Drop the message, count it, and keep the connection.
    Drop,
}

/// Where a connection is in its life, as its writers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    Open,
    /// Flush what is queued, then close.
    Closing,
    /// Drop what is queued, close now.
    Destroyed,
}

/// The queue was emptied by a destroy: the connection must stop now.
#[derive(Debug)]
pub(crate) struct Destroyed;

struct Queue {
    /// Without a session: the payloads not yet written. With one: the written ones not yet
    /// acknowledged (`Numbering::sent` of them), then the unwritten ones.
    items: Items,
    /// The resumable session's numbering, once `LL_SessionStart` made one.
    session: Option<Box<Numbering>>,
}

impl Queue {
    /// Payloads not yet written.
    fn unwritten(&self) -> usize {
        self.items.len() - self.session.as_ref().map_or(0, |n| n.sent)
    }
}

/// The outgoing side of one local connection.
pub(crate) struct Outbox {
    /// Payloads not yet taken by the connection's task; its lock also guards every change
    /// of `state_now`, so that a write never lands after a destroy.
    queue: Mutex<Queue>,
    /// Wakes the connection's task: something was queued, or the state changed.
    wake: Signal,
    /// `pending_write_num`: most payloads queued at once.
    capacity: usize,
    /// `pending_write_bytes`: most bytes queued at once (0: no bound).
    max_bytes: usize,
    /// `queue_full`: what a write to a full queue does.
    policy: QueueFullPolicy,
    /// Most payloads queued for a volatile one to join them: `volatile_queue`, at most
    /// `capacity` (a `u16`, so that it fits beside the other small fields).
    volatile: u16,
    /// The transport's payload limit (`max_msg_len`, for TCP clamped to the length field).
    max_msg_len: usize,
    /// Writes dropped on a full queue (with [`QueueFullPolicy::Drop`]).
    dropped: AtomicU64,
    /// WebSocket close code for a graceful close (1000 unless the reader set another).
    close_code: AtomicU16,
    /// Where the connection is in its life: changed only under the queue's lock
    /// ([`Outbox::set_state`]), so that a write never lands after a destroy; read without
    /// it too (the connection's loop looks in every turn).
    state_now: AtomicU8,
    /// The connection's task is handling a frame ([`Outbox::handling`]), so it takes the
    /// queue before it waits again: a push need not wake it.
    handling: AtomicBool,
}

/// While it lives, the connection's task is handling a frame: see [`Outbox::handling`].
pub(crate) struct Handling<'a>(&'a AtomicBool);

impl Drop for Handling<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Outbox {
    /// A queue of at most `capacity` payloads and `max_bytes` bytes (0: no byte bound); a
    /// volatile payload joins at most `volatile` others.
    pub(crate) fn new(
        (capacity, max_bytes): (usize, usize),
        policy: QueueFullPolicy,
        volatile: usize,
        max_msg_len: usize,
    ) -> Outbox {
        Outbox {
            queue: Mutex::new(Queue {
                items: Items::default(),
                session: None,
            }),
            wake: Signal::default(),
            capacity,
            max_bytes,
            policy,
            volatile: u16::try_from(volatile.min(capacity)).unwrap_or(u16::MAX),
            max_msg_len,
            dropped: AtomicU64::new(0),
            close_code: AtomicU16::new(1000),
            handling: AtomicBool::new(false),
            state_now: AtomicU8::new(State::Open as u8),
        }
    }

    /// Marks the connection's task as handling a frame, until the guard drops: pushes made
    /// meanwhile (by its handlers, inline, or by any other task) do not wake it, since it
    /// takes the queue before it waits again. A handler's reply is otherwise a wake-up of
    /// the task by itself: one more turn of its loop per message.
    ///
    /// Only for a span without an await, after which the queue is taken. That a push during
    /// the span is taken is the lock's doing: the flag is cleared before the task's next
    /// [`take_batch`](Self::take_batch), and a push that saw it set had queued its payload,
    /// under the lock, before that.
    pub(crate) fn handling(&self) -> Handling<'_> {
        self.handling.store(true, Ordering::Relaxed);
        Handling(&self.handling)
    }

    /// Queues one payload as its `tag` says. `conn` names the connection in logs.
    pub(crate) fn push(&self, payload: Bytes, tag: Tag, conn: u64) -> Result<Pushed, WriteError> {
        let len = payload.len();
        if len > self.max_msg_len {
            tracing::debug!(conn, len, "write refused: message too long");
            return Err(WriteError::TooLong {
                len,
                max: self.max_msg_len,
            });
        }
        let mut q = self.lock();
        if self.state() != State::Open {
            return Err(WriteError::Closed);
        }
        let attached = q.session.as_ref().is_none_or(|n| n.socket.is_some());
        match tag {
            Tag::Reliable => {}
            Tag::Volatile => return Ok(self.push_volatile(q, payload, attached)),
            Tag::Latest { .. } => {
                if let Some(pushed) = replace_waiting(&mut q, &payload, tag) {
                    return Ok(pushed);
                }
            }
        }
        match (attached, self.full(&q, len)) {
            (true, Some(full)) => {
                drop(q);
                return Err(self.queue_full(full, conn));
            }
            // A session waiting for its client: its kept bytes are bounded as an attached
            // one's are (its message count by `resume_buffer`, below).
            (false, Some(full @ WriteError::QueueFullBytes(_))) => {
                return Err(self.waiting_full(q, full, conn));
            }
            _ => {}
        }
        let kept = q.items.len();
        if let Some(n) = q
            .session
            .as_mut()
            .filter(|n| !n.overflowed && kept >= n.limit)
        {
            // More than resume_buffer messages wait for the client: the session ends. With
            // a socket, this message still goes out on it; without one, nothing can.
            n.overflowed = true;
            let limit = n.limit;
            tracing::debug!(conn, limit, "resumable session over resume_buffer");
            if !attached {
                self.set_state(&mut q, State::Destroyed);
                q.items.clear();
                drop(q);
                self.wake.raise();
                return Err(WriteError::QueueFull(limit));
            }
            self.wake.raise();
        }
        q.items.push_tagged(payload, tag);
        self.queued(q, attached);
        Ok(Pushed::Queued)
    }

    /// A payload was queued: wake the connection's task if it may be asleep on an empty
    /// queue.
    fn queued(&self, q: MutexGuard<'_, Queue>, attached: bool) {
        let was_empty = q.unwritten() == 1;
        drop(q);
        if was_empty && attached && !self.handling.load(Ordering::Relaxed) {
            self.wake.raise();
        }
    }

    /// Closes gracefully: what is queued is still taken, later pushes fail.
    pub(crate) fn close(&self) {
        let mut q = self.lock();
        if self.state() == State::Open {
            self.set_state(&mut q, State::Closing);
            drop(q);
            self.wake.raise();
        }
    }

    /// Closes now: the queue is dropped.
    pub(crate) fn destroy(&self) {
        let mut q = self.lock();
        if self.state() != State::Destroyed {
            self.set_state(&mut q, State::Destroyed);
            q.items.clear();
            if let Some(n) = &mut q.session {
                n.sent = 0;
                n.control = Vec::new();
            }
            drop(q);
            self.wake.raise();
        }
    }

    pub(crate) fn state(&self) -> State {
        match self.state_now.load(Ordering::Acquire) {
            0 => State::Open,
            1 => State::Closing,
            _ => State::Destroyed,
        }
    }

    /// Changes the state, the queue's lock held (`_locked`): the only way it changes.
    fn set_state(&self, _locked: &mut Queue, state: State) {
        self.state_now.store(state as u8, Ordering::Release);
    }

    #[cfg(test)]
    fn is_open_for_test(&self) -> bool {
        self.state() == State::Open
    }

    /// Payloads queued and not yet taken.
    pub(crate) fn len(&self) -> usize {
        self.lock().unwritten()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn close_code(&self) -> u16 {
        self.close_code.load(Ordering::Relaxed)
    }

    pub(crate) fn set_close_code(&self, code: u16) {
        self.close_code.store(code, Ordering::Relaxed);
    }

    /// Hands queued payloads to `take`, oldest first, up to about `max_bytes` (at least one),
    /// and returns how many bytes it took and whether it took all there was. A destroyed
    /// queue gives [`Destroyed`].
    pub(crate) fn take_batch(
        &self,
        max_bytes: usize,
        take: impl FnMut(Bytes),
    ) -> Result<(usize, bool), Destroyed> {
        let mut q = self.lock();
        if self.state() == State::Destroyed {
            return Err(Destroyed);
        }
        let gathered = if q.session.is_some() {
            take_numbered(&mut q, max_bytes, take)
        } else {
            take_plain(&mut q, max_bytes, take)
        };
        Ok((gathered, q.unwritten() == 0))
    }

    /// Wakes the connection's task so it looks at the state again.
    pub(crate) fn wake(&self) {
        self.wake.raise();
    }

    /// Resolves at the next wake-up (or at once, if one came since the last).
    pub(crate) fn changed(&self) -> Raised<'_> {
        self.wake.raised()
    }

    /// As [`changed`](Self::changed), for the task of a session whose socket is gone (it
    /// may still be waking up while a new socket's task serves the session).
    pub(crate) fn changed_detached(&self) -> Raised<'_> {
        self.wake.raised_detached()
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic never happens while the lock is held, but stay usable if it did.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// [`Outbox::take_batch`] without a session: the payloads leave the queue.
fn take_plain(q: &mut Queue, max_bytes: usize, mut take: impl FnMut(Bytes)) -> usize {
    let mut gathered = 0;
    while let Some(item) = q.items.front() {
        if gathered > 0 && gathered + item.payload.len() > max_bytes {
            break;
        }
        gathered += item.payload.len();
        if let Some(item) = q.items.pop_front() {
            take(item.payload);
        }
    }
    // Drained: give the memory back (an idle connection holds no queue; a busy one
    // allocates it again at its next write, a few tens of nanoseconds).
    q.items.shrink_if_empty();
    gathered
}

/// [`Outbox::take_batch`] for a session: the protocol messages, then unwritten payloads (kept
/// in the queue, counted as sent; a volatile one leaves the queue, never numbered).
fn take_numbered(q: &mut Queue, max_bytes: usize, mut take: impl FnMut(Bytes)) -> usize {
    let Queue { items, session, .. } = q;
    let Some(n) = session.as_mut() else {
        return 0;
    };
    let mut gathered = 0;
    for item in n.control.drain(..) {
        gathered += item.len();
        take(item);
    }
    while let Some(item) = items.get(n.sent) {
        if gathered > 0 && gathered + item.payload.len() > max_bytes {
            break;
        }
        gathered += item.payload.len();
        if item.tag == Tag::Volatile {
            if let Some(item) = items.remove(n.sent) {
                take(item.payload);
            }
        } else {
            take(item.payload.clone());
            n.sent += 1;
        }
    }
    gathered
}
