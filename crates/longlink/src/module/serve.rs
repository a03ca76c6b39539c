//! A module's loop: its jobs and due timers run one at a time on its own task until it is
//! told to stop, then the drain (background work in flight, then what is queued).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Ctx, Job, panic_message};

/// The module loop: jobs and timers, one at a time, until `stop`; then the drain.
pub(super) async fn serve<S: Send + 'static>(
    ctx: &mut Ctx<S>,
    mut rx: mpsc::Receiver<Job>,
    mut stop: oneshot::Receiver<Duration>,
) {
    let timeout = loop {
        tokio::select! {
            biased;
            timeout = &mut stop => break timeout.unwrap_or(Duration::ZERO),
            // Due timers before the mailbox, so a busy mailbox cannot starve them.
            id = ctx.timers.next_due() => ctx.fire(id),
            job = rx.recv() => match job {
                Some(job) => run_job(ctx, job),
                None => break Duration::ZERO,
            },
        }
    };
    // Let background work in flight finish (its callbacks come through the mailbox), within
    // the drain timeout; then run what is queued and close.
    let deadline = tokio::time::Instant::now() + timeout;
    while ctx.pending.load(Ordering::SeqCst) > 0 {
        tokio::select! {
            job = rx.recv() => match job {
                Some(job) => run_job(ctx, job),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(module = %ctx.name(), pending = ctx.pending.load(Ordering::SeqCst), "stopping with background work unfinished");
                break;
            }
        }
    }
    rx.close();
    while let Ok(job) = rx.try_recv() {
        run_job(ctx, job);
    }
}

/// Runs one job, catching and logging a panic. The background work it starts carries what
/// it carries (see `handled`).
fn run_job<S: Send + 'static>(ctx: &mut Ctx<S>, job: Job) {
    let Job {
        label,
        run,
        timed,
        handled,
    } = job;
    ctx.handled = handled.run();
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(ctx as &mut dyn Any))) {
        tracing::error!(module = %ctx.name(), job = label, panic = %panic_message(&panic), "handler panicked; the module keeps serving");
    }
    ctx.handled = None;
    if let Some((since, histogram)) = timed {
        histogram.record(since.elapsed());
    }
}
