//! `GET /stats.json` and the live page's history: once a second the admin listener reads the
//! metrics (the Prometheus text of `/metrics`, [`prom`]) and keeps a ring of the last
//! [`HISTORY`] per-second samples, so the page shows the last minutes as soon as it opens.
//!
//! The answer (every field is a contract; rates per second, latencies in seconds):
//!
//! ```text
//! { "version", "now", "uptime_secs", "interval_secs": 1,
//!   "connections": {"tcp", "ws", "total"}, "rejected": {"<reason>": n, ..},
//!   "rates": {"messages_in", "messages_out", "bytes_in", "bytes_out", "queue_full"},
//!   "totals": {"messages_in", "messages_out", "bytes_in", "bytes_out", "decode_errors"},
//!   "latency": {"window_secs", "count", "p50", "p90", "p99"},
//!   "latency_by_message": [{"msg", "count", "p50", "p99"}],          (since start)
//!   "sessions": {"started", "waiting", "resumed", "replayed", "overflows", "evicted",
//!                "refused": {"unknown", "expired", "replaced", "overflow", "retry"}},
//!   "queue_full": {"drops", "disconnects"},
//!   "mailboxes": [{"module", "depth"}],
//!   "nodes": [{"node", "node_type", "connections", "sessions", "groups"}],
//!   "history": {"t", "connections_tcp", "connections_ws", "messages_in", "messages_out",
//!               "bytes_in", "bytes_out", "queue_full", "latency_p50", "latency_p99"} }
//! ```
//!
//! `history` holds one column per figure, oldest first, one entry a second (`t` in seconds
//! since the Unix epoch); a latency is `null` for a second without a handled message.

pub(crate) mod prom;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::metrics;
use prom::{Snapshot, quantile};

/// Samples kept: five minutes at one a second.
pub(crate) const HISTORY: usize = 300;

/// The window of `latency`'s percentiles, in samples (seconds).
const LATENCY_WINDOW: usize = 60;

/// What one second's sample keeps: the figures shown, and the running totals the next
/// sample's rates are taken from.
#[derive(Debug, Clone)]
struct Sample {
    t: u64,
    at: Instant,
    conn_tcp: f64,
    conn_ws: f64,
    totals: Totals,
    rates: Totals,
    /// Handler latency's cumulative buckets (every message type), for windows.
    latency: Vec<(f64, f64)>,
    p50: Option<f64>,
    p99: Option<f64>,
}

/// Counters that the page shows as rates.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    messages_in: f64,
    messages_out: f64,
    bytes_in: f64,
    bytes_out: f64,
    queue_full: f64,
}

impl Totals {
    fn read(s: &Snapshot) -> Totals {
        Totals {
            messages_in: s.sum(metrics::MESSAGES_IN),
            messages_out: s.sum(metrics::MESSAGES_OUT),
            bytes_in: s.sum(metrics::BYTES_IN),
            bytes_out: s.sum(metrics::BYTES_OUT),
            queue_full: s.sum(metrics::QUEUE_FULL_DROPS) + s.sum(metrics::QUEUE_FULL_DISCONNECTS),
        }
    }

    /// Per second from `before` to `self` over `secs` (0 for a counter that went down).
    fn rate(&self, before: &Totals, secs: f64) -> Totals {
        let r = |now: f64, then: f64| (now - then).max(0.0) / secs;
        Totals {
            messages_in: r(self.messages_in, before.messages_in),
            messages_out: r(self.messages_out, before.messages_out),
            bytes_in: r(self.bytes_in, before.bytes_in),
            bytes_out: r(self.bytes_out, before.bytes_out),
            queue_full: r(self.queue_full, before.queue_full),
        }
    }
}

/// Buckets `now` minus buckets `then` (the observations between them).
fn between(now: &[(f64, f64)], then: &[(f64, f64)]) -> Vec<(f64, f64)> {
    now.iter()
        .map(|&(le, count)| {
            let before = then.iter().find(|(b, _)| *b == le).map_or(0.0, |(_, c)| *c);
            (le, (count - before).max(0.0))
        })
        .collect()
}

/// The ring of per-second samples.
pub(crate) struct History {
    started: Instant,
    samples: Mutex<VecDeque<Sample>>,
}

