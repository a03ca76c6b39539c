//! The gate: TCP and WebSocket listeners side by side, sharing one processor, one connection
//! limit and one module for connection events (leaf's `gate.Gate`).
//!
//! ```no_run
//! use longlink::{Agent, Ctx, Encoding, Gate, GateConfig, Module, Processor};
//!
//! # async fn example() -> Result<(), longlink::GateError> {
//! let lobby = Module::new("lobby", 0usize); // state: players online
//! let config = GateConfig {
//!     tcp_addr: "127.0.0.1:3563".into(),
//!     ws_addr: "127.0.0.1:3653".into(),
//!     ..GateConfig::default()
//! };
//! let gate = Gate::builder(config, Processor::new(Encoding::Json))
//!     .on_new_agent(&lobby.module_ref(), |online: &mut Ctx<usize>, _agent: &Agent| **online += 1)
//!     .on_close_agent(&lobby.module_ref(), |online: &mut Ctx<usize>, _agent: &Agent| **online -= 1)
//!     .bind()
//!     .await?;
//! println!("tcp on {:?}, ws on {:?}", gate.tcp_addr(), gate.ws_addr());
//! # Ok(()) }
//! ```

pub(crate) mod config;
mod conn;
mod http;
mod tcp;
mod tls;
mod ws;

/// Entry points for fuzzing the WebSocket path (feature `fuzzing`; not a stable API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use tokio::io::AsyncWriteExt;

    /// Feeds `bytes` to the handshake reader as a client would send them, then to a
    /// WebSocket server stream with a `max_msg_len` limit, reading every message. Returns
    /// how many messages were read. Never panics for any input.
    pub async fn ws_bytes(bytes: &[u8], max_msg_len: usize) -> usize {
        use futures_util::StreamExt;
        use tokio_tungstenite::WebSocketStream;
        use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let _ = client.write_all(bytes).await;
        let _ = client.shutdown().await;
        let rest = match super::ws::read_request(&mut server, true, None).await {
            super::ws::Handshake::Upgrade { rest, .. } => rest,
            super::ws::Handshake::Refused => return 0,
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .max_message_size(Some(max_msg_len))
            .max_frame_size(Some(max_msg_len));
        let mut ws =
            WebSocketStream::from_partially_read(server, rest, Role::Server, Some(config)).await;
        let mut n = 0;
        while let Some(Ok(_)) = ws.next().await {
            n += 1;
        }
        n
    }
}

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::GateConfig;
pub use http::{HttpRequest, HttpResponse};

use crate::agent::{Agent, AgentSettings, Transport};
use crate::cluster::gate::{ForwardErrorHook, GateLink};
use crate::cluster::{Cluster, ClusterError};
use crate::codec::LenCodec;
use crate::config::ConfigError;
use crate::module::{Ctx, Job, Mailbox, ModuleRef};
use crate::processor::{Processor, ProcessorError};

/// Why a gate could not start.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The processor has a registration mistake (e.g. a message with no destination).
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    /// A TLS certificate or key could not be used.
    #[error("cannot use TLS file {file}: {message}")]
    Tls {
        /// The file named by `cert_file` or `key_file`.
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// The gate could not subscribe to its cluster subjects.
    #[error("cluster: {0}")]
    Cluster(ClusterError),
    /// A listener could not bind.
    #[error("cannot listen on {addr} ({key}): {error}")]
    Bind {
        /// The config key.
        key: &'static str,
        /// The address.
        addr: String,
        /// The OS error.
        error: std::io::Error,
    },
}

type MakeEvent = Box<dyn Fn(Agent) -> Job + Send + Sync>;
type Farewell = Box<dyn Fn(&Agent, Goodbye) + Send + Sync>;

