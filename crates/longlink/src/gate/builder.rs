//! [`GateBuilder`] and [`Gate`]: settings, the processor, connection hooks; `bind` checks
//! them all and binds the listeners; `start` serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::accept::{Admission, accept_loop};
use super::link::ClusterSetup;
use super::membership::{GateConnLink, Membership};
use super::resume::Resumption;
use super::running::{GateHandle, RunningGate};
use super::shared::Farewell;
use super::sweep::sweep;
use super::{GateConfig, GateError, Goodbye, Rate, Shared, http, tls};
use crate::agent::events::{EventHandler, EventSink};
use crate::agent::link::ConnLink;
use crate::agent::{Agent, AgentSettings, Transport};
use crate::config::ConfigError;
use crate::module::ModuleRef;
use crate::processor::Processor;
use longlink_wire::LenCodec;

/// Builds a [`Gate`]: settings, processor, connection events.
pub struct GateBuilder {
    config: GateConfig,
    processor: Processor,
    on_new: Option<EventSink>,
    on_resume: Option<EventSink>,
    on_close: Option<EventSink>,
    on_goodbye: Option<Farewell>,
    on_http: Option<Box<http::HttpHandler>>,
    /// What the cluster layer was given ([`GateBuilder::cluster`] is defined there).
    pub(crate) cluster: Option<Box<dyn ClusterSetup>>,
}

impl std::fmt::Debug for GateBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateBuilder")
            .field("config", &self.config)
            .field("processor", &self.processor)
            .finish_non_exhaustive()
    }
}

impl GateBuilder {
    /// Lets `f` answer a plain HTTP `GET` on the WebSocket port (one without
    /// `Upgrade: websocket`), e.g. to serve a page or a health check beside the WebSocket;
    /// `None` keeps the usual `400`. Upgrades on any path, other methods (`405`) and bad
    /// requests are answered as without it. Runs on the connection's task, within
    /// `http_timeout`: keep it short and non-blocking. The request and the response are the
    /// `http` crate's types; [`query_param`](super::query_param) reads the query, and its
    /// example shows a hook.
    pub fn on_http(
        mut self,
        f: impl Fn(&::http::Request<()>) -> Option<::http::Response<bytes::Bytes>>
        + Send
        + Sync
        + 'static,
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
    /// (leaf's `NewAgent`). `f` takes `&mut State` or `&mut Ctx<State>`, and the agent.
    pub fn on_new_agent<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.on_new = Some(EventSink::new(module, "new agent", f));
        self
    }

