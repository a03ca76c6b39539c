//! A write that finds a connection's queue full (`pending_write_num`, `pending_write_bytes`):
//! with a socket, `queue_full` decides (drop the message, or destroy the connection); for a
//! resumable session waiting for its client, the same bytes count (those queued and those
//! kept for a replay), and `"disconnect"` ends the session instead of a connection.

use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use super::{Outbox, Queue, QueueFullPolicy, State, WriteError};

impl Outbox {
    /// Whether a payload of `len` bytes finds the queue full: over `pending_write_num`
    /// unwritten payloads, or over `pending_write_bytes` held (an empty queue always takes
    /// one).
    pub(super) fn full(&self, q: &Queue, len: usize) -> Option<WriteError> {
        if q.unwritten() >= self.capacity {
            Some(WriteError::QueueFull(self.capacity))
        } else if self.max_bytes > 0
            && !q.items.is_empty()
            && q.items.bytes() + len > self.max_bytes
        {
            // Written and unacknowledged payloads of a session count too: they are held.
            Some(WriteError::QueueFullBytes(self.max_bytes))
        } else {
            None
        }
    }

    /// A write found the queue of a connection with a socket `full`: `queue_full` decides.
    pub(super) fn queue_full(&self, full: WriteError, conn: u64) -> WriteError {
        match self.policy {
            QueueFullPolicy::Drop => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = crate::metrics::gate() {
                    m.queue_full_drops.increment(1);
                }
            }
            QueueFullPolicy::Disconnect => {
                if let Some(m) = crate::metrics::gate() {
                    m.queue_full_disconnects.increment(1);
                }
                tracing::debug!(conn, error = %full, "close conn");
                self.destroy();
            }
        }
        full
    }

    /// A write found a session waiting for its client over `pending_write_bytes`: with
    /// `queue_full = "disconnect"` the session ends (overflowed: its queue is dropped, its
    /// task ends its wait), with `"drop"` only the message is dropped.
    pub(super) fn waiting_full(
        &self,
        mut q: MutexGuard<'_, Queue>,
        full: WriteError,
        conn: u64,
    ) -> WriteError {
        if self.policy == QueueFullPolicy::Drop {
            drop(q);
            return self.queue_full(full, conn);
        }
        if let Some(n) = q.session.as_mut() {
            n.overflowed = true;
        }
        tracing::debug!(conn, error = %full, "waiting session over pending_write_bytes: ended");
        if let Some(m) = crate::metrics::gate() {
            m.queue_full_disconnects.increment(1);
        }
        self.set_state(&mut q, State::Destroyed);
        q.items.clear();
        drop(q);
        self.wake.raise();
        full
    }
}