/// Why the gate itself is closing a connection; given to the
/// [`on_goodbye`](GateBuilder::on_goodbye) hook so the application can say so first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goodbye {
    /// The gate is stopping.
    Shutdown,
    /// The connection sent nothing for `idle_timeout`.
    Idle,
    /// The connection sent faster than `max_msg_rate`.
    RateLimit,
    /// Its uid logged in on another connection, on another gate of the cluster.
    Displaced,
}

impl Goodbye {
    /// A short reason for a kick message: `"shutdown"`, `"idle"`, `"rate limit"`,
    /// `"logged in elsewhere"`.
    pub fn reason(self) -> &'static str {
        match self {
            Goodbye::Shutdown => "shutdown",
            Goodbye::Idle => "idle",
            Goodbye::RateLimit => "rate limit",
            Goodbye::Displaced => "logged in elsewhere",
        }
    }
}

/// `max_msg_rate` and its burst, as a token bucket's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    pub(crate) per_sec: f64,
    pub(crate) burst: f64,
}

/// Where connection events go: a module's mailbox and the job to run there.
pub(crate) struct EventSink {
    mailbox: Mailbox,
    make: MakeEvent,
}

impl EventSink {
    pub(crate) fn new<S: Send + 'static>(
        module: &ModuleRef<S>,
        label: &'static str,
        f: impl Fn(&mut Ctx<S>, &Agent) + Send + Sync + 'static,
    ) -> Self {
        let f = Arc::new(f);
        EventSink {
            mailbox: module.mailbox().clone(),
            make: Box::new(move |agent| {
                let f = Arc::clone(&f);
                Job::new(label, move |ctx: &mut Ctx<S>| f(ctx, &agent))
            }),
        }
    }

    /// Queues the event, waiting for room: an event is never dropped while the module runs.
    pub(crate) async fn send(&self, agent: &Agent) {
        if self.mailbox.send((self.make)(agent.clone())).await.is_err() {
            tracing::debug!(module = %self.mailbox.name(), "module stopped, connection event dropped");
        }
    }
}

/// What every connection of a gate shares.
pub(crate) struct Shared {
    pub(crate) processor: Arc<Processor>,
    codec: LenCodec,
    tcp_settings: AgentSettings,
    ws_settings: AgentSettings,
    pub(crate) on_new: Option<EventSink>,
    pub(crate) on_close: Option<EventSink>,
    on_goodbye: Option<Farewell>,
    /// The cluster link, when the gate is in a cluster.
    pub(crate) cluster: Option<Arc<GateLink>>,
    /// Answers plain GETs on the WebSocket port ([`GateBuilder::on_http`]).
    on_http: Option<Box<http::HttpHandler>>,
    pub(crate) close_timeout: Duration,
    pub(crate) rate: Option<Rate>,
    idle_timeout: Duration,
    ws_ping_interval: Duration,
    ws_pong_timeout: Duration,
    tcp_keepalive: Duration,
    max_conn_per_ip: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    epoch: std::time::Instant,
    /// TLS on the TCP listener, if configured.
    tls_tcp: Option<tokio_rustls::TlsAcceptor>,
    /// TLS on the WebSocket listener (wss), if configured.
    tls_ws: Option<tokio_rustls::TlsAcceptor>,
    http_timeout: Duration,
    max_conn_num: usize,
    open: AtomicUsize,
    /// WebSocket handshakes being answered with 503 (over the limit), themselves capped.
    refusing: Arc<AtomicUsize>,
    agents: Mutex<HashMap<u64, Agent>>,
    shutdown: CancellationToken,
    /// Cancelled once the modules have handled every message read before the shutdown.
    pub(crate) drained: CancellationToken,
    /// Connections whose reader is running (counted down as readers stop at shutdown).
    pub(crate) reading: AtomicUsize,
    tracker: TaskTracker,
}

