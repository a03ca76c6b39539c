//! [`GateBuilder`] and [`Gate`]: settings, the processor, connection hooks (`hooks`; and
//! `moving`, for sessions moving between gates); `bind` checks them all and binds the
//! listeners; `start` serves.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

mod hooks;
mod moving;

use super::accept::accept_loop;
use super::admission::Admission;
use super::link::{BoxFuture, ClusterLink};
use super::listen::listen;
use super::live::Live;
use super::membership::{GateConnLink, Membership};
use super::resume::Resumption;
use super::running::{GateHandle, RunningGate};
use super::shared::{Hooks, Services, Settings, Shared};
use super::sweep::sweep;
use super::transport::tls;
use super::{GateConfig, GateError};
use crate::agent::link::ConnLink;
use crate::agent::{AgentSettings, Transport};
use crate::config::ConfigError;
use crate::processor::Processor;
use longlink_wire::LenCodec;

/// What [`GateBuilder`] keeps of the cluster until `bind`.
pub(crate) trait ClusterSetup: Send {
    /// Subscribes and makes the link, for the forwarded `types`; `None` when the setup
    /// has no cluster after all (only options were given).
    fn build(
        self: Box<Self>,
        types: Vec<Arc<str>>,
    ) -> BoxFuture<'static, Result<Option<ClusterBuilt>, GateError>>;
    /// The setup itself, so the cluster layer can add options to it.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Starts a gate's cluster link once the gate runs: from then on it serves its subscriptions
/// and acts on the gate's connections through the given `Shared`.
pub(crate) type StartCluster = Box<dyn FnOnce(&Arc<Shared>) + Send>;

/// A gate's cluster, made at `bind`: its link, and what starts it once the gate runs.
pub(crate) struct ClusterBuilt {
    /// What the gate asks of the cluster.
    pub(crate) link: Arc<dyn ClusterLink>,
    /// Called when the gate starts accepting.
    pub(crate) start: StartCluster,
}

/// Builds a [`Gate`]: settings, processor, connection events.
pub struct GateBuilder {
    config: GateConfig,
    processor: Processor,
    hooks: Hooks,
    /// The descriptors of [`GateBuilder::serve_manifest`] (`/manifest.json`), if asked.
    manifest: Option<longlink_wire::manifest::FileDescriptorSet>,
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
        check_encoding(&config, &self.processor)?;
        super::manifest::serve_manifest(&mut self.hooks, self.manifest.take(), &self.processor);
        let frames = framing(&config)?;
        let tls_tcp = tls_acceptor(&config, config.tls_tcp, &[])?;
        let tls_ws = tls_acceptor(&config, config.tls_ws, &[b"http/1.1"])?;
        let (tcp, ws) = listen(&config).await?;
        let forwarded = self.processor.forward_types();
        let (cluster, start_cluster) = join_cluster(self.cluster, forwarded).await?;
        let router = self
            .processor
            .into_router(cluster.clone().map(|c| c.forwarder()));
        let node = cluster.as_ref().map(|c| c.node_id().to_owned());
        let resume = resume_on
            .then(|| {
                let (window, buffer) = (config.resume_window, config.resume_buffer);
                Resumption::new(window, buffer, Arc::clone(router.codec()), node.as_deref())
            })
            .flatten();
        let services = Services {
            router,
            cluster,
            resume,
            tls_tcp,
            tls_ws,
            admission: Arc::new(
                Admission::new(
                    config.max_conn_num,
                    config.max_conn_per_ip,
                    config.handshake_share,
                )
                .with_waiting_per_ip(config.max_waiting_per_ip),
            ),
        };
        Ok(Gate {
            shared: Arc::new(shared(&config, frames, self.hooks, services)),
            tcp,
            ws,
            start_cluster,
        })
    }
}

