//! longlink's metrics, through the [`metrics`](https://docs.rs/metrics) facade, rendered by
//! `metrics-exporter-prometheus` at `GET /metrics`.
//!
//! Recording starts once [`install`] has run (binding an [`AdminServer`](crate::admin::AdminServer)
//! calls it); before that the counters cost nothing. The recorder is process-wide: several
//! apps in one process (tests) share one set of metrics.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `longlink_connections_open` | gauge | `transport` = `tcp` \| `ws` |
//! | `longlink_connections_accepted_total` | counter | `transport` |
//! | `longlink_connections_rejected_total` | counter | `reason` = `max_conn` \| `per_ip` \| `handshake` (WebSocket upgrade failed, or a handshake timed out) \| `tls` (TLS handshake failed) |
//! | `longlink_messages_in_total` | counter | `msg` (the registered name) |
//! | `longlink_messages_out_total` | counter | `msg` |
//! | `longlink_bytes_in_total`, `longlink_bytes_out_total` | counter | `transport` |
//! | `longlink_decode_errors_total` | counter | |
//! | `longlink_volatile_dropped_total` | counter | `msg` (volatile messages not queued: the queue was long, or the session had no socket) |
//! | `longlink_latest_replaced_total` | counter | `msg` (latest-per-key messages that replaced a waiting one of their key) |
//! | `longlink_rate_limited_total` | counter | `msg` (incoming messages over their type's rate limit, dropped or closing the connection) |
//! | `longlink_queue_full_drops_total` | counter | |
//! | `longlink_queue_full_disconnects_total` | counter | |
//! | `longlink_handler_seconds` | histogram | `msg` |
//! | `longlink_module_mailbox_depth` | gauge | `module` |
//! | `longlink_sessions_started_total` | counter | (resumable sessions made by `LL_SessionStart`) |
//! | `longlink_sessions_resumed_total` | counter | |
//! | `longlink_sessions_refused_total` | counter | `reason` = `unknown` \| `expired` \| `replaced` \| `overflow` \| `retry` |
//! | `longlink_sessions_replayed_total` | counter | (messages written again after a resume) |
//! | `longlink_sessions_overflows_total` | counter | (sessions ended over `resume_buffer`, or over `pending_write_bytes` while waiting) |
//! | `longlink_sessions_evicted_total` | counter | (waiting sessions ended to make room: `max_waiting_per_ip`, or a new connection over `max_conn_num` or `max_conn_per_ip`) |
//! | `longlink_sessions_waiting` | gauge | (sessions without a socket, waiting for their client) |
//!
//! Beside them, the `process_*` series (CPU, resident memory, descriptors, start time; Linux
//! only) and `longlink_build_info{version}`: see [`BUILD_INFO`] and `process.rs`.
//!
//! `longlink_handler_seconds` is the time from dispatch (the message read and decoded) to the
//! end of its handler on the module, or the call itself for a handler on the reader.
//! Histograms (the application's own too) use the buckets of [`BUCKETS`], in seconds.

mod cached;
mod handles;
mod message;
mod process;
mod series;

use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub(crate) use cached::{CachedCounter, CachedGauge};
pub(crate) use handles::{Reject, gate, reject, resume};
pub(crate) use message::{Delivered, MsgMetrics, MsgSlot};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
pub use process::BUILD_INFO;
pub(crate) use series::{FastCounter, FastHistogram};

/// Gauge: open connections, by `transport`.
pub const CONNECTIONS_OPEN: &str = "longlink_connections_open";
/// Counter: connections accepted (served), by `transport`.
pub const CONNECTIONS_ACCEPTED: &str = "longlink_connections_accepted_total";
/// Counter: connections refused, by `reason`.
pub const CONNECTIONS_REJECTED: &str = "longlink_connections_rejected_total";
/// Counter: messages received, by `msg`.
pub const MESSAGES_IN: &str = "longlink_messages_in_total";
/// Counter: messages queued to clients, by `msg`.
pub const MESSAGES_OUT: &str = "longlink_messages_out_total";
/// Counter: volatile messages dropped (not queued), by `msg`.
pub const VOLATILE_DROPPED: &str = "longlink_volatile_dropped_total";
/// Counter: latest-per-key messages that replaced a waiting one, by `msg`.
pub const LATEST_REPLACED: &str = "longlink_latest_replaced_total";
/// Counter: incoming messages over their type's rate limit, by `msg`.
pub const RATE_LIMITED: &str = "longlink_rate_limited_total";
/// Counter: payload bytes received, by `transport`.
pub const BYTES_IN: &str = "longlink_bytes_in_total";
/// Counter: payload bytes written, by `transport`.
pub const BYTES_OUT: &str = "longlink_bytes_out_total";
/// Counter: payloads that did not decode (the connection is closed).
pub const DECODE_ERRORS: &str = "longlink_decode_errors_total";
/// Counter: messages dropped on a full outgoing queue (`queue_full = "drop"`).
pub const QUEUE_FULL_DROPS: &str = "longlink_queue_full_drops_total";
/// Counter: connections closed on a full outgoing queue (`queue_full = "disconnect"`).
pub const QUEUE_FULL_DISCONNECTS: &str = "longlink_queue_full_disconnects_total";
/// Histogram: handler latency in seconds, by `msg`.
pub const HANDLER_SECONDS: &str = "longlink_handler_seconds";
/// Gauge: jobs waiting in a module's mailbox, by `module`.
pub const MAILBOX_DEPTH: &str = "longlink_module_mailbox_depth";