impl Shared {
    /// Takes a place under `max_conn_num`, or `None` when full. Never overshoots, however many
    /// accepts race.
    fn try_slot(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        if !try_increment(&self.open, self.max_conn_num) {
            crate::admin::metrics::reject(crate::admin::metrics::Reject::MaxConn);
            return None;
        }
        // From here on the slot gives the global place back when dropped.
        let mut slot = Slot {
            shared: Arc::clone(self),
            ip: None,
        };
        if self.max_conn_per_ip > 0 {
            let mut per_ip = self.lock_per_ip();
            let n = per_ip.entry(ip).or_insert(0);
            if *n >= self.max_conn_per_ip {
                tracing::debug!(%ip, "too many connections from this address");
                crate::admin::metrics::reject(crate::admin::metrics::Reject::PerIp);
                return None;
            }
            *n += 1;
            slot.ip = Some(ip);
        }
        Some(slot)
    }

    fn lock_per_ip(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_ip.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn register(&self, agent: &Agent) {
        self.lock_agents().insert(agent.id(), agent.clone());
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Closes a connection on the gate's own account: the goodbye hook's messages first,
    /// then a graceful close (they are flushed).
    pub(crate) fn goodbye(&self, agent: &Agent, why: Goodbye) {
        if let Some(hook) = &self.on_goodbye {
            let run = std::panic::AssertUnwindSafe(|| hook(agent, why));
            if std::panic::catch_unwind(run).is_err() {
                tracing::error!(conn = agent.id(), "on_goodbye hook panicked");
            }
        }
        agent.close();
    }

    /// The mailboxes of every module this gate sends messages or events to, each once.
    fn mailboxes(&self) -> Vec<Mailbox> {
        let mut all = self.processor.mailboxes();
        for sink in [&self.on_new, &self.on_close].into_iter().flatten() {
            all.push(sink.mailbox.clone());
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
        if let Some(link) = &self.cluster {
            link.settle().await;
        }
        for mailbox in self.mailboxes() {
            mailbox.barrier().await;
        }
    }

    /// Milliseconds since the gate was built (the clock of `last_seen`).
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The open connection with this id.
    pub(crate) fn agent(&self, id: u64) -> Option<Agent> {
        self.lock_agents().get(&id).cloned()
    }

    /// Every open connection.
    pub(crate) fn all_agents(&self) -> Vec<Agent> {
        self.lock_agents().values().cloned().collect()
    }

    pub(crate) fn unregister(&self, agent: &Agent) {
        self.lock_agents().remove(&agent.id());
    }

    pub(crate) fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    fn lock_agents(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Agent>> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_agent(&self, transport: Transport, local: SocketAddr, remote: SocketAddr) -> Agent {
        let settings = match transport {
            Transport::Tcp => &self.tcp_settings,
            Transport::Ws => &self.ws_settings,
        };
        Agent::new(crate::agent::next_id(), transport, local, remote, settings)
    }
}

/// A connection's place under `max_conn_num`; dropping it frees the place.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    /// Counted under `max_conn_per_ip` too.
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut per_ip = self.shared.lock_per_ip();
            if let Some(n) = per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        self.shared.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Builds a [`Gate`]: settings, processor, connection events.
pub struct GateBuilder {
    config: GateConfig,
    processor: Processor,
    on_new: Option<EventSink>,
    on_close: Option<EventSink>,
    on_goodbye: Option<Farewell>,
    on_http: Option<Box<http::HttpHandler>>,
    cluster: Option<Cluster>,
    on_forward_error: Option<ForwardErrorHook>,
}

impl GateBuilder {
    /// Puts the gate in a cluster: message types routed with
    /// [`Processor::forward`](crate::Processor::forward) go to backend nodes, and any node
    /// can push to, kick and group this gate's connections. See [`crate::cluster`].
    pub fn cluster(mut self, cluster: &Cluster) -> Self {
        self.cluster = Some(cluster.clone());
        self
    }

    /// Runs `f` when a forwarded message fails (no backend of its type, or no answer within
    /// `[cluster] request_timeout`): the agent, the message name and why. The place to tell
    /// the client, e.g. with an error message. Runs on a gate task: keep it short.
    pub fn on_forward_error(
        mut self,
        f: impl Fn(&Agent, &str, &ClusterError) + Send + Sync + 'static,
    ) -> Self {
        self.on_forward_error = Some(Box::new(f));
        self
    }

    /// Lets `f` answer a plain HTTP `GET` on the WebSocket port (one without
    /// `Upgrade: websocket`), e.g. to serve a page or a health check beside the WebSocket;
    /// `None` keeps the usual `400`. Upgrades on any path, other methods (`405`) and bad
    /// requests are answered as without it. Runs on the connection's task, within
    /// `http_timeout`: keep it short and non-blocking. See [`HttpRequest`].
    pub fn on_http(
        mut self,
        f: impl Fn(&HttpRequest) -> Option<HttpResponse> + Send + Sync + 'static,
    ) -> Self {
        self.on_http = Some(Box::new(f));
        self
    }

    /// Runs `f` just before the gate itself closes a connection (shutdown, idle timeout,
    /// rate limit): the place to queue a goodbye such as a kick with [`Goodbye::reason`],
    /// which is flushed before the socket closes. Runs on the gate's task (the connection's
    /// or the stopping one), not a module's: keep it short.
    pub fn on_goodbye(mut self, f: impl Fn(&Agent, Goodbye) + Send + Sync + 'static) -> Self {
        self.on_goodbye = Some(Box::new(f));
        self
    }

    /// Runs `f` on `module`'s task when a connection opens, before any of its messages
    /// (leaf's `NewAgent`).
    pub fn on_new_agent<S: Send + 'static>(
        mut self,
        module: &ModuleRef<S>,
        f: impl Fn(&mut Ctx<S>, &Agent) + Send + Sync + 'static,
    ) -> Self {
        self.on_new = Some(EventSink::new(module, "new agent", f));
        self
    }

    /// Runs `f` on `module`'s task when a connection has closed, after all of its messages
    /// (leaf's `CloseAgent`).
    pub fn on_close_agent<S: Send + 'static>(
        mut self,
        module: &ModuleRef<S>,
        f: impl Fn(&mut Ctx<S>, &Agent) + Send + Sync + 'static,
    ) -> Self {
        self.on_close = Some(EventSink::new(module, "close agent", f));
        self
    }

    /// Checks the settings and the processor, then binds the listeners. Connections queue in
    /// the OS backlog until the gate runs (see [`App`](crate::App)).
    pub async fn bind(self) -> Result<Gate, GateError> {
        let config = self.config;
        config.validate()?;
        self.processor.validate()?;
        if self.processor.encoding() != config.encoding {
            return Err(ConfigError::Invalid {
                key: "gate.encoding".into(),
                message: format!(
                    "is {:?} but the processor was built for {:?}",
                    config.encoding,
                    self.processor.encoding()
                ),
            }
            .into());
        }
        let codec = LenCodec::new(config.len_msg_len, config.little_endian, config.max_msg_len)
            .map_err(|e| ConfigError::Invalid {
                key: "gate.len_msg_len".into(),
                message: e.to_string(),
            })?;
        let tls = |on: bool, alpn: &[&[u8]]| {
            (on && !config.cert_file.is_empty())
                .then(|| tls::acceptor(&config.cert_file, &config.key_file, alpn))
                .transpose()
        };
        let tls_tcp = tls(config.tls_tcp, &[])?;
        let tls_ws = tls(config.tls_ws, &[b"http/1.1"])?;
        let tcp = bind("gate.tcp_addr", &config.tcp_addr).await?;
        let ws = bind("gate.ws_addr", &config.ws_addr).await?;
        if tcp.is_none() && ws.is_none() {
            tracing::warn!("gate has neither tcp_addr nor ws_addr: it accepts no connections");
        }
        let cluster = self
            .cluster
            .map(|c| GateLink::new(c, self.processor.forward_types(), self.on_forward_error));
        if cluster.is_none() && !self.processor.forward_types().is_empty() {
            return Err(ConfigError::Invalid {
                key: "cluster.nats_url".into(),
                message: "messages are forwarded to other nodes, but the gate is not in a cluster"
                    .into(),
            }
            .into());
        }
        if let Some(link) = &cluster {
            self.processor.set_forwarder(Arc::clone(link));
            link.subscribe().await.map_err(GateError::Cluster)?;
        }
        let processor = Arc::new(self.processor);
        let epoch = std::time::Instant::now();
        let settings = |max_msg_len| AgentSettings {
            processor: Arc::clone(&processor),
            max_msg_len,
            capacity: config.pending_write_num,
            policy: config.queue_full,
            epoch,
            cluster: cluster.clone(),
        };
        let shared = Arc::new(Shared {
            tcp_settings: settings(codec.max_msg_len()),
            ws_settings: settings(config.max_msg_len as usize),
            processor: Arc::clone(&processor),
            codec,
            on_new: self.on_new,
            on_close: self.on_close,
            on_goodbye: self.on_goodbye,
            cluster,
            on_http: self.on_http,
            rate: (config.max_msg_rate > 0).then_some(Rate {
                per_sec: config.max_msg_rate as f64,
                burst: match config.max_msg_burst {
                    0 => config.max_msg_rate,
                    burst => burst,
                } as f64,
            }),
            idle_timeout: config.idle_timeout,
            ws_ping_interval: config.ws_ping_interval,
            ws_pong_timeout: config.ws_pong_timeout,
            tcp_keepalive: config.tcp_keepalive,
            max_conn_per_ip: config.max_conn_per_ip,
            per_ip: Mutex::new(HashMap::new()),
            epoch,
            tls_tcp,
            tls_ws,
            close_timeout: config.close_timeout,
            http_timeout: config.http_timeout,
            max_conn_num: config.max_conn_num,
            open: AtomicUsize::new(0),
            refusing: Arc::new(AtomicUsize::new(0)),
            agents: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            drained: CancellationToken::new(),
            reading: AtomicUsize::new(0),
            tracker: TaskTracker::new(),
        });
        Ok(Gate { shared, tcp, ws })
    }
}

async fn bind(key: &'static str, addr: &str) -> Result<Option<TcpListener>, GateError> {
    if addr.is_empty() {
        return Ok(None);
    }
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|error| GateError::Bind {
            key,
            addr: addr.to_owned(),
            error,
        })
}

/// A gate with its listeners bound, ready to run.
pub struct Gate {
    shared: Arc<Shared>,
    tcp: Option<TcpListener>,
    ws: Option<TcpListener>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("tcp", &self.tcp_addr())
            .field("ws", &self.ws_addr())
            .finish()
    }
}

