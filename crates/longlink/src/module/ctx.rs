//! [`Ctx`]: a module's state plus what a handler may do from the module's task: timers, cron,
//! background jobs, and calls to other modules whose replies come back here.

use std::any::Any;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{CallError, Handled, Job, Mailbox, ModuleRef, Ticket, panic_message};
use crate::timer::{CronExpr, TimerId, TimerKind, Timers, until_next};

/// A module's state and its handle to the module's own task.
///
/// Handlers, timer callbacks, call callbacks and job callbacks all get `&mut Ctx<S>`. It
/// dereferences to the state `S`.
///
/// ```
/// use std::time::Duration;
/// use longlink::{Ctx, Module};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ticker = Module::new("ticker", Vec::<&'static str>::new()).on_init(|ctx: &mut Ctx<Vec<&'static str>>| {
///     ctx.after(Duration::from_millis(20), |ctx| ctx.push("after"));
///     let id = ctx.after(Duration::from_millis(10), |ctx| ctx.push("cancelled"));
///     ctx.cancel(id);
/// });
/// let handle = ticker.module_ref();
/// let running = ticker.start().await.unwrap();
/// tokio::time::sleep(Duration::from_millis(60)).await;
/// let seen = handle.call(Duration::from_secs(1), |ctx| ctx.clone()).await.unwrap();
/// assert_eq!(seen, vec!["after"]);
/// running.stop(Duration::from_secs(1)).await;
/// # }
/// ```
pub struct Ctx<S> {
    state: S,
    mailbox: Mailbox,
    pub(super) timers: Timers<Ctx<S>>,
    /// Background jobs and calls whose callback has not run yet.
    pub(super) pending: Arc<AtomicUsize>,
    /// Who waits for the running job to be handled: its background work's callbacks carry it.
    pub(super) handled: Option<Arc<Handled>>,
}

impl<S> Deref for Ctx<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.state
    }
}

impl<S> DerefMut for Ctx<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.state
    }
}

/// Counts one piece of background work until its callback runs or is dropped.
struct PendingGuard(Arc<AtomicUsize>);

impl PendingGuard {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        PendingGuard(Arc::clone(counter))
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A queue of background jobs that run one at a time, in the order they were given (leaf's
/// `LinearContext`). Create it with [`Ctx::linear`]; clone it freely.
#[derive(Clone)]
pub struct Linear {
    tx: mpsc::UnboundedSender<Box<dyn FnOnce() + Send>>,
}

impl<S: Send + 'static> Ctx<S> {
    pub(crate) fn new(state: S, mailbox: Mailbox) -> Self {
        Ctx {
            state,
            mailbox,
            timers: Timers::new(),
            pending: Arc::new(AtomicUsize::new(0)),
            handled: None,
        }
    }

    /// The state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The state, mutably.
    pub fn state_mut(&mut self) -> &mut S {
        &mut self.state
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        self.mailbox.name()
    }

    /// A handle to this module, e.g. to give to another module.
    pub fn module_ref(&self) -> ModuleRef<S> {
        ModuleRef {
            mailbox: self.mailbox.clone(),
            _state: std::marker::PhantomData,
        }
    }

    /// Calls `f` once, after `delay`, on this module's task (leaf's `AfterFunc`).
    pub fn after(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut Ctx<S>) + Send + 'static,
    ) -> TimerId {
        self.timers.add(delay, TimerKind::Once(Some(Box::new(f))))
    }

