//! [`Handled`]: what a job carries when someone waits for it to be handled (a message
//! forwarded from another node's gate, whose "handled" acknowledgement the gate waits for).
//!
//! The job's handler may start background work ([`Ctx::spawn`](super::Ctx::spawn),
//! [`go`](super::Ctx::go), [`go_linear`](super::Ctx::go_linear),
//! [`call`](super::Ctx::call)) whose callback finishes what it began (a private message
//! pushed to another node, say): each callback job carries the same `Handled` (in a
//! [`Ticket`]), and the action runs when the last of them has run. A job or a piece of
//! background work that is dropped before it ran (its module stopped, its task was
//! cancelled) cancels it: the waiter hears nothing and treats the message as failed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Runs its action once every job that carries it has run, unless one was dropped first.
pub(crate) struct Handled {
    ran: AtomicBool,
    dropped: AtomicBool,
    action: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

/// One holder of a [`Handled`]: a job, or background work on its way to its callback's job.
/// Dropped before it ran, it cancels the action.
pub(crate) struct Ticket(Option<std::sync::Arc<Handled>>);

impl Ticket {
    pub(crate) fn new(handled: Option<std::sync::Arc<Handled>>) -> Ticket {
        Ticket(handled)
    }

    /// Its job runs: the `Handled` it carries, for the background work the job starts.
    pub(crate) fn run(mut self) -> Option<std::sync::Arc<Handled>> {
        let handled = self.0.take()?;
        handled.ran();
        Some(handled)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(handled) = &self.0 {
            handled.dropped.store(true, Ordering::Release);
        }
    }
}

impl Handled {
    pub(crate) fn new(action: impl FnOnce() + Send + 'static) -> std::sync::Arc<Handled> {
        std::sync::Arc::new(Handled {
            ran: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            action: Mutex::new(Some(Box::new(action))),
        })
    }

    /// A job that carries it runs (or what it stands for was done without a job).
    pub(crate) fn ran(&self) {
        self.ran.store(true, Ordering::Release);
    }
}

impl Drop for Handled {
    fn drop(&mut self) {
        if !self.ran.load(Ordering::Acquire) || self.dropped.load(Ordering::Acquire) {
            return;
        }
        let action = self
            .action
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(action) = action {
            action();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{Handled, Ticket};

    #[test]
    fn runs_after_the_last_clone_only_if_a_job_ran() {
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        let h = Handled::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        let later = Arc::clone(&h);
        h.ran();
        drop(h);
        assert_eq!(count.load(Ordering::SeqCst), 0, "a clone still waits");
        drop(later);
        assert_eq!(count.load(Ordering::SeqCst), 1);

        let c = Arc::clone(&count);
        drop(Handled::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(count.load(Ordering::SeqCst), 1, "never ran: no action");

        let c = Arc::clone(&count);
        let h = Handled::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        let started = Ticket::new(Some(h)).run();
        let abandoned = Ticket::new(started.clone());
        drop(started);
        drop(abandoned);
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "work dropped on its way: no action"
        );
    }
}