/// The gate's `Shared`: its settings (with what each new agent is made with: the codec, the
/// queue's bounds, the link that hears of uid and group changes), hooks, services and a live
/// state that starts now.
fn shared(config: &GateConfig, frames: LenCodec, hooks: Hooks, services: Services) -> Shared {
    let codec = Arc::clone(services.router.codec());
    let epoch = std::time::Instant::now();
    let membership = Arc::new(Membership::default());
    let link: Arc<dyn ConnLink> = Arc::new(GateConnLink {
        membership: Arc::clone(&membership),
        cluster: services.cluster.clone().map(|c| c.conn_link()),
    });
    let clustered = services.cluster.is_some();
    let agent = |max_msg_len| AgentSettings {
        codec: Arc::clone(&codec),
        max_msg_len,
        capacity: config.pending_write_num,
        max_bytes: config.pending_write_bytes,
        volatile: config.volatile_queue,
        policy: config.queue_full,
        epoch,
        link: Some(Arc::clone(&link)),
        clustered,
    };
    Shared {
        settings: Settings::new(config, frames, agent),
        hooks,
        services,
        live: Live::new(epoch, membership),
    }
}

/// The cluster the builder was given, joined for the `forwarded` types: its link and what
/// starts it. Forwarded types without a cluster are a configuration error.
async fn join_cluster(
    setup: Option<Box<dyn ClusterSetup>>,
    forwarded: Vec<Arc<str>>,
) -> Result<(Option<Arc<dyn ClusterLink>>, Option<StartCluster>), GateError> {
    let built = match setup {
        Some(setup) => setup.build(forwarded.clone()).await?,
        None => None,
    };
    match built {
        Some(built) => Ok((Some(built.link), Some(built.start))),
        None if !forwarded.is_empty() => Err(ConfigError::Invalid {
            key: "cluster.nats_url".into(),
            message: "messages are forwarded to other nodes, but the gate is not in a cluster"
                .into(),
        }
        .into()),
        None => Ok((None, None)),
    }
}

/// The processor must encode as the gate is configured to (`encoding`).
fn check_encoding(config: &GateConfig, processor: &Processor) -> Result<(), GateError> {
    if processor.encoding() == config.encoding {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        key: "gate.encoding".into(),
        message: format!(
            "is {:?} but the processor was built for {:?}",
            config.encoding,
            processor.encoding()
        ),
    }
    .into())
}

/// TCP framing: `len_msg_len`, `little_endian`, `max_msg_len`.
fn framing(config: &GateConfig) -> Result<LenCodec, GateError> {
    LenCodec::new(config.len_msg_len, config.little_endian, config.max_msg_len).map_err(|e| {
        ConfigError::Invalid {
            key: "gate.len_msg_len".into(),
            message: e.to_string(),
        }
        .into()
    })
}

/// TLS for one listener, when it is `on` and `cert_file` is set; `alpn` is offered.
fn tls_acceptor(
    config: &GateConfig,
    on: bool,
    alpn: &[&[u8]],
) -> Result<Option<tls::TlsAcceptor>, GateError> {
    if !on || config.cert_file.is_empty() {
        return Ok(None);
    }
    tls::acceptor(&config.cert_file, &config.key_file, alpn)
        .map(Some)
        .map_err(|e| GateError::Tls {
            file: e.file,
            message: e.message,
        })
}

/// A gate with its listeners bound, ready to run.
pub struct Gate {
    shared: Arc<Shared>,
    tcp: Option<TcpListener>,
    ws: Option<TcpListener>,
    /// Starts the cluster's link, when the gate is in a cluster.
    start_cluster: Option<StartCluster>,
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
            hooks: Hooks::default(),
            manifest: None,
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
        let Gate {
            shared,
            tcp,
            ws,
            start_cluster,
        } = self;
        if let Some(start) = start_cluster {
            start(&shared);
        }
        for (listener, transport) in [(tcp, Transport::Tcp), (ws, Transport::Ws)] {
            if let Some(l) = listener {
                let what = match transport {
                    Transport::Tcp => "tcp",
                    Transport::Ws => "websocket",
                };
                tracing::info!(addr = ?l.local_addr().ok(), "{what} listening");
                shared
                    .live
                    .tracker
                    .spawn(accept_loop(l, Arc::clone(&shared), transport));
            }
        }
        if !shared.settings.idle_timeout.is_zero()
            || !shared.settings.ws_ping_interval.is_zero()
            || shared.settings.read_timeout_ms > 0
        {
            shared.live.tracker.spawn(sweep(Arc::clone(&shared)));
        }
        if shared.services.resume.is_some() {
            shared
                .live
                .tracker
                .spawn(super::sweep::acks(Arc::clone(&shared)));
        }
        RunningGate::new(shared)
    }
}