impl Gate {
    /// Starts building a gate with these settings and this processor.
    pub fn builder(config: GateConfig, processor: Processor) -> GateBuilder {
        GateBuilder {
            config,
            processor,
            on_new: None,
            on_close: None,
            on_goodbye: None,
            on_http: None,
            cluster: None,
            on_forward_error: None,
        }
    }

    /// The bound TCP address (useful with port 0).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bound WebSocket address.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// A handle for looking at the gate's connections while it runs.
    pub fn handle(&self) -> GateHandle {
        GateHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Starts accepting. Used by [`App`](crate::App); call [`RunningGate::stop`] to stop.
    pub fn start(self) -> RunningGate {
        let Gate { shared, tcp, ws } = self;
        if let Some(link) = &shared.cluster {
            link.attach(&shared);
            link.start();
        }
        if let Some(l) = tcp {
            tracing::info!(addr = ?l.local_addr().ok(), "tcp listening");
            shared
                .tracker
                .spawn(accept_loop(l, Arc::clone(&shared), Transport::Tcp));
        }
        if let Some(l) = ws {
            tracing::info!(addr = ?l.local_addr().ok(), "websocket listening");
            shared
                .tracker
                .spawn(accept_loop(l, Arc::clone(&shared), Transport::Ws));
        }
        if !shared.idle_timeout.is_zero() || !shared.ws_ping_interval.is_zero() {
            shared.tracker.spawn(sweep(Arc::clone(&shared)));
        }
        RunningGate { shared }
    }
}

/// A read-only view of a gate's connections.
#[derive(Clone)]
pub struct GateHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GateHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateHandle")
            .field("open", &self.connections())
            .finish()
    }
}