    /// Runs `f` on `module`'s task when a connection has closed, after all of its messages
    /// (leaf's `CloseAgent`).
    pub fn on_close_agent<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.on_close = Some(EventSink::new(module, "close agent", f));
        self
    }

    /// Runs `f` on `module`'s task when a resumable session (`resume_window` on) was resumed
    /// on a new socket: the same [`Agent`], now with the new socket's
    /// [`remote_addr`](Agent::remote_addr) and [`transport`](Agent::transport). A session
    /// whose socket dropped sees no close event while it waits for its client; it sees one
    /// only if the window lapses or the session ends.
    ///
    /// The socket that resumed had an agent of its own from its accept to its `LL_Resume`:
    /// that one gets its new event and, at the resume, its close event, as any short
    /// connection would.
    pub fn on_resume<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.on_resume = Some(EventSink::new(module, "resume", f));
        self
    }

    /// Checks the settings and the processor, then binds the listeners. Connections queue in
    /// the OS backlog until the gate runs (see [`App`](crate::App)).
    pub async fn bind(mut self) -> Result<Gate, GateError> {
        let config = self.config;
        config.validate()?;
        self.processor.validate()?;
        let resume_on = !config.resume_window.is_zero();
        if resume_on {
            self.processor.register_resume()?;
        }
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
        let frames = LenCodec::new(config.len_msg_len, config.little_endian, config.max_msg_len)
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
        #[cfg(unix)]
        super::fdlimit::check(config.max_conn_num);
        if tcp.is_none() && ws.is_none() {
            tracing::warn!("gate has neither tcp_addr nor ws_addr: it accepts no connections");
        }
        let forwarded = self.processor.forward_types();
        let cluster = match self.cluster {
            Some(setup) => setup.build(forwarded.clone()).await?,
            None => None,
        };
        if cluster.is_none() && !forwarded.is_empty() {
            return Err(ConfigError::Invalid {
                key: "cluster.nats_url".into(),
                message: "messages are forwarded to other nodes, but the gate is not in a cluster"
                    .into(),
            }
            .into());
        }
        let router = self
            .processor
            .into_router(cluster.clone().map(|c| c.forwarder()));
        let epoch = std::time::Instant::now();
        let codec = Arc::clone(router.codec());
        let node = cluster.as_ref().map(|c| c.node_id().to_owned());
        let resume = resume_on
            .then(|| {
                let settings = (config.resume_window, config.resume_buffer);
                Resumption::new(settings, Arc::clone(&codec), node.as_deref())
            })
            .flatten();
        let cluster_link = cluster.clone().map(|c| c.conn_link());
        let clustered = cluster.is_some();
        let shared = Arc::new_cyclic(|me| {
            let link: Arc<dyn ConnLink> = Arc::new(GateConnLink {
                shared: me.clone(),
                cluster: cluster_link,
            });
            let settings = |max_msg_len| AgentSettings {
                codec: Arc::clone(&codec),
                max_msg_len,
                capacity: config.pending_write_num,
                max_bytes: config.pending_write_bytes,
                policy: config.queue_full,
                epoch,
                link: Some(Arc::clone(&link)),
                clustered,
            };
            Shared {
                tcp_settings: settings(frames.max_msg_len()),
                ws_settings: settings(config.max_msg_len as usize),
                router,
                frames,
                on_new: self.on_new,
                on_close: self.on_close,
                on_resume: self.on_resume,
                on_goodbye: self.on_goodbye,
                cluster,
                resume,
                on_http: self.on_http,
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
                epoch,
                tls_tcp,
                tls_ws,
                close_timeout: config.close_timeout,
                http_timeout: config.http_timeout,
                admission: Arc::new(
                    Admission::new(
                        config.max_conn_num,
                        config.max_conn_per_ip,
                        config.handshake_share,
                    )
                    .with_waiting_per_ip(config.max_waiting_per_ip),
                ),
                agents: Default::default(),
                membership: Membership::default(),
                shutdown: CancellationToken::new(),
                stopping: Default::default(),
                drained: CancellationToken::new(),
                reading: AtomicUsize::new(0),
                tracker: TaskTracker::new(),
            }
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
            on_resume: None,
            on_goodbye: None,
            on_http: None,
            cluster: None,
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
        GateHandle::new(Arc::clone(&self.shared))
    }

    /// Starts accepting. Used by [`App`](crate::App); call [`RunningGate::stop`] to stop.
    pub fn start(self) -> RunningGate {
        let Gate { shared, tcp, ws } = self;
        if let Some(link) = &shared.cluster {
            Arc::clone(link).start(&shared);
        }
        for (listener, transport) in [(tcp, Transport::Tcp), (ws, Transport::Ws)] {
            if let Some(l) = listener {
                let what = match transport {
                    Transport::Tcp => "tcp",
                    Transport::Ws => "websocket",
                };
                tracing::info!(addr = ?l.local_addr().ok(), "{what} listening");
                shared
                    .tracker
                    .spawn(accept_loop(l, Arc::clone(&shared), transport));
            }
        }
        if !shared.idle_timeout.is_zero()
            || !shared.ws_ping_interval.is_zero()
            || shared.read_timeout_ms > 0
        {
            shared.tracker.spawn(sweep(Arc::clone(&shared)));
        }
        if shared.resume.is_some() {
            shared
                .tracker
                .spawn(super::resume::acks(Arc::clone(&shared)));
        }
        RunningGate::new(shared)
    }
}
