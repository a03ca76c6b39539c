//! The gate's settings, with leaf's names in snake case (`[gate]` in a TOML file).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agent::QueueFullPolicy;
use crate::config::ConfigError;
use longlink_wire::Encoding;

/// Gate settings. `Default` is golib's `service/gate` (leaf's leafserver values): 10000
/// connections, 2000 queued writes, 8192-byte messages, 2-byte big-endian length, 10 s HTTP
/// timeout, JSON, no listener; plus what leaf lacks: TCP keepalive 15 s (Go's default),
/// WebSocket ping every 30 s with a 10 s pong deadline, a 1 MiB bound on each connection's
/// queued bytes, a 15 s deadline for a frame once started, a quarter of the places for
/// handshakes in progress, and (off by default) an idle timeout,
/// a per-IP connection cap and a per-connection message rate; and (off by default) session
/// resume: `resume_window` seconds, `resume_buffer` messages (1024), at most 64 sessions
/// waiting for their client per address (`max_waiting_per_ip`); in a cluster with resume on,
/// a stop that hands the sessions to other gates (`drain_spread` 5 s, `drain_timeout` 30 s);
/// and (off by default) `SO_REUSEPORT` (`reuse_port`); and (off by default) what a gate
/// behind a load balancer needs: `proxy_protocol`, `trusted_proxies`, `ws_origins`.
///
/// ```
/// use longlink::GateConfig;
///
/// let config = GateConfig {
///     tcp_addr: "127.0.0.1:3563".into(),
///     ws_addr: "127.0.0.1:3653".into(),
///     ..GateConfig::default()
/// };
/// assert_eq!(config.max_msg_len, 8192);
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// TCP listen address, `host:port`; empty turns TCP off.
    pub tcp_addr: String,
    /// WebSocket listen address, `host:port`; empty turns WebSocket off.
    pub ws_addr: String,
    /// Most connections open at once, one count across both listeners. Each is a file
    /// descriptor: at bind the gate raises a lower soft open-file limit (`RLIMIT_NOFILE`) to
    /// the hard one, and warns if that is still below `max_conn_num` + 64.
    pub max_conn_num: usize,
    /// Capacity of each connection's outgoing queue, in messages.
    pub pending_write_num: usize,
    /// Most bytes of payload waiting in one connection's outgoing queue; a message that
    /// would go over it meets `queue_full` as one over `pending_write_num` does (an empty
    /// queue always takes one message); 0 = off.
    ///
    /// For a resumable session (`resume_window`), what counts is every application payload
    /// it holds: those queued and not yet written, and those written and kept until the
    /// client acknowledges them (for a replay after a resume); the protocol's own messages
    /// (`LL_Session`, `LL_Ack`, ...) do not count. The bound holds whether a socket is
    /// attached or not. Over it, while the session waits for its client, `queue_full =
    /// "disconnect"` ends the session (its memory is released at once, its close event
    /// fires, and a later `LL_Resume` hears `"overflow"`), as an attached connection is cut;
    /// `"drop"` drops the message and keeps the session.
    pub pending_write_bytes: usize,
    /// Most payloads a connection's queue may hold for a volatile message
    /// ([`MessageOptions::volatile`](crate::processor::MessageOptions::volatile)) to join them:
    /// past it (or past `pending_write_num`, or with `pending_write_bytes` reached) the
    /// volatile message is dropped and counted. Small, so that what a volatile message says
    /// is still true when it arrives; 1 to 65535.
    pub volatile_queue: usize,
    /// Largest payload in bytes, incoming and outgoing (TCP: clamped to the length field).
    pub max_msg_len: u32,
    /// Width of the TCP length field: 1, 2 or 4 bytes.
    pub len_msg_len: usize,
    /// TCP length field byte order.
    pub little_endian: bool,
    /// WebSocket handshake timeout, in seconds.
    #[serde(with = "crate::config::secs")]
    pub http_timeout: Duration,
    /// Payload encoding: `"json"` or `"protobuf"`.
    pub encoding: Encoding,
    /// When a connection's queue is full: `"disconnect"` (leaf) or `"drop"`.
    pub queue_full: QueueFullPolicy,
    /// How long a closing connection may take to flush its queue before it is reset, in
    /// seconds.
    #[serde(with = "crate::config::secs")]
    pub close_timeout: Duration,
    /// Close a connection that began a frame and has not finished it within this many
    /// seconds; 0 = off. Unlike `idle_timeout`, a connection that sends nothing at all is
    /// not affected.
    #[serde(with = "crate::config::secs")]
    pub read_timeout: Duration,
    /// Close a connection that sent nothing for this many seconds; 0 = off.
    #[serde(with = "crate::config::secs")]
    pub idle_timeout: Duration,
    /// TCP keepalive on accepted sockets (both listeners): idle seconds before the first
    /// probe, and between probes; 0 = off.
    #[serde(with = "crate::config::secs")]
    pub tcp_keepalive: Duration,
    /// Ping a WebSocket client that sent nothing for this many seconds; 0 = off.
    #[serde(with = "crate::config::secs")]
    pub ws_ping_interval: Duration,
    /// Close a pinged WebSocket that has not answered (or sent anything) within this many
    /// more seconds.
    #[serde(with = "crate::config::secs")]
    pub ws_pong_timeout: Duration,
    /// Most connections, as a percentage of `max_conn_num` (at least one), that may be in
    /// their handshake at once (TLS on either listener, or the WebSocket upgrade; plain TCP
    /// has none). When all are taken, a new connection pushes out the oldest handshake, which
    /// is closed: sockets that connect and say nothing cannot take every place from real
    /// clients, nor keep them out. 1 to 100.
    pub handshake_share: u8,
    /// Most connections open at once from one IP address; 0 = off. A resumable session
    /// waiting for its client keeps its connection's place (under `max_conn_num` too); a new
    /// connection that finds every place taken ends the oldest waiting session of its
    /// address (else, for `max_conn_num`, of any address) instead of being refused.
    pub max_conn_per_ip: usize,
    /// Most messages per second one connection may send, sustained; 0 = off.
    pub max_msg_rate: u32,
    /// Messages a connection may send at once (the bucket's size); 0 = the same as
    /// `max_msg_rate`.
    pub max_msg_burst: u32,
    /// PEM certificate chain; with `key_file` it turns TLS on (wss and TCP over TLS).
    pub cert_file: String,
    /// PEM private key for `cert_file`.
    pub key_file: String,
    /// With a certificate: TLS on the TCP listener (`false` keeps TCP plain).
    pub tls_tcp: bool,
    /// With a certificate: TLS on the WebSocket listener (`false` keeps ws:// plain).
    pub tls_ws: bool,
    /// How long a resumable session outlives a dropped socket, waiting for its client to
    /// resume it (the `LL_` messages of [`longlink_wire::resume`]), in seconds; 0 = off: the
    /// resume messages are not registered and every drop is a close, as in leaf.
    #[serde(with = "crate::config::secs")]
    pub resume_window: Duration,
    /// Most outgoing messages a resumable session keeps unacknowledged (written and not yet
    /// acknowledged, plus those queued while it has no socket); over it, the session ends.
    /// Their bytes are bounded by `pending_write_bytes`.
    pub resume_buffer: usize,
    /// Most resumable sessions waiting for their client (socket gone, within
    /// `resume_window`) from one IP address at once, whether `max_conn_per_ip` is on or not.
    /// When one more begins waiting, the oldest waiting one from that address ends (its close
    /// event fires; a later `LL_Resume` hears `"expired"`); attached connections are never
    /// ended for it. One address can thus make the gate hold at most this many sessions (and
    /// `max_conn_per_ip`, when on, bounds waiting and attached ones together), each bounded by
    /// `pending_write_bytes`. At least 1 while `resume_window` is on.
    pub max_waiting_per_ip: usize,
    /// In a cluster with `resume_window` on: over how many seconds a stopping gate spreads
    /// its resumable clients' reconnections. At its stop (SIGTERM, `stop()`) the gate stops
    /// accepting and tells each client whose session has a socket to reconnect elsewhere
    /// (`LL_Move{after_ms}`, the delays spread evenly from 0 to this), and serves each session
    /// until another gate takes it over (the hand-over of a resume). A socket still here a
    /// second after the spread is dropped (its session waits, to be resumed on another gate).
    #[serde(with = "crate::config::secs")]
    pub drain_spread: Duration,
    /// In a cluster with `resume_window` on: how long, in seconds, a stopping gate waits for
    /// other gates to take its resumable sessions over; what is still here then ends as a
    /// gate's stop ends it (its close event; a late resume hears `"unknown"`), and the gate
    /// goes on with its stop (plain connections get their goodbye then). 0: no drain, the
    /// stop ends every session at once.
    #[serde(with = "crate::config::secs")]
    pub drain_timeout: Duration,
    /// Bind both listeners with `SO_REUSEPORT` (Linux), so that a new process can listen on
    /// the same addresses while this one drains: start the new one, then stop the old one
    /// (see docs/deploy.md, "Rolling restart"). Every process that binds the address must
    /// set it.
    pub reuse_port: bool,
    /// Every connection, on both listeners, starts with a PROXY protocol header (v1 text or
    /// v2 binary, as HAProxy, nginx's `proxy_protocol` and cloud load balancers send it)
    /// whose source address becomes the connection's remote address
    /// ([`Agent::remote_addr`](crate::Agent::remote_addr), `max_conn_per_ip`, the logs); a
    /// connection without a valid one, within `http_timeout`, is closed. A header that names
    /// no address (v1 `UNKNOWN`, v2 `LOCAL`: a balancer's health check) keeps the socket's
    /// peer. With `trusted_proxies` set, a header is believed only from a peer in it; any
    /// other peer is closed at once.
    pub proxy_protocol: bool,
    /// Addresses (`"10.0.0.7"`) or blocks (`"10.0.0.0/8"`, `"fd00::/8"`) of the proxies in
    /// front of the gate. A WebSocket upgrade from one of them takes its client's address
    /// from `X-Forwarded-For` (else `Forwarded`), read from the right: the first address
    /// that is not itself a trusted proxy (port 0 unless the header gives one). Empty: no
    /// forwarded header is believed. With `proxy_protocol` on, "from" means the PROXY
    /// header's source, and only peers listed here may send a PROXY header.
    pub trusted_proxies: Vec<String>,
    /// Origins (`"https://chat.example.com"`, scheme, host and port as a browser sends
    /// them) whose pages may open a WebSocket; an upgrade with an `Origin` header not listed
    /// is refused with `403`. Empty: any. An upgrade with no `Origin` (not from a browser)
    /// is not refused by it.
    pub ws_origins: Vec<String>,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            tcp_addr: String::new(),
            ws_addr: String::new(),
            max_conn_num: 10_000,
            pending_write_num: 2_000,
            pending_write_bytes: 1024 * 1024,
            volatile_queue: 16,
            max_msg_len: 8_192,
            len_msg_len: 2,
            little_endian: false,
            http_timeout: Duration::from_secs(10),
            encoding: Encoding::Json,
            queue_full: QueueFullPolicy::Disconnect,
            close_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(15),
            idle_timeout: Duration::ZERO,
            tcp_keepalive: Duration::from_secs(15),
            ws_ping_interval: Duration::from_secs(30),
            ws_pong_timeout: Duration::from_secs(10),
            handshake_share: 25,
            max_conn_per_ip: 0,
            max_msg_rate: 0,
            max_msg_burst: 0,
            cert_file: String::new(),
            key_file: String::new(),
            tls_tcp: true,
            tls_ws: true,
            resume_window: Duration::ZERO,
            resume_buffer: 1024,
            max_waiting_per_ip: 64,
            drain_spread: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            reuse_port: false,
            proxy_protocol: false,
            trusted_proxies: Vec::new(),
            ws_origins: Vec::new(),
        }
    }
}

