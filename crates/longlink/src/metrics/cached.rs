//! `metrics` handles by a fixed name, counted or set on every message of a hot path: the recorder
//! looks a counter up by its name (a hash and a map search) at each `counter!`, so the
//! handle is kept once [`install`](super::install) has run. Before, each increment looks it
//! up: a handle taken before the recorder exists would count nowhere for good.

use std::sync::OnceLock;

use super::enabled;

/// A counter by a fixed name, its handle kept once longlink's recorder is installed.
pub(crate) struct CachedCounter {
    name: &'static str,
    handle: OnceLock<metrics::Counter>,
}

impl CachedCounter {
    pub(crate) const fn new(name: &'static str) -> CachedCounter {
        CachedCounter {
            name,
            handle: OnceLock::new(),
        }
    }

    pub(crate) fn increment(&self, n: u64) {
        if let Some(counter) = self.handle.get() {
            return counter.increment(n);
        }
        let counter = metrics::counter!(self.name);
        counter.increment(n);
        if enabled() {
            let _ = self.handle.set(counter);
        }
    }
}

/// A gauge by a fixed name and one label, its handle kept once longlink's recorder is
/// installed; set as a whole, so nothing set before that is missed once it is.
pub(crate) struct CachedGauge {
    name: &'static str,
    label: (&'static str, String),
    handle: OnceLock<metrics::Gauge>,
}

impl CachedGauge {
    pub(crate) fn new(name: &'static str, label: &'static str, value: &str) -> CachedGauge {
        CachedGauge {
            name,
            label: (label, value.to_owned()),
            handle: OnceLock::new(),
        }
    }

    pub(crate) fn set(&self, value: f64) {
        if let Some(gauge) = self.handle.get() {
            return gauge.set(value);
        }
        if enabled() {
            let gauge = metrics::gauge!(self.name, self.label.0 => self.label.1.clone());
            gauge.set(value);
            let _ = self.handle.set(gauge);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_increment_counts_before_and_after_the_handle_is_kept() {
        static COUNTER: CachedCounter = CachedCounter::new("longlink_test_cached_total");
        super::super::install();
        COUNTER.increment(2);
        assert!(COUNTER.handle.get().is_some(), "kept once installed");
        COUNTER.increment(3);
        let text = super::super::render().expect("installed");
        assert!(
            text.lines().any(|l| l == "longlink_test_cached_total 5"),
            "{text}"
        );
    }
}