/// Counter: resumable sessions started.
pub const SESSIONS_STARTED: &str = "longlink_sessions_started_total";
/// Counter: sessions resumed on a new socket.
pub const SESSIONS_RESUMED: &str = "longlink_sessions_resumed_total";
/// Counter: resumes refused, by `reason`.
pub const SESSIONS_REFUSED: &str = "longlink_sessions_refused_total";
/// Counter: messages written again after a resume.
pub const SESSIONS_REPLAYED: &str = "longlink_sessions_replayed_total";
/// Counter: sessions ended because more than `resume_buffer` messages waited.
pub const SESSIONS_OVERFLOWS: &str = "longlink_sessions_overflows_total";
/// Counter: waiting sessions ended to make room for newer ones or for new connections.
pub const SESSIONS_EVICTED: &str = "longlink_sessions_evicted_total";
/// Gauge: sessions without a socket, waiting for their client.
pub const SESSIONS_WAITING: &str = "longlink_sessions_waiting";

/// Histogram buckets, in seconds: 50 µs to 10 s.
pub const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Installs longlink's Prometheus recorder as the global `metrics` recorder, once per
/// process (later calls return the same handle). If another recorder was installed first,
/// longlink's metrics go to that one and the handle renders nothing of them.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(BUCKETS) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "metrics buckets refused");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics will not show longlink's metrics");
        }
        describe();
        // Histogram samples pile up until drained: drain them every few seconds even if
        // nobody scrapes. A thread, not a task: it outlives any one runtime.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("longlink-metrics".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        ENABLED.store(true, Ordering::Release);
        // The gate's series show (at zero) before the first connection.
        let _ = gate();
        handle
    })
}

/// How often histogram samples are drained into their buckets.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether [`install`] has run (longlink records metrics).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// The Prometheus text of every metric, or `None` before [`install`].
pub fn render() -> Option<String> {
    let mut text = render_recorded()?;
    process::render(&mut text);
    Some(text)
}

/// The Prometheus text of what longlink records, without the process series (whose open
/// files count reads a directory of every socket: the console's per-second sample needs
/// none of them), or `None` before [`install`].
pub(crate) fn render_recorded() -> Option<String> {
    let handle = HANDLE.get()?;
    handle.run_upkeep();
    let mut text = handle.render();
    series::render(&mut text);
    Some(text)
}

// The per-message series, with their help texts ([`series`] keeps and renders them).
const MESSAGES_IN_HELP: (&str, &str) = (MESSAGES_IN, "Messages received");
const MESSAGES_OUT_HELP: (&str, &str) = (MESSAGES_OUT, "Messages queued to clients");
const BYTES_IN_HELP: (&str, &str) = (BYTES_IN, "Payload bytes received");
const VOLATILE_DROPPED_HELP: (&str, &str) = (VOLATILE_DROPPED, "Volatile messages dropped");
const LATEST_REPLACED_HELP: (&str, &str) = (
    LATEST_REPLACED,
    "Latest-per-key messages that replaced a waiting one",
);
const RATE_LIMITED_HELP: (&str, &str) = (RATE_LIMITED, "Messages over their type's rate limit");
const BYTES_OUT_HELP: (&str, &str) = (BYTES_OUT, "Payload bytes written");
const HANDLER_SECONDS_HELP: (&str, &str) = (
    HANDLER_SECONDS,
    "Time from dispatch to the end of the handler",
);

fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!(CONNECTIONS_OPEN, "Open connections");
    describe_counter!(CONNECTIONS_ACCEPTED, "Connections accepted");
    describe_counter!(CONNECTIONS_REJECTED, "Connections refused");
    describe_counter!(DECODE_ERRORS, "Payloads that did not decode");
    describe_counter!(
        QUEUE_FULL_DROPS,
        "Messages dropped on a full outgoing queue"
    );
    describe_counter!(
        QUEUE_FULL_DISCONNECTS,
        "Connections closed on a full outgoing queue"
    );
    describe_gauge!(MAILBOX_DEPTH, "Jobs waiting in a module's mailbox");
    describe_counter!(SESSIONS_STARTED, "Resumable sessions started");
    describe_counter!(SESSIONS_RESUMED, "Sessions resumed on a new socket");
    describe_counter!(SESSIONS_REFUSED, "Resumes refused");
    describe_counter!(SESSIONS_REPLAYED, "Messages written again after a resume");
    describe_counter!(SESSIONS_OVERFLOWS, "Sessions ended over resume_buffer");
    describe_counter!(
        SESSIONS_EVICTED,
        "Waiting sessions ended to make room for newer ones"
    );
    describe_gauge!(SESSIONS_WAITING, "Sessions waiting for their client");
}

/// The messages-per-second rate over the last sampling interval.
#[derive(Default)]
pub(crate) struct Rate(Mutex<RateState>);

#[derive(Default)]
struct RateState {
    last: Option<(Instant, u64)>,
    per_sec: f64,
}

impl Rate {
    /// Takes a sample of the messages-received count.
    pub(crate) fn sample(&self) {
        let now = Instant::now();
        // Messages received since start-up, process-wide.
        let count = series::total(MESSAGES_IN);
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, before)) = s.last {
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.0 {
                s.per_sec = count.saturating_sub(before) as f64 / secs;
            }
        }
        s.last = Some((now, count));
    }

    /// Messages per second over the last interval.
    pub(crate) fn per_sec(&self) -> f64 {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).per_sec
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_recorded_text_leaves_out_the_process_series_the_full_one_has() {
        super::install();
        let full = super::render().expect("installed");
        let recorded = super::render_recorded().expect("installed");
        assert!(full.contains("longlink_build_info"), "{full}");
        assert!(!recorded.contains("longlink_build_info"), "{recorded}");
        assert!(!recorded.contains("process_"), "{recorded}");
        #[cfg(target_os = "linux")]
        assert!(full.contains("process_open_fds "), "{full}");
        assert!(recorded.contains(super::CONNECTIONS_OPEN), "{recorded}");
    }
}