impl Default for History {
    fn default() -> Self {
        History {
            started: Instant::now(),
            samples: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl History {
    /// Takes one sample from the metrics as they are now (nothing before
    /// [`metrics::install`]).
    pub(crate) fn sample(&self) {
        let Some(text) = metrics::render_recorded() else {
            return;
        };
        let snap = Snapshot::parse(&text);
        let at = Instant::now();
        let totals = Totals::read(&snap);
        let latency = snap.buckets(metrics::HANDLER_SECONDS, None);
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let (rates, second) = match samples.back() {
            Some(last) => {
                let secs = at.duration_since(last.at).as_secs_f64().max(1e-3);
                (
                    totals.rate(&last.totals, secs),
                    between(&latency, &last.latency),
                )
            }
            None => (Totals::default(), Vec::new()),
        };
        if samples.len() == HISTORY {
            samples.pop_front();
        }
        samples.push_back(Sample {
            t: unix_now(),
            at,
            conn_tcp: snap.with(metrics::CONNECTIONS_OPEN, "transport", "tcp"),
            conn_ws: snap.with(metrics::CONNECTIONS_OPEN, "transport", "ws"),
            totals,
            rates,
            p50: quantile(0.5, &second),
            p99: quantile(0.99, &second),
            latency,
        });
    }

    /// The history's columns, oldest first.
    fn columns(samples: &VecDeque<Sample>) -> Value {
        let col = |f: &dyn Fn(&Sample) -> Value| samples.iter().map(f).collect::<Vec<_>>();
        json!({
            "t": col(&|s| json!(s.t)),
            "connections_tcp": col(&|s| json!(s.conn_tcp)),
            "connections_ws": col(&|s| json!(s.conn_ws)),
            "messages_in": col(&|s| json!(s.rates.messages_in)),
            "messages_out": col(&|s| json!(s.rates.messages_out)),
            "bytes_in": col(&|s| json!(s.rates.bytes_in)),
            "bytes_out": col(&|s| json!(s.rates.bytes_out)),
            "queue_full": col(&|s| json!(s.rates.queue_full)),
            "latency_p50": col(&|s| json!(s.p50)),
            "latency_p99": col(&|s| json!(s.p99)),
        })
    }

    /// The figures of `/stats.json` but `mailboxes` and `nodes` (the admin's to add).
    pub(crate) fn json(&self) -> Value {
        let text = metrics::render_recorded().unwrap_or_default();
        let snap = Snapshot::parse(&text);
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let last = samples.back();
        let rates = last.map(|s| s.rates).unwrap_or_default();
        let totals = Totals::read(&snap);
        let (tcp, ws) = (
            snap.with(metrics::CONNECTIONS_OPEN, "transport", "tcp"),
            snap.with(metrics::CONNECTIONS_OPEN, "transport", "ws"),
        );
        let window_start = samples.len().saturating_sub(LATENCY_WINDOW + 1);
        let window = match (samples.get(window_start), last) {
            (Some(first), Some(last)) if samples.len() > 1 => {
                between(&last.latency, &first.latency)
            }
            _ => Vec::new(),
        };
        let window_secs = samples.len().saturating_sub(window_start + 1);
        let named = |name: &str, key: &str| -> Value {
            snap.by(name, key)
                .into_iter()
                .map(|(k, v)| (k, json!(v)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "now": unix_now(),
            "uptime_secs": self.started.elapsed().as_secs(),
            "interval_secs": 1,
            "connections": {"tcp": tcp, "ws": ws, "total": tcp + ws},
            "rejected": named(metrics::CONNECTIONS_REJECTED, "reason"),
            "rates": {
                "messages_in": rates.messages_in, "messages_out": rates.messages_out,
                "bytes_in": rates.bytes_in, "bytes_out": rates.bytes_out,
                "queue_full": rates.queue_full,
            },
            "totals": {
                "messages_in": totals.messages_in, "messages_out": totals.messages_out,
                "bytes_in": totals.bytes_in, "bytes_out": totals.bytes_out,
                "decode_errors": snap.sum(metrics::DECODE_ERRORS),
            },
            "latency": {
                "window_secs": window_secs,
                "count": window.last().map_or(0.0, |b| b.1),
                "p50": quantile(0.5, &window),
                "p90": quantile(0.9, &window),
                "p99": quantile(0.99, &window),
            },
            "latency_by_message": by_message(&snap),
            "sessions": {
                "started": snap.sum(metrics::SESSIONS_STARTED),
                "waiting": snap.sum(metrics::SESSIONS_WAITING),
                "resumed": snap.sum(metrics::SESSIONS_RESUMED),
                "replayed": snap.sum(metrics::SESSIONS_REPLAYED),
                "overflows": snap.sum(metrics::SESSIONS_OVERFLOWS),
                "evicted": snap.sum(metrics::SESSIONS_EVICTED),
                "refused": refused(&snap),
            },
            "queue_full": {
                "drops": snap.sum(metrics::QUEUE_FULL_DROPS),
                "disconnects": snap.sum(metrics::QUEUE_FULL_DISCONNECTS),
            },
            "history": Self::columns(&samples),
        })
    }
}

/// Refused resumes by reason, every reason present (0 before the first).
fn refused(snap: &Snapshot) -> Value {
    longlink_wire::resume::RefuseReason::ALL
        .iter()
        .map(|r| {
            let n = snap.with(metrics::SESSIONS_REFUSED, "reason", r.as_str());
            (r.as_str().to_owned(), json!(n))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Each message type's handled count and percentiles since start, busiest first.
fn by_message(snap: &Snapshot) -> Value {
    let count = format!("{}_count", metrics::HANDLER_SECONDS);
    let mut rows: Vec<(String, f64)> = snap.by(&count, "msg");
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    rows.into_iter()
        .map(|(msg, count)| {
            let buckets = snap.buckets(metrics::HANDLER_SECONDS, Some(("msg", &msg)));
            json!({
                "msg": msg,
                "count": count,
                "p50": quantile(0.5, &buckets),
                "p99": quantile(0.99, &buckets),
            })
        })
        .collect()
}