impl GateHandle {
    /// Connections holding a place under `max_conn_num` (including handshakes in progress).
    pub fn connections(&self) -> usize {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Every connection that has been announced and not yet closed.
    pub fn agents(&self) -> Vec<Agent> {
        self.shared.lock_agents().values().cloned().collect()
    }
}

/// A gate that is accepting connections.
pub struct RunningGate {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RunningGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningGate").finish_non_exhaustive()
    }
}

impl RunningGate {
    /// A handle on the gate's connections.
    pub fn handle(&self) -> GateHandle {
        GateHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Drains and stops the gate, within `timeout`:
    ///
    /// 1. stop accepting, and stop reading from every connection (no new message is taken);
    /// 2. let the modules that this gate routes to finish every message already taken (a
    ///    barrier through each mailbox), so their replies are queued;
    /// 3. run the goodbye hook ([`Goodbye::Shutdown`]) and close every connection
    ///    gracefully: queues are flushed, then the sockets closed, then the close events sent.
    ///
    /// Connections still open when `timeout` runs out are reset.
    pub async fn stop(self, timeout: Duration) {
        let shared = self.shared;
        let deadline = tokio::time::Instant::now() + timeout;
        shared.shutdown.cancel();
        shared.tracker.close();
        for agent in shared.lock_agents().values() {
            agent.nudge();
        }
        // 1. Every reader has handed over what it read.
        while shared.reading.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // 2. Every message taken has been handled.
        if tokio::time::timeout_at(deadline, shared.barrier())
            .await
            .is_err()
        {
            tracing::warn!("shutdown deadline passed while the modules drained");
        }
        // 3. Goodbye, flush, close.
        shared.drained.cancel();
        if tokio::time::timeout_at(deadline, shared.tracker.wait())
            .await
            .is_err()
        {
            let left: Vec<Agent> = shared.lock_agents().values().cloned().collect();
            tracing::warn!(
                connections = left.len(),
                "shutdown deadline passed, resetting the rest"
            );
            for agent in &left {
                agent.destroy();
            }
            shared.tracker.wait().await;
        }
        if let Some(link) = &shared.cluster {
            link.stop().await;
        }
    }
}

/// Every so often: closes connections idle past `idle_timeout` (with a goodbye), pings
/// WebSocket connections silent past `ws_ping_interval`, and drops those that have not
/// answered within `ws_pong_timeout` after that. One task for the whole gate: an idle
/// connection carries no timer of its own.
async fn sweep(shared: Arc<Shared>) {
    let ping_on = !shared.ws_ping_interval.is_zero();
    let shortest = [
        shared.idle_timeout,
        shared.ws_ping_interval,
        if ping_on {
            shared.ws_pong_timeout
        } else {
            Duration::ZERO
        },
    ]
    .into_iter()
    .filter(|d| !d.is_zero())
    .min()
    .unwrap_or(Duration::from_secs(1));
    let tick = (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let idle_ms = shared.idle_timeout.as_millis() as u64;
    let ping_ms = shared.ws_ping_interval.as_millis() as u64;
    let pong_ms = shared.ws_pong_timeout.as_millis() as u64;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let now = shared.now_ms();
        let (mut idle, mut ping, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        for agent in shared.lock_agents().values() {
            // Idle counts application messages only: pongs to our own pings do not count.
            if idle_ms > 0 && now.saturating_sub(agent.last_msg_ms()) >= idle_ms {
                idle.push(agent.clone());
            } else if ping_ms > 0 && agent.transport() == Transport::Ws {
                match agent.ping_outstanding_since() {
                    // Dead only once a ping was really asked for and went unanswered.
                    Some(at) if now.saturating_sub(at) >= pong_ms => dead.push(agent.clone()),
                    Some(_) => {}
                    None if now.saturating_sub(agent.last_seen_ms()) >= ping_ms => {
                        ping.push(agent.clone())
                    }
                    None => {}
                }
            }
        }
        for agent in &idle {
            tracing::debug!(conn = agent.id(), "idle timeout");
            shared.goodbye(agent, Goodbye::Idle);
        }
        for agent in &ping {
            agent.request_ping(now);
        }
        for agent in &dead {
            tracing::debug!(conn = agent.id(), "no pong, closing");
            agent.destroy();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, transport: Transport) {
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => {
                backoff = Duration::ZERO;
                pair
            }
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait and retry
                // (leaf: 5 ms doubling up to 1 s).
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                tracing::warn!(error = %e, retry_in = ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if !shared.tcp_keepalive.is_zero() {
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(shared.tcp_keepalive)
                .with_interval(shared.tcp_keepalive);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        }
        let slot = shared.try_slot(remote.ip());
        match transport {
            Transport::Tcp => {
                let Some(slot) = slot else {
                    tracing::debug!(%remote, "too many connections");
                    drop(stream);
                    continue;
                };
                let local = stream.local_addr().unwrap_or(remote);
                if let Some(acceptor) = shared.tls_tcp.clone() {
                    let handshake = tls_tcp(Arc::clone(&shared), acceptor, stream, local, remote);
                    shared.tracker.spawn(handshake_then_serve(handshake, slot));
                    continue;
                }
                let agent = shared.new_agent(Transport::Tcp, local, remote);
                let (r, w) = stream.into_split();
                let reader = tcp::TcpReader::new(r, shared.codec);
                let writer = tcp::TcpWriter::new(w, shared.codec);
                conn::spawn(Arc::clone(&shared), agent, reader, writer, slot);
            }
            Transport::Ws => {
                // Over the limit, a client gets a polite 503, but only so many at once: a
                // flood of refused upgrades must not hold sockets open up to http_timeout.
                let refusal = match slot {
                    Some(_) => None,
                    None => match Refusal::take(&shared.refusing) {
                        Some(r) => Some(r),
                        None => {
                            tracing::debug!(%remote, "too many connections");
                            continue;
                        }
                    },
                };
                let handshake = ws_handshake(Arc::clone(&shared), stream, remote, slot);
                shared.tracker.spawn(async move {
                    let _refusal = refusal;
                    handshake.await
                });
            }
        }
    }
}

/// Adds one to `counter` unless it has reached `max`; never overshoots, however many race.
fn try_increment(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

/// Most WebSocket upgrades answered with 503 at once.
const MAX_REFUSING: usize = 64;

/// A place among the handshakes being refused; dropping it frees the place.
struct Refusal(Arc<AtomicUsize>);

impl Refusal {
    fn take(counter: &Arc<AtomicUsize>) -> Option<Refusal> {
        try_increment(counter, MAX_REFUSING).then(|| Refusal(Arc::clone(counter)))
    }
}

impl Drop for Refusal {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// An upgraded connection, ready to serve.
type Ready<R, W> = Option<(Arc<Shared>, Agent, R, W)>;

/// Runs a handshake (bounded by `http_timeout`, abandoned at shutdown), then serves the
/// connection in a task of its own: the handshake's larger state is freed.
async fn handshake_then_serve<R, W>(handshake: impl Future<Output = Ready<R, W>>, slot: Slot)
where
    R: conn::FrameReader + 'static,
    W: conn::FrameWriter,
{
    if let Some((shared, agent, reader, writer)) = handshake.await {
        conn::spawn(shared, agent, reader, writer, slot);
    }
}

/// Bounds a handshake by `http_timeout` and the gate's shutdown.
async fn bounded<T>(
    shared: &Shared,
    remote: SocketAddr,
    what: &str,
    f: impl Future<Output = Option<T>>,
) -> Option<T> {
    tokio::select! {
        done = tokio::time::timeout(shared.http_timeout, f) => match done {
            Ok(done) => done,
            Err(_) => {
                tracing::debug!(%remote, "{what} handshake timed out");
                crate::admin::metrics::reject(crate::admin::metrics::Reject::Handshake);
                None
            }
        },
        _ = shared.shutdown.cancelled() => None,
    }
}

/// TLS for a TCP connection, then length-prefixed frames over it.
async fn tls_tcp(
    shared: Arc<Shared>,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
) -> Ready<
    tcp::StreamReader<tokio::io::ReadHalf<TlsStream>>,
    tcp::TcpWriter<tokio::io::WriteHalf<TlsStream>>,
> {
    let tls = bounded(&shared, remote, "tls", async {
        acceptor
            .accept(stream)
            .await
            .map_err(|e| {
                tracing::debug!(%remote, error = %e, "tls handshake failed");
                crate::admin::metrics::reject(crate::admin::metrics::Reject::Tls);
            })
            .ok()
    })
    .await?;
    let agent = shared.new_agent(Transport::Tcp, local, remote);
    let (r, w) = tokio::io::split(tls);
    let reader = tcp::StreamReader::new(r, shared.codec);
    let writer = tcp::TcpWriter::new(w, shared.codec);
    Some((shared, agent, reader, writer))
}

/// The HTTP upgrade (answering 405, 400, 503 as needed), then WebSocket messages.
async fn ws_upgrade<S: AsyncRead + AsyncWrite + Unpin + Send>(
    shared: Arc<Shared>,
    mut stream: S,
    local: SocketAddr,
    remote: SocketAddr,
    admit: bool,
) -> Ready<ws::WsReader<S>, ws::WsWriter<S>> {
    let max_msg_len = shared.ws_settings.max_msg_len;
    let halves = bounded(&shared, remote, "websocket", async {
        match ws::read_request(&mut stream, admit, shared.on_http.as_deref()).await {
            ws::Handshake::Upgrade { accept, rest } => {
                ws::accept(stream, &accept, rest, max_msg_len)
                    .await
                    .map_err(|_| {
                        crate::admin::metrics::reject(crate::admin::metrics::Reject::Handshake);
                    })
                    .ok()
            }
            ws::Handshake::Refused => {
                tracing::debug!(%remote, "websocket handshake refused");
                None
            }
        }
    })
    .await?;
    let agent = shared.new_agent(Transport::Ws, local, remote);
    Some((shared, agent, halves.0, halves.1))
}

/// A connection on the WebSocket port: TLS first if configured, then the upgrade. Without a
/// slot (over a limit) the upgrade is answered with 503.
async fn ws_handshake(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    slot: Option<Slot>,
) {
    let local = stream.local_addr().unwrap_or(remote);
    let admit = slot.is_some();
    match shared.tls_ws.clone() {
        None => {
            let upgrade = ws_upgrade(Arc::clone(&shared), stream, local, remote, admit);
            match slot {
                Some(slot) => handshake_then_serve(upgrade, slot).await,
                None => drop(upgrade.await),
            }
        }
        Some(acceptor) => {
            let Some(tls) = bounded(&shared, remote, "tls", async {
                acceptor
                    .accept(stream)
                    .await
                    .map_err(|_| {
                        crate::admin::metrics::reject(crate::admin::metrics::Reject::Tls);
                    })
                    .ok()
            })
            .await
            else {
                return;
            };
            let upgrade = ws_upgrade(Arc::clone(&shared), tls, local, remote, admit);
            match slot {
                Some(slot) => handshake_then_serve(upgrade, slot).await,
                None => drop(upgrade.await),
            }
        }
    }
}
