//! The handles the gate and its resumable sessions count through, registered once when
//! metrics are installed: one per transport or reason, so a hot path indexes an array
//! instead of looking a name up.

use metrics::{Counter, Gauge, counter, gauge};

use super::series::{self, FastCounter};
use super::{
    BYTES_IN_HELP, BYTES_OUT_HELP, CONNECTIONS_ACCEPTED, CONNECTIONS_OPEN, CONNECTIONS_REJECTED,
    DECODE_ERRORS, QUEUE_FULL_DISCONNECTS, QUEUE_FULL_DROPS, SESSIONS_EVICTED, SESSIONS_OVERFLOWS,
    SESSIONS_REFUSED, SESSIONS_REPLAYED, SESSIONS_RESUMED, SESSIONS_STARTED, SESSIONS_WAITING,
    enabled,
};
use longlink_wire::Transport;
use std::sync::OnceLock;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reject {
    MaxConn,
    PerIp,
    Handshake,
    Tls,
    /// A handshake pushed out by a newer one, over `handshake_share`.
    Handshakes,
    /// No valid PROXY protocol header (`proxy_protocol`), or one from a peer not among
    /// `trusted_proxies`.
    Proxy,
    /// A WebSocket upgrade from an `Origin` not in `ws_origins`.
    Origin,
    /// A WebSocket upgrade the application's `on_upgrade` hook refused.
    Upgrade,
}

/// The gate's metric handles, registered once.
pub(crate) struct GateMetrics {
    open: [Gauge; 2],
    accepted: [Counter; 2],
    bytes_in: [FastCounter; 2],
    bytes_out: [FastCounter; 2],
    rejected: [Counter; 8],
    pub(crate) decode_errors: Counter,
    pub(crate) queue_full_drops: Counter,
    pub(crate) queue_full_disconnects: Counter,
}

fn index(t: Transport) -> usize {
    match t {
        Transport::Tcp => 0,
        Transport::Ws => 1,
    }
}

impl GateMetrics {
    fn new() -> Self {
        GateMetrics {
            open: [
                gauge!(CONNECTIONS_OPEN, "transport" => "tcp"),
                gauge!(CONNECTIONS_OPEN, "transport" => "ws"),
            ],
            accepted: [
                counter!(CONNECTIONS_ACCEPTED, "transport" => "tcp"),
                counter!(CONNECTIONS_ACCEPTED, "transport" => "ws"),
            ],
            bytes_in: [
                series::counter(BYTES_IN_HELP, ("transport", "tcp")),
                series::counter(BYTES_IN_HELP, ("transport", "ws")),
            ],
            bytes_out: [
                series::counter(BYTES_OUT_HELP, ("transport", "tcp")),
                series::counter(BYTES_OUT_HELP, ("transport", "ws")),
            ],
            rejected: [
                counter!(CONNECTIONS_REJECTED, "reason" => "max_conn"),
                counter!(CONNECTIONS_REJECTED, "reason" => "per_ip"),
                counter!(CONNECTIONS_REJECTED, "reason" => "handshake"),
                counter!(CONNECTIONS_REJECTED, "reason" => "tls"),
                counter!(CONNECTIONS_REJECTED, "reason" => "handshakes"),
                counter!(CONNECTIONS_REJECTED, "reason" => "proxy"),
                counter!(CONNECTIONS_REJECTED, "reason" => "origin"),
                counter!(CONNECTIONS_REJECTED, "reason" => "upgrade"),
            ],
            decode_errors: counter!(DECODE_ERRORS),
            queue_full_drops: counter!(QUEUE_FULL_DROPS),
            queue_full_disconnects: counter!(QUEUE_FULL_DISCONNECTS),
        }
    }

    pub(crate) fn opened(&self, t: Transport) {
        self.accepted[index(t)].increment(1);
        self.open[index(t)].increment(1.0);
    }

    pub(crate) fn closed(&self, t: Transport) {
        self.open[index(t)].decrement(1.0);
    }

    pub(crate) fn bytes_in(&self, t: Transport, n: usize) {
        self.bytes_in[index(t)].increment(n as u64);
    }

    pub(crate) fn bytes_out(&self, t: Transport, n: usize) {
        self.bytes_out[index(t)].increment(n as u64);
    }

    pub(crate) fn rejected(&self, why: Reject) {
        self.rejected[why as usize].increment(1);
    }
}

static GATE: OnceLock<GateMetrics> = OnceLock::new();

/// The gate's handles, once metrics are installed.
pub(crate) fn gate() -> Option<&'static GateMetrics> {
    enabled().then(|| GATE.get_or_init(GateMetrics::new))
}

/// Counts a refused connection.
pub(crate) fn reject(why: Reject) {
    if let Some(m) = gate() {
        m.rejected(why);
    }
}

/// The resumable sessions' handles.
pub(crate) struct ResumeMetrics {
    pub(crate) started: Counter,
    pub(crate) resumed: Counter,
    refused: [Counter; longlink_wire::resume::RefuseReason::ALL.len()],
    pub(crate) replayed: Counter,
    pub(crate) overflows: Counter,
    pub(crate) evicted: Counter,
    pub(crate) waiting: Gauge,
}

impl ResumeMetrics {
    fn new() -> Self {
        use longlink_wire::resume::RefuseReason;
        ResumeMetrics {
            started: counter!(SESSIONS_STARTED),
            resumed: counter!(SESSIONS_RESUMED),
            refused: RefuseReason::ALL.map(|r| counter!(SESSIONS_REFUSED, "reason" => r.as_str())),
            replayed: counter!(SESSIONS_REPLAYED),
            overflows: counter!(SESSIONS_OVERFLOWS),
            evicted: counter!(SESSIONS_EVICTED),
            waiting: gauge!(SESSIONS_WAITING),
        }
    }

    pub(crate) fn refused(&self, why: longlink_wire::resume::RefuseReason) {
        self.refused[why as usize].increment(1);
    }
}

static RESUME: OnceLock<ResumeMetrics> = OnceLock::new();

/// The resumable sessions' handles, once metrics are installed.
pub(crate) fn resume() -> Option<&'static ResumeMetrics> {
    enabled().then(|| RESUME.get_or_init(ResumeMetrics::new))
}