impl GateConfig {
    /// Checks every value; the error names the key (`gate.<key>`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| {
            Err(ConfigError::Invalid {
                key: format!("gate.{key}"),
                message: msg,
            })
        };
        for (key, addr) in [("tcp_addr", &self.tcp_addr), ("ws_addr", &self.ws_addr)] {
            if !addr.is_empty() && !addr.contains(':') {
                return bad(key, format!("{addr:?} is not host:port"));
            }
        }
        if self.max_conn_num == 0 {
            return bad("max_conn_num", "must be at least 1".into());
        }
        if self.pending_write_num == 0 {
            return bad("pending_write_num", "must be at least 1".into());
        }
        if !(1..=usize::from(u16::MAX)).contains(&self.volatile_queue) {
            return bad(
                "volatile_queue",
                format!("must be 1 to 65535, not {}", self.volatile_queue),
            );
        }
        if !(1..=100).contains(&self.handshake_share) {
            return bad(
                "handshake_share",
                format!("must be 1 to 100 (percent), not {}", self.handshake_share),
            );
        }
        if self.max_msg_len == 0 {
            return bad("max_msg_len", "must be at least 1".into());
        }
        if !matches!(self.len_msg_len, 1 | 2 | 4) {
            return bad(
                "len_msg_len",
                format!("must be 1, 2 or 4, not {}", self.len_msg_len),
            );
        }
        if self.http_timeout.is_zero() {
            return bad("http_timeout", "must be more than 0 seconds".into());
        }
        match (self.cert_file.is_empty(), self.key_file.is_empty()) {
            (false, true) => return bad("key_file", "is needed with cert_file".into()),
            (true, false) => return bad("cert_file", "is needed with key_file".into()),
            _ => {}
        }
        if !self.resume_window.is_zero() && self.resume_buffer == 0 {
            return bad(
                "resume_buffer",
                "must be at least 1 while resume_window is on".into(),
            );
        }
        if !self.resume_window.is_zero() && self.max_waiting_per_ip == 0 {
            return bad(
                "max_waiting_per_ip",
                "must be at least 1 while resume_window is on".into(),
            );
        }
        if !self.drain_timeout.is_zero() && self.drain_spread > self.drain_timeout {
            return bad(
                "drain_spread",
                format!(
                    "must not be longer than drain_timeout ({} s), not {} s",
                    self.drain_timeout.as_secs_f64(),
                    self.drain_spread.as_secs_f64()
                ),
            );
        }
        if let Err(message) = super::forwarded::TrustedProxies::parse(&self.trusted_proxies) {
            return bad("trusted_proxies", message);
        }
        if let Some(origin) = self
            .ws_origins
            .iter()
            .find(|o| !super::upgrade::is_origin(o))
        {
            return bad(
                "ws_origins",
                format!("{origin:?} is not an origin (scheme://host or scheme://host:port)"),
            );
        }
        if !self.ws_ping_interval.is_zero() && self.ws_pong_timeout.is_zero() {
            return bad(
                "ws_pong_timeout",
                "must be more than 0 seconds while ws_ping_interval is on".into(),
            );
        }
        Ok(())
    }
}
