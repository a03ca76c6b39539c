//! longlink's per-message series, kept by longlink itself: `longlink_messages_in_total`,
//! `longlink_messages_out_total`, `longlink_bytes_in_total`, `longlink_bytes_out_total` and
//! `longlink_handler_seconds`, rendered after the exporter's text at `GET /metrics`.
//!
//! Each of these moves with every message. Through the exporter, a counter's increment is
//! two atomic adds (its value and its generation, kept for idle timeouts nobody here sets)
//! and a histogram's sample a clock read, an epoch pin and a push of the raw sample, drained
//! later. Here a counter is one relaxed add, a sample two (its bucket and the sum), with the
//! same buckets ([`BUCKETS`](super::BUCKETS)).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::BUCKETS;

/// A counter: one relaxed add per increment.
#[derive(Debug, Clone)]
pub(crate) struct FastCounter(Arc<AtomicU64>);

impl FastCounter {
    pub(crate) fn increment(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// A histogram over [`BUCKETS`](super::BUCKETS): a count per bucket (the last: above them
/// all) and the sum, in nanoseconds.
#[derive(Debug, Clone)]
pub(crate) struct FastHistogram(Arc<Cells>);

#[derive(Debug)]
struct Cells {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

/// The buckets' upper bounds in nanoseconds (`le`: a sample on a bound is in its bucket).
fn bounds_ns() -> &'static [u64; BUCKETS.len()] {
    static BOUNDS: std::sync::OnceLock<[u64; BUCKETS.len()]> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(|| std::array::from_fn(|i| (BUCKETS[i] * 1e9).round() as u64))
}

impl FastHistogram {
    pub(crate) fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = bounds_ns()
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(BUCKETS.len());
        self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.0.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

enum Kind {
    Counter(Arc<AtomicU64>),
    Histogram(Arc<Cells>),
}

/// One series: its label (`msg` or `transport`) and its storage.
struct Series {
    label: (&'static str, String),
    kind: Kind,
}

/// One metric name: its help text and its series, in registration order.
struct Family {
    name: &'static str,
    help: &'static str,
    series: Vec<Series>,
}

static FAMILIES: Mutex<Vec<Family>> = Mutex::new(Vec::new());

/// The series `name{key="value"}`, made on first use (the same one after).
fn series(
    (name, help): (&'static str, &'static str),
    label: (&'static str, &str),
    make: impl FnOnce() -> Kind,
) -> Kind {
    let mut families = FAMILIES.lock().unwrap_or_else(|p| p.into_inner());
    let family = match families.iter().position(|f| f.name == name) {
        Some(i) => &mut families[i],
        None => {
            families.push(Family {
                name,
                help,
                series: Vec::new(),
            });
            families.last_mut().expect("just pushed")
        }
    };
    let found = family
        .series
        .iter()
        .find(|s| s.label.0 == label.0 && s.label.1 == label.1);
    let kind = match found {
        Some(s) => &s.kind,
        None => {
            family.series.push(Series {
                label: (label.0, label.1.to_owned()),
                kind: make(),
            });
            &family.series.last().expect("just pushed").kind
        }
    };
    match kind {
        Kind::Counter(c) => Kind::Counter(Arc::clone(c)),
        Kind::Histogram(h) => Kind::Histogram(Arc::clone(h)),
    }
}

/// The counter `name{key="value"}` (`help` describes the name).
pub(crate) fn counter(
    name: (&'static str, &'static str),
    label: (&'static str, &str),
) -> FastCounter {
    match series(name, label, || Kind::Counter(Arc::default())) {
        Kind::Counter(c) => FastCounter(c),
        Kind::Histogram(_) => unreachable!("{} is a counter", name.0),
    }
}

/// The histogram `name{key="value"}`, in seconds.
pub(crate) fn histogram(
    name: (&'static str, &'static str),
    label: (&'static str, &str),
) -> FastHistogram {
    let make = || {
        Kind::Histogram(Arc::new(Cells {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }))
    };
    match series(name, label, make) {
        Kind::Histogram(h) => FastHistogram(h),
        Kind::Counter(_) => unreachable!("{} is a histogram", name.0),
    }
}

/// The sum of a counter family (every label).
pub(crate) fn total(name: &str) -> u64 {
    let families = FAMILIES.lock().unwrap_or_else(|p| p.into_inner());
    let Some(family) = families.iter().find(|f| f.name == name) else {
        return 0;
    };
    family
        .series
        .iter()
        .map(|s| match &s.kind {
            Kind::Counter(c) => c.load(Ordering::Relaxed),
            Kind::Histogram(_) => 0,
        })
        .sum()
}

/// Appends every family in the Prometheus text format, as the exporter writes its own.
pub(crate) fn render(out: &mut String) {
    let families = FAMILIES.lock().unwrap_or_else(|p| p.into_inner());
    for family in families.iter() {
        let name = family.name;
        let kind = match family.series.first().map(|s| &s.kind) {
            Some(Kind::Counter(_)) => "counter",
            Some(Kind::Histogram(_)) => "histogram",
            None => continue,
        };
        let _ = write!(out, "# HELP {name} {}\n# TYPE {name} {kind}\n", family.help);
        for s in &family.series {
            let (key, value) = (s.label.0, escape(&s.label.1));
            match &s.kind {
                Kind::Counter(c) => {
                    let _ = writeln!(
                        out,
                        "{name}{{{key}=\"{value}\"}} {}",
                        c.load(Ordering::Relaxed)
                    );
                }
                Kind::Histogram(h) => {
                    let mut count = 0;
                    for (i, bound) in BUCKETS.iter().enumerate() {
                        count += h.buckets[i].load(Ordering::Relaxed);
                        let _ = writeln!(
                            out,
                            "{name}_bucket{{{key}=\"{value}\",le=\"{bound}\"}} {count}"
                        );
                    }
                    count += h.buckets[BUCKETS.len()].load(Ordering::Relaxed);
                    let sum = h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{{key}=\"{value}\",le=\"+Inf\"}} {count}"
                    );
                    let _ = writeln!(out, "{name}_sum{{{key}=\"{value}\"}} {sum}");
                    let _ = writeln!(out, "{name}_count{{{key}=\"{value}\"}} {count}");
                }
            }
        }
        out.push('\n');
    }
}

/// A label value as the text format writes it: `\`, `"` and newlines escaped.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if v.contains(['\\', '"', '\n']) {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .into()
    } else {
        v.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: (&str, &str) = ("test_series_counter_total", "A test counter");
    const H: (&str, &str) = ("test_series_seconds", "A test histogram");

    #[test]
    fn a_series_is_made_once_and_rendered_with_its_family() {
        let a = counter(C, ("msg", "A"));
        counter(C, ("msg", "A")).increment(2);
        a.increment(1);
        counter(C, ("msg", "q\"uote")).increment(5);
        assert_eq!(total(C.0), 8);
        let mut out = String::new();
        render(&mut out);
        let family = "# HELP test_series_counter_total A test counter\n\
                      # TYPE test_series_counter_total counter\n\
                      test_series_counter_total{msg=\"A\"} 3\n\
                      test_series_counter_total{msg=\"q\\\"uote\"} 5\n\n";
        assert!(out.contains(family), "{out}");
    }

    #[test]
    fn a_histogram_counts_each_sample_in_the_first_bucket_it_is_under() {
        let h = histogram(H, ("msg", "B"));
        h.record(Duration::from_micros(50)); // on the first bound: in it
        h.record(Duration::from_micros(51));
        h.record(Duration::from_secs(11)); // above them all
        let mut out = String::new();
        render(&mut out);
        for line in [
            "test_series_seconds_bucket{msg=\"B\",le=\"0.00005\"} 1\n",
            "test_series_seconds_bucket{msg=\"B\",le=\"0.0001\"} 2\n",
            "test_series_seconds_bucket{msg=\"B\",le=\"10\"} 2\n",
            "test_series_seconds_bucket{msg=\"B\",le=\"+Inf\"} 3\n",
            "test_series_seconds_sum{msg=\"B\"} 11.000101\n",
            "test_series_seconds_count{msg=\"B\"} 3\n",
        ] {
            assert!(out.contains(line), "{line} in {out}");
        }
    }
}