    /// Calls `f` every `period` (first after one period) until cancelled.
    pub fn every(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut Ctx<S>) + Send + 'static,
    ) -> TimerId {
        let period = period.max(Duration::from_millis(1));
        self.timers
            .add(period, TimerKind::Every(period, Some(Box::new(f))))
    }

    /// Calls `f` each time the cron expression matches, in local time (leaf's `CronFunc`).
    /// The next run is scheduled before `f` runs, so cancelling inside `f` stops the next one.
    /// An expression that never matches sets no timer and returns `None`.
    pub fn cron(
        &mut self,
        expr: CronExpr,
        f: impl FnMut(&mut Ctx<S>) + Send + 'static,
    ) -> Option<TimerId> {
        let first = until_next(&expr)?;
        Some(
            self.timers
                .add(first, TimerKind::Cron(Box::new(expr), Some(Box::new(f)))),
        )
    }

    /// Cancels a timer or cron; it will not fire again, even if already due. Returns whether
    /// it was still set.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// How many timers and crons are set.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Runs the blocking function `f` on a worker thread, then `cb` with its result on this
    /// module's task (leaf's `Skeleton.Go`). If `f` panics, the panic is logged and `cb` does
    /// not run.
    pub fn go<R: Send + 'static>(
        &mut self,
        f: impl FnOnce() -> R + Send + 'static,
        cb: impl FnOnce(&mut Ctx<S>, R) + Send + 'static,
    ) {
        let guard = PendingGuard::new(&self.pending);
        let mailbox = self.mailbox.clone();
        let handled = Ticket::new(self.handled.clone());
        tokio::task::spawn_blocking(move || run_then_callback(mailbox, (guard, handled), f, cb));
    }

    /// Runs the future `fut` on the runtime, then `cb` with its output on this module's task.
    pub fn spawn<R: Send + 'static>(
        &mut self,
        fut: impl Future<Output = R> + Send + 'static,
        cb: impl FnOnce(&mut Ctx<S>, R) + Send + 'static,
    ) {
        let guard = PendingGuard::new(&self.pending);
        let mailbox = self.mailbox.clone();
        let handled = Ticket::new(self.handled.clone());
        tokio::spawn(async move {
            let out = fut.await;
            let job = Job::new("spawn callback", move |ctx: &mut Ctx<S>| {
                drop(guard);
                cb(ctx, out)
            });
            let _ = mailbox.send(job.handled(handled)).await;
        });
    }

    /// A new linear context: jobs given to it with [`Ctx::go_linear`] run one at a time, in
    /// order, on a worker thread (leaf's `NewLinearContext`).
    pub fn linear(&mut self) -> Linear {
        let (tx, mut rx) = mpsc::unbounded_channel::<Box<dyn FnOnce() + Send>>();
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                if let Err(e) = tokio::task::spawn_blocking(job).await {
                    tracing::error!(error = %e, "linear job failed");
                }
            }
        });
        Linear { tx }
    }

    /// Runs `f` after every job given to `linear` before it, then `cb` on this module's task.
    pub fn go_linear<R: Send + 'static>(
        &mut self,
        linear: &Linear,
        f: impl FnOnce() -> R + Send + 'static,
        cb: impl FnOnce(&mut Ctx<S>, R) + Send + 'static,
    ) {
        let guard = PendingGuard::new(&self.pending);
        let mailbox = self.mailbox.clone();
        let handled = Ticket::new(self.handled.clone());
        // If the linear worker is gone the job (and its guard) is dropped.
        let _ = linear.tx.send(Box::new(move || {
            run_then_callback(mailbox, (guard, handled), f, cb)
        }));
    }

    /// Calls `f` on another module and then `cb` with the result on this module's task
    /// (leaf's `AsynCall`). `cb` always runs, with [`CallError::Timeout`] after `timeout`.
    pub fn call<T: Send + 'static, R: Send + 'static>(
        &mut self,
        target: &ModuleRef<T>,
        timeout: Duration,
        f: impl FnOnce(&mut Ctx<T>) -> R + Send + 'static,
        cb: impl FnOnce(&mut Ctx<S>, Result<R, CallError>) + Send + 'static,
    ) {
        let guard = PendingGuard::new(&self.pending);
        let mailbox = self.mailbox.clone();
        let target = target.clone();
        let handled = Ticket::new(self.handled.clone());
        tokio::spawn(async move {
            let result = target.call(timeout, f).await;
            let job = Job::new("call callback", move |ctx: &mut Ctx<S>| {
                drop(guard);
                cb(ctx, result)
            });
            let _ = mailbox.send(job.handled(handled)).await;
        });
    }

    pub(super) fn fire(&mut self, id: u64) {
        let Some(entry) = self.timers.entries.get_mut(&id) else {
            return;
        };
        match &mut entry.kind {
            TimerKind::Once(f) => {
                let f = f.take();
                self.timers.entries.remove(&id);
                if let Some(f) = f {
                    guarded(self, "timer", f);
                }
            }
            TimerKind::Every(period, f) => {
                let period = *period;
                let f = f.take();
                entry.key = self.timers.queue.insert(id, period);
                self.run_repeating(id, f);
            }
            TimerKind::Cron(expr, f) => {
                let f = f.take();
                match until_next(expr) {
                    Some(next) => entry.key = self.timers.queue.insert(id, next),
                    None => {
                        self.timers.entries.remove(&id);
                    }
                }
                self.run_repeating(id, f);
            }
        }
    }

    /// Runs a repeating callback, then puts it back unless it was cancelled meanwhile.
    fn run_repeating(&mut self, id: u64, f: Option<crate::timer::RepeatFn<Ctx<S>>>) {
        let Some(mut f) = f else { return };
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(self))) {
            tracing::error!(module = %self.name(), panic = %panic_message(&panic), "timer callback panicked");
        }
        if let Some(entry) = self.timers.entries.get_mut(&id) {
            match &mut entry.kind {
                TimerKind::Every(_, slot) | TimerKind::Cron(_, slot) => *slot = Some(f),
                TimerKind::Once(_) => {}
            }
        }
    }
}

fn guarded<S: Send + 'static>(ctx: &mut Ctx<S>, what: &str, f: impl FnOnce(&mut Ctx<S>)) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(ctx))) {
        tracing::error!(module = %ctx.name(), job = what, panic = %panic_message(&panic), "callback panicked; the module keeps serving");
    }
}

/// Runs `f` on the current (blocking) thread, then queues `cb` on the module.
fn run_then_callback<S: Send + 'static, R: Send + 'static>(
    mailbox: Mailbox,
    (guard, handled): (PendingGuard, Ticket),
    f: impl FnOnce() -> R,
    cb: impl FnOnce(&mut Ctx<S>, R) + Send + 'static,
) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(out) => {
            let job = Job::new("go callback", move |ctx: &mut Ctx<S>| {
                drop(guard);
                cb(ctx, out)
            });
            let _ = mailbox.blocking_send(job.handled(handled));
        }
        Err(panic) => {
            tracing::error!(module = %mailbox.name(), panic = %panic_message(&panic), "background job panicked");
        }
    }
}

impl Job {
    /// A job for a module whose state is `S`; `label` names it in panic logs.
    pub(crate) fn new<S: Send + 'static>(
        label: &'static str,
        f: impl FnOnce(&mut Ctx<S>) + Send + 'static,
    ) -> Job {
        Job {
            label,
            run: Box::new(move |any: &mut dyn Any| {
                // A mailbox is only reachable through a ModuleRef<S>, so the type matches.
                if let Some(ctx) = any.downcast_mut::<Ctx<S>>() {
                    f(ctx)
                }
            }),
            timed: None,
            handled: Ticket::new(None),
        }
    }
}
