//! [`Shared`]: what every connection task, the accept loops, the sweep and the stop of one
//! gate share, by concern: [`Settings`] (copies of the configuration), [`Hooks`] (the
//! application's), [`Services`] (what the gate serves through) and [`Live`] (its state).
//! Built once by [`GateBuilder::bind`](super::GateBuilder::bind); a task that needs one
//! concern is given that one.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use longlink_wire::LenCodec;

use super::admission::Admission;
use super::config::GateConfig;
use super::forwarded::TrustedProxies;
use super::link::ClusterLink;
use super::live::Live;
use super::resume::Resumption;
use super::upgrade::UpgradeHook;
use super::{Goodbye, http};
use crate::agent::events::EventSink;
use crate::agent::{Agent, AgentSettings, Transport};
use crate::module::Mailbox;
use crate::processor::Router;

/// The application's hook for a connection the gate itself closes
/// ([`GateBuilder::on_goodbye`](super::GateBuilder::on_goodbye)).
pub(crate) type GoodbyeHook = Box<dyn Fn(&Agent, Goodbye) + Send + Sync>;

/// `max_msg_rate` and its burst, as a token bucket's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    pub(crate) per_sec: f64,
    pub(crate) burst: f64,
}

/// What every connection of a gate shares.
pub(crate) struct Shared {
    /// The settings, as the gate's tasks read them.
    pub(crate) settings: Settings,
    /// The application's hooks.
    pub(crate) hooks: Hooks,
    /// What the gate serves through: the router, the cluster, resumable sessions, TLS,
    /// admission.
    pub(crate) services: Services,
    /// The open connections, the clock, the stop.
    pub(crate) live: Live,
}

/// The gate's settings, as its tasks read them (from [`GateConfig`], checked by `bind`).
pub(crate) struct Settings {
    /// TCP framing (`len_msg_len`, `little_endian`, `max_msg_len`).
    pub(crate) frames: LenCodec,
    /// What each new TCP agent is made with (its payload limit is the framing's).
    pub(crate) tcp_agent: AgentSettings,
    /// What each new WebSocket agent is made with (`max_msg_len` as configured).
    pub(crate) ws_agent: AgentSettings,
    /// How long a closing connection may flush (`close_timeout`) before it is reset.
    pub(crate) close_timeout: Duration,
    /// `max_msg_rate` and `max_msg_burst`, when on.
    pub(crate) rate: Option<Rate>,
    /// `read_timeout` in milliseconds (0: off): the deadline of a frame once begun, kept by
    /// the sweep.
    pub(crate) read_timeout_ms: u64,
    /// `idle_timeout` (zero: off), read by the sweep.
    pub(crate) idle_timeout: Duration,
    /// `ws_ping_interval` (zero: off), read by the sweep.
    pub(crate) ws_ping_interval: Duration,
    /// `ws_pong_timeout`, read by the sweep.
    pub(crate) ws_pong_timeout: Duration,
    /// `tcp_keepalive` (zero: off), set on every accepted socket.
    pub(crate) tcp_keepalive: Duration,
    /// Bounds every handshake (TLS, WebSocket upgrade, PROXY header).
    pub(crate) http_timeout: Duration,
    /// `drain_spread`: over how long a stopping gate spreads its clients' moves.
    pub(crate) drain_spread: Duration,
    /// `drain_timeout`: how long a stopping gate waits for its sessions to be taken over.
    pub(crate) drain_timeout: Duration,
    /// The client's real address: `proxy_protocol` and `trusted_proxies`.
    pub(crate) real_addr: RealAddr,
    /// `ws_origins` (empty: any).
    pub(crate) ws_origins: Vec<String>,
}

/// Where a connection's real address comes from: `proxy_protocol`, `trusted_proxies`.
pub(crate) struct RealAddr {
    /// Every connection starts with a PROXY header.
    pub(crate) proxy_protocol: bool,
    /// Whose PROXY header and forwarded headers are believed.
    pub(crate) trusted: TrustedProxies,
}

impl RealAddr {
    /// Whether a connection from `peer` is closed at once: with `proxy_protocol` and
    /// `trusted_proxies` both set, only a trusted proxy may speak first.
    pub(crate) fn refuses(&self, peer: IpAddr) -> bool {
        self.proxy_protocol && !self.trusted.is_empty() && !self.trusted.contains(peer)
    }

    /// Whether the address of a connection from `peer` on `transport` may be another than
    /// `peer` (known only after its PROXY header, or its upgrade's forwarded headers).
    pub(crate) fn deferred(&self, transport: Transport, peer: IpAddr) -> bool {
        self.proxy_protocol || (transport == Transport::Ws && self.trusted.contains(peer))
    }
}

