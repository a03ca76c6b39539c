//! One message type's metric handles: received, sent, handler latency, and the counters of
//! its delivery class and rate limit, each registered at its first use.

use std::sync::OnceLock;
use std::time::Instant;

use super::series::{self, FastCounter, FastHistogram};
use super::{
    HANDLER_SECONDS_HELP, LATEST_REPLACED_HELP, MESSAGES_IN_HELP, MESSAGES_OUT_HELP,
    RATE_LIMITED_HELP, VOLATILE_DROPPED_HELP, enabled,
};

/// One message type's handles.
pub(crate) struct MsgMetrics {
    received: FastCounter,
    pub(crate) sent: FastCounter,
    pub(crate) latency: FastHistogram,
    /// The delivery classes' and rate limits' counters, made at their first count (most
    /// types never have one).
    dropped: OnceLock<FastCounter>,
    replaced: OnceLock<FastCounter>,
    limited: OnceLock<FastCounter>,
}

/// What a message's delivery class or rate limit did with it, for its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// A volatile message dropped.
    Dropped,
    /// A latest-per-key message that replaced a waiting one.
    Replaced,
    /// An incoming message over its type's rate limit.
    Limited,
}

impl MsgMetrics {
    fn new(name: &str) -> Self {
        MsgMetrics {
            received: series::counter(MESSAGES_IN_HELP, ("msg", name)),
            sent: series::counter(MESSAGES_OUT_HELP, ("msg", name)),
            latency: series::histogram(HANDLER_SECONDS_HELP, ("msg", name)),
            dropped: OnceLock::new(),
            replaced: OnceLock::new(),
            limited: OnceLock::new(),
        }
    }

    /// Counts one message of this type, `name`, that `what` happened to.
    pub(crate) fn delivered(&self, name: &str, what: Delivered) {
        let (slot, help) = match what {
            Delivered::Dropped => (&self.dropped, VOLATILE_DROPPED_HELP),
            Delivered::Replaced => (&self.replaced, LATEST_REPLACED_HELP),
            Delivered::Limited => (&self.limited, RATE_LIMITED_HELP),
        };
        slot.get_or_init(|| series::counter(help, ("msg", name)))
            .increment(1);
    }

    pub(crate) fn received(&self) {
        self.received.increment(1);
    }

    /// Records the time since `since`.
    pub(crate) fn handled(&self, since: Instant) {
        self.latency.record(since.elapsed());
    }
}

/// A message type's handles, registered on first use after [`install`].
#[derive(Default)]
pub(crate) struct MsgSlot(OnceLock<MsgMetrics>);

impl MsgSlot {
    pub(crate) fn get(&self, name: &str) -> Option<&MsgMetrics> {
        if !enabled() {
            return None;
        }
        Some(self.0.get_or_init(|| MsgMetrics::new(name)))
    }
}
