//! Timers and cron that fire on the owning module's task.
//!
//! Each module keeps its own timer table; [`Ctx::after`](crate::Ctx::after),
//! [`Ctx::every`](crate::Ctx::every) and [`Ctx::cron`](crate::Ctx::cron) add to it and
//! [`Ctx::cancel`](crate::Ctx::cancel) removes from it. A callback runs with `&mut` access to
//! the module's state, one at a time with its messages. A cancelled timer never fires, even
//! when its deadline has already passed. Pending timers are dropped when the module stops (as
//! in leaf).

pub mod cron;

use std::collections::HashMap;
use std::future::poll_fn;
use std::time::Duration;

use tokio_util::time::DelayQueue;
use tokio_util::time::delay_queue::Key;

pub use cron::{CronError, CronExpr};

/// Identifies one timer of one module; returned when it is set, used to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId(pub(crate) u64);

pub(crate) type OnceFn<C> = Box<dyn FnOnce(&mut C) + Send>;
pub(crate) type RepeatFn<C> = Box<dyn FnMut(&mut C) + Send>;

pub(crate) enum TimerKind<C> {
    Once(Option<OnceFn<C>>),
    Every(Duration, Option<RepeatFn<C>>),
    Cron(Box<CronExpr>, Option<RepeatFn<C>>),
}

pub(crate) struct TimerEntry<C> {
    pub(crate) key: Key,
    pub(crate) kind: TimerKind<C>,
}

/// One module's timer table: deadlines in a delay queue, callbacks by id.
pub(crate) struct Timers<C> {
    pub(crate) queue: DelayQueue<u64>,
    pub(crate) entries: HashMap<u64, TimerEntry<C>>,
    next_id: u64,
}

impl<C> Timers<C> {
    pub(crate) fn new() -> Self {
        Timers {
            queue: DelayQueue::new(),
            entries: HashMap::new(),
            next_id: 0,
        }
    }

    pub(crate) fn add(&mut self, delay: Duration, kind: TimerKind<C>) -> TimerId {
        self.next_id += 1;
        let id = self.next_id;
        let key = self.queue.insert(id, delay);
        self.entries.insert(id, TimerEntry { key, kind });
        TimerId(id)
    }

    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        match self.entries.remove(&id.0) {
            Some(entry) => {
                // The key is gone from the queue when the timer is firing right now.
                let _ = self.queue.try_remove(&entry.key);
                true
            }
            None => false,
        }
    }

    /// How many timers are set.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The next timer id that is due; pending forever while there is none.
    pub(crate) async fn next_due(&mut self) -> u64 {
        if self.queue.is_empty() {
            return std::future::pending().await;
        }
        match poll_fn(|cx| self.queue.poll_expired(cx)).await {
            Some(expired) => expired.into_inner(),
            None => std::future::pending().await,
        }
    }
}

/// How long from now until the next time `expr` matches (local time); `None` if never.
pub(crate) fn until_next(expr: &CronExpr) -> Option<Duration> {
    let now = chrono::Local::now();
    let next = expr.next(&now)?;
    (next - now).to_std().ok()
}