impl Settings {
    /// The settings of `config`, with its framing and what each new agent is made with
    /// (`agent(max_msg_len)`).
    pub(crate) fn new(
        config: &GateConfig,
        frames: LenCodec,
        agent: impl Fn(usize) -> AgentSettings,
    ) -> Settings {
        Settings {
            tcp_agent: agent(frames.max_msg_len()),
            ws_agent: agent(config.max_msg_len as usize),
            frames,
            close_timeout: config.close_timeout,
            rate: (config.max_msg_rate > 0).then_some(Rate {
                per_sec: config.max_msg_rate as f64,
                burst: match config.max_msg_burst {
                    0 => config.max_msg_rate,
                    burst => burst,
                } as f64,
            }),
            read_timeout_ms: config.read_timeout.as_millis() as u64,
            idle_timeout: config.idle_timeout,
            ws_ping_interval: config.ws_ping_interval,
            ws_pong_timeout: config.ws_pong_timeout,
            tcp_keepalive: config.tcp_keepalive,
            http_timeout: config.http_timeout,
            drain_spread: config.drain_spread,
            drain_timeout: config.drain_timeout,
            real_addr: RealAddr {
                proxy_protocol: config.proxy_protocol,
                // Checked by `GateConfig::validate`.
                trusted: TrustedProxies::parse(&config.trusted_proxies).unwrap_or_default(),
            },
            ws_origins: config.ws_origins.clone(),
        }
    }

    /// A new local agent for a connection that came through `transport`.
    pub(crate) fn new_agent(
        &self,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
        attached: ::http::Extensions,
    ) -> Agent {
        let settings = match transport {
            Transport::Tcp => &self.tcp_agent,
            Transport::Ws => &self.ws_agent,
        };
        Agent::new(
            crate::agent::next_id(),
            transport,
            (local, remote),
            settings,
            attached,
        )
    }
}

/// The application's hooks, as [`GateBuilder`](super::GateBuilder) collects them.
#[derive(Default)]
pub(crate) struct Hooks {
    /// Where new-connection events go (`on_new_agent`).
    pub(crate) on_new: Option<EventSink>,
    /// Where close events go (`on_close_agent`).
    pub(crate) on_close: Option<EventSink>,
    /// Where resume events go (`on_resume`).
    pub(crate) on_resume: Option<EventSink>,
    /// When a session leaves for another gate of the cluster, and comes from one
    /// (`on_hand_off_agent`, `on_adopt_agent`), with the user data that moves (`user_data`).
    pub(crate) on_hand_off: Option<EventSink>,
    pub(crate) on_adopt: Option<EventSink>,
    pub(crate) user_data: Option<crate::agent::carried::UserDataCodec>,
    /// The application's goodbye before the gate itself closes a connection.
    pub(crate) on_goodbye: Option<GoodbyeHook>,
    /// Answers plain GETs on the WebSocket port ([`GateBuilder::on_http`](super::GateBuilder::on_http)).
    pub(crate) on_http: Option<Box<http::HttpHandler>>,
    /// Accepts or refuses WebSocket upgrades ([`GateBuilder::on_upgrade`](super::GateBuilder::on_upgrade)).
    pub(crate) on_upgrade: Option<Box<UpgradeHook>>,
}

impl Hooks {
    /// Closes a connection on the gate's own account: the goodbye hook's messages first,
    /// then a graceful close (they are flushed).
    pub(crate) fn goodbye(&self, agent: &Agent, why: Goodbye) {
        if let Some(hook) = &self.on_goodbye {
            let run = std::panic::AssertUnwindSafe(|| hook(agent, why));
            if std::panic::catch_unwind(run).is_err() {
                crate::agent::logged::conn_event!(ERROR, agent, "on_goodbye hook panicked");
            }
        }
        agent.close();
    }
}

/// What the gate serves through.
pub(crate) struct Services {
    /// Decodes every payload and hands it to its destination.
    pub(crate) router: Router,
    /// The cluster, when the gate is in one: hears of opens and closes, settles at drain.
    pub(crate) cluster: Option<Arc<dyn ClusterLink>>,
    /// Resumable sessions, when `resume_window` is on.
    pub(crate) resume: Option<Resumption>,
    /// TLS on the TCP listener, if configured.
    pub(crate) tls_tcp: Option<super::transport::tls::TlsAcceptor>,
    /// TLS on the WebSocket listener (wss), if configured.
    pub(crate) tls_ws: Option<super::transport::tls::TlsAcceptor>,
    /// Places under `max_conn_num` and `max_conn_per_ip`, and the 503 answers' own cap.
    pub(crate) admission: Arc<Admission>,
}

impl Shared {
    /// The mailboxes of every module this gate sends messages or events to, each once.
    fn mailboxes(&self) -> Vec<Mailbox> {
        let mut all = self.services.router.mailboxes();
        let hooks = &self.hooks;
        let sinks = [&hooks.on_new, &hooks.on_close, &hooks.on_resume];
        let moves = [&hooks.on_hand_off, &hooks.on_adopt];
        for sink in sinks.into_iter().chain(moves).flatten() {
            all.push(sink.mailbox().clone());
        }
        let mut unique: Vec<Mailbox> = Vec::new();
        for m in all {
            if !unique.iter().any(|u| u.same_as(&m)) {
                unique.push(m);
            }
        }
        unique
    }

    /// Returns once every module this gate feeds has run every job queued before the call.
    pub(crate) async fn barrier(&self) {
        if let Some(link) = &self.services.cluster {
            link.settle().await;
        }
        for mailbox in self.mailboxes() {
            mailbox.barrier().await;
        }
    }
}
