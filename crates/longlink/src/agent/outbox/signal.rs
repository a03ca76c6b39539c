//! [`Signal`]: how a connection's task hears that its outbox changed (something queued, a
//! close, a destroy, a session claimed): a flag and a waker, for each of the two tasks that
//! can wait on one outbox.
//!
//! A flag and a waker take no lock, where tokio's `Notify` would take a mutex lock to register
//! a waiter and another to drop it, in every turn of every connection's loop. The task that
//! serves the outbox waits in [`Signal::raised`]. A resumable session's former task, whose
//! socket is gone, waits in [`Signal::raised_detached`] until the session is resumed or ends,
//! and may still be waking up when the new socket's task already serves the session: with one
//! slot, its late registration would take the serving task's place, and the serving task would
//! sleep through its writes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;

/// Wake-ups for the serving task and for a detached session's task: a flag bit and a waker
/// each.
#[derive(Default)]
pub(super) struct Signal {
    /// [`SERVING`] and [`DETACHED`]: raised and not yet taken, like `Notify::notify_one`'s
    /// permit.
    raised: AtomicU8,
    serving: AtomicWaker,
    detached: AtomicWaker,
}

const SERVING: u8 = 1;
const DETACHED: u8 = 2;
/// A detached task has waited here: its waker is woken too from now on (most outboxes never
/// have one, and a wake of an empty slot still costs two atomic operations per raise).
const DETACHED_WAITED: u8 = 4;

impl Signal {
    /// Raises the signal for both waiters and wakes them.
    pub(super) fn raise(&self) {
        let before = self.raised.fetch_or(SERVING | DETACHED, Ordering::AcqRel);
        self.serving.wake();
        if before & DETACHED_WAITED != 0 {
            self.detached.wake();
        }
    }

    /// For the task serving the outbox: resolves once the signal is raised (at once if it
    /// was since this last resolved).
    pub(super) fn raised(&self) -> Raised<'_> {
        Raised(self, SERVING)
    }

    /// As [`raised`](Self::raised), for the task of a session without a socket.
    pub(super) fn raised_detached(&self) -> Raised<'_> {
        Raised(self, DETACHED)
    }

    fn take(&self, bit: u8) -> bool {
        self.raised.fetch_and(!bit, Ordering::AcqRel) & bit != 0
    }

    fn waker(&self, bit: u8) -> &AtomicWaker {
        if bit == SERVING {
            &self.serving
        } else {
            &self.detached
        }
    }
}

/// The future of [`Signal::raised`] and [`Signal::raised_detached`].
pub(crate) struct Raised<'a>(&'a Signal, u8);

impl Future for Raised<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Raised(signal, bit) = *self;
        if signal.take(bit) {
            return Poll::Ready(());
        }
        if bit == DETACHED {
            signal.raised.fetch_or(DETACHED_WAITED, Ordering::AcqRel);
        }
        signal.waker(bit).register(cx.waker());
        // Raised between the first look and the registration: its wake found no waker.
        if signal.take(bit) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_raise_before_the_wait_is_kept_once() {
        let s = Signal::default();
        s.raise();
        s.raise();
        s.raised().await;
        let again = tokio::time::timeout(Duration::from_millis(20), s.raised()).await;
        assert!(again.is_err(), "two raises before a wait are one wake-up");
    }

    #[tokio::test]
    async fn a_raise_from_another_task_wakes_the_waiter() {
        let s = Arc::new(Signal::default());
        let raiser = Arc::clone(&s);
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            raiser.raise();
        });
        tokio::time::timeout(Duration::from_secs(5), s.raised())
            .await
            .expect("woken");
        task.await.unwrap();
    }

    /// The serving task waits; a detached task registers later and takes its wake-up: the
    /// serving task is woken all the same.
    #[tokio::test]
    async fn a_late_detached_waiter_does_not_take_the_serving_tasks_place() {
        let s = Arc::new(Signal::default());
        let serving = Arc::clone(&s);
        let served = tokio::spawn(async move { serving.raised().await });
        tokio::task::yield_now().await;
        let detached = Arc::clone(&s);
        let late = tokio::spawn(async move { detached.raised_detached().await });
        tokio::task::yield_now().await;
        s.raise();
        tokio::time::timeout(Duration::from_secs(5), async {
            served.await.unwrap();
            late.await.unwrap();
        })
        .await
        .expect("both woken");
    }
}
