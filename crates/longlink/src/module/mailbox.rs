//! A module's mailbox: [`Job`], one unit of work on the module's task, and [`Mailbox`],
//! the sending side without the state's type (what gates, processors and timers hold).

use std::any::Any;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{CallError, Ticket};

/// A job's body; its argument is the module's `Ctx<S>`, type-erased.
type JobFn = Box<dyn FnOnce(&mut dyn Any) + Send>;

/// One unit of work for a module: runs on its task with its [`Ctx`](super::Ctx) (made and
/// run by ctx.rs, which knows the state's type).
pub(crate) struct Job {
    pub(super) label: &'static str,
    pub(super) run: JobFn,
    /// When the job was made and where its run time goes (`longlink_handler_seconds`).
    pub(super) timed: Option<(std::time::Instant, crate::metrics::FastHistogram)>,
    /// Who waits for it (and the background work it starts) to be handled.
    pub(super) handled: Ticket,
}

impl Job {
    /// Records the time from `since` to the end of the job's run in `histogram`.
    pub(crate) fn timed(
        mut self,
        since: std::time::Instant,
        histogram: crate::metrics::FastHistogram,
    ) -> Job {
        self.timed = Some((since, histogram));
        self
    }

    /// Carries `handled`: its action waits for this job to run, and for the callbacks of the
    /// background work it starts.
    pub(crate) fn handled(mut self, handled: Ticket) -> Job {
        self.handled = handled;
        self
    }
}

impl Job {
    /// A job that does not touch the module's state (an acknowledgement, a barrier).
    pub(crate) fn untyped(label: &'static str, f: impl FnOnce() + Send + 'static) -> Job {
        Job {
            label,
            run: Box::new(move |_: &mut dyn Any| f()),
            timed: None,
            handled: Ticket::new(None),
        }
    }
}

/// The sending side of a module's mailbox, without its state type.
#[derive(Clone)]
pub(crate) struct Mailbox {
    pub(super) tx: mpsc::Sender<Job>,
    pub(super) name: Arc<str>,
}

impl Mailbox {
    /// Queues a job, waiting while the mailbox is full. Gives the job back if the module is gone.
    ///
    /// The waiting path is boxed: every connection's reader holds this future while it is
    /// suspended, and the common path (room in the mailbox) needs no state at all.
    pub(crate) async fn send(&self, job: Job) -> Result<(), Job> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(job)) => {
                Box::pin(self.tx.send(job)).await.map_err(|e| e.0)
            }
            Err(mpsc::error::TrySendError::Closed(job)) => Err(job),
        }
    }

    /// Queues a job if there is room now; gives it back if the mailbox is full, `None` if the
    /// module is gone.
    pub(crate) fn try_push(&self, job: Job) -> Result<(), Option<Job>> {
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(job) => Some(job),
            mpsc::error::TrySendError::Closed(_) => None,
        })
    }

    pub(crate) fn try_send(&self, job: Job) -> Result<(), CallError> {
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => CallError::Full,
            mpsc::error::TrySendError::Closed(_) => CallError::Closed,
        })
    }

    /// Queues a job from a blocking thread.
    pub(crate) fn blocking_send(&self, job: Job) -> Result<(), Job> {
        self.tx.blocking_send(job).map_err(|e| e.0)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether both are the same module's mailbox.
    pub(crate) fn same_as(&self, other: &Mailbox) -> bool {
        self.tx.same_channel(&other.tx)
    }

    /// Returns once every job queued before this call has run (or the module has stopped).
    pub(crate) async fn barrier(&self) {
        let (tx, rx) = oneshot::channel::<()>();
        let job = Job {
            label: "barrier",
            run: Box::new(move |_: &mut dyn Any| {
                let _ = tx.send(());
            }),
            timed: None,
            handled: Ticket::new(None),
        };
        if self.send(job).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Jobs waiting in the mailbox.
    pub(crate) fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_owned()
    }
}
