//! Operations: Prometheus metrics, a health check and an admin console (`[admin]`).
//!
//! - **Metrics**: an HTTP listener on `[admin] addr` (default `127.0.0.1:9090`) serves
//!   `GET /metrics` in the Prometheus text format and `GET /healthz` (`200` while the app
//!   serves, `503` once it is stopping). Every metric is named `longlink_*`; see
//!   [`metrics`] for the list. Each connection has 5 s to send its request head, and of
//!   more than 256 open at once the oldest is closed: stalled clients cannot keep
//!   `/healthz` from answering.
//! - **Server API**: with `[admin] api_key` set, `/api/v1/...` on the same listener (and
//!   `<subject_prefix>.api.*` over NATS in a cluster) lets the application's other services
//!   push, broadcast, kick and ask presence; see [`api`].
//! - **Console**: a line protocol on `[admin] console_addr` (default off), like leaf's
//!   console: `help`, `stats`, `kick <uid> [reason]`, `cpuprof start|stop`, `quit`, plus the
//!   commands the application registers with
//!   [`App::console_command`](crate::App::console_command). At most 8 sessions are open: a
//!   ninth closes the one idle longest (the operator always gets in), and a session that
//!   sends no command within 60 s is closed (15 min after its last command).
//!
//! Both listen on exactly the address configured; keep them on loopback (or behind a
//! firewall): only the API asks for a key.
//!
//! ```no_run
//! use longlink::App;
//! use longlink::admin::{AdminConfig, AdminServer};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = AdminConfig {
//!     addr: "127.0.0.1:9090".into(),
//!     console_addr: "127.0.0.1:9091".into(),
//!     ..AdminConfig::default()
//! };
//! let admin = AdminServer::bind(&config).await?;
//! App::new()
//!     .admin(admin)
//!     .console_command("hello", "hello <name>: says hello", |args: Vec<String>| async move {
//!         format!("hello, {}", args.first().map_or("stranger", String::as_str))
//!     })
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```

pub mod api;
mod console;
mod debug;
#[cfg(feature = "heap-profiler")]
mod heap;
mod http;
#[cfg(feature = "profiler")]
pub(crate) mod profile;
#[cfg(feature = "redis")]
pub mod redis;
mod server;
mod stats;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use server::{AdminConfig, AdminError, AdminServer};

use crate::codec::Codec;
use crate::gate::GateHandle;
use crate::metrics;
use crate::module::Mailbox;
use crate::shutdown::StopHandle;
use api::Api;
#[cfg(feature = "profiler")]
use profile::Profiler;

/// The future a console command or the stats hook returns.
pub type ConsoleFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

type CommandFn = Arc<dyn Fn(Vec<String>) -> ConsoleFuture<String> + Send + Sync>;
type StatsFn = Arc<dyn Fn() -> ConsoleFuture<Vec<(String, String)>> + Send + Sync>;

/// A console command registered by the application.
#[derive(Clone)]
pub(crate) struct Command {
    pub(crate) help: String,
    pub(crate) run: CommandFn,
}

/// What the application adds to the console, and the bound admin listeners (kept by
/// [`App`](crate::App) until it runs).
#[derive(Default)]
pub(crate) struct AppAdmin {
    pub(crate) server: Option<AdminServer>,
    pub(crate) commands: BTreeMap<String, Command>,
    pub(crate) stats: Option<StatsFn>,
}

impl AppAdmin {
    pub(crate) fn command<F, Fut>(&mut self, name: &str, help: &str, f: F)
    where
        F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = String> + Send + 'static,
    {
        let run: CommandFn = Arc::new(move |args| Box::pin(f(args)));
        self.commands.insert(
            name.to_owned(),
            Command {
                help: help.to_owned(),
                run,
            },
        );
    }

    pub(crate) fn stats<F, Fut>(&mut self, f: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<(String, String)>> + Send + 'static,
    {
        self.stats = Some(Arc::new(move || Box::pin(f())));
    }

    /// Starts the listeners (if any) with what the app runs; the result stops them.
    /// `codec` encodes the API's messages (a gate's, or a cluster backend's).
    pub(crate) fn start(
        self,
        gates: Vec<GateHandle>,
        mailboxes: Vec<Mailbox>,
        stop: StopHandle,
        codec: Option<Arc<Codec>>,
    ) -> Option<RunningAdmin> {
        let server = self.server?;
        let api = Arc::new(Api::new(gates.clone(), server.cluster.clone(), codec));
        let shared = Arc::new(Shared {
            gates,
            mailboxes,
            stop,
            commands: self.commands,
            stats: self.stats,
            rate: metrics::Rate::default(),
            history: stats::History::default(),
            nodes: tokio::sync::Mutex::new(None),
            api_key: (!server.api_key.is_empty()).then(|| server.api_key.clone()),
            api: Arc::clone(&api),
            #[cfg(feature = "profiler")]
            profiler: Arc::new(Profiler::new(server.profile_dir.clone())),
            profile_dir: server.profile_dir.clone(),
        });
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        if let Some(listener) = server.http {
            tracing::info!(addr = ?listener.local_addr().ok(), api = shared.api_key.is_some(), "admin http listening");
            tracker.spawn(http::serve(listener, Arc::clone(&shared), token.clone()));
        }
        if let Some(cluster) = &server.cluster {
            tracker.spawn(api::nats::serve(
                Arc::clone(&api),
                cluster.clone(),
                shared.api_key.is_some(),
                token.clone(),
                tracker.clone(),
            ));
        }
        #[cfg(feature = "redis")]
        if let Some(source) = server.redis {
            tracker.spawn(redis::serve(Arc::clone(&api), source, token.clone()));
        }
        if let Some(listener) = server.console {
            tracing::info!(addr = ?listener.local_addr().ok(), "admin console listening");
            tracker.spawn(console::serve(
                listener,
                Arc::clone(&shared),
                token.clone(),
                tracker.clone(),
            ));
        }
        tracker.spawn(sample(Arc::clone(&shared), token.clone()));
        tracker.close();
        Some(RunningAdmin { token, tracker })
    }
}

/// Every second: the message rate for `stats`, the mailbox depth gauges, and the live
/// page's history.
async fn sample(shared: Arc<Shared>, token: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        shared.rate.sample();
        shared.sample_mailboxes();
        shared.history.sample();
    }
}

/// What the admin tasks share.
pub(crate) struct Shared {
    gates: Vec<GateHandle>,
    mailboxes: Vec<Mailbox>,
    stop: StopHandle,
    commands: BTreeMap<String, Command>,
    stats: Option<StatsFn>,
    rate: metrics::Rate,
    /// The live page's per-second samples.
    history: stats::History,
    /// The cluster's nodes as last gathered, and when (a second's cache for `/stats.json`).
    nodes: tokio::sync::Mutex<Option<(std::time::Instant, serde_json::Value)>>,
    /// `[admin] api_key`, when the server API is on.
    api_key: Option<String>,
    /// The server API's operations (the console's `kick` uses them too).
    api: Arc<Api>,
    /// The console's `cpuprof`.
    #[cfg(feature = "profiler")]
    profiler: Arc<Profiler>,
    /// `[admin] profile_dir`, where `prof heap` writes.
    #[cfg_attr(not(feature = "heap-profiler"), allow(dead_code))]
    profile_dir: std::path::PathBuf,
}

impl Shared {
    /// Whether the app is serving (not stopping).
    pub(crate) fn healthy(&self) -> bool {
        !self.stop.is_stopped()
    }

    /// `/stats.json`: the history's figures, the mailboxes and the nodes.
    pub(crate) async fn stats_json(&self) -> serde_json::Value {
        let mut answer = self.history.json();
        answer["mailboxes"] = self
            .mailboxes
            .iter()
            .map(|m| serde_json::json!({ "module": m.name(), "depth": m.depth() }))
            .collect();
        answer["nodes"] = self.nodes().await;
        answer
    }

    /// Every node this one knows of (itself alone without a cluster); in a cluster
    /// gathered over NATS at most once a second.
    async fn nodes(&self) -> serde_json::Value {
        let mut cached = self.nodes.lock().await;
        if let Some((at, nodes)) = &*cached
            && at.elapsed() < std::time::Duration::from_secs(1)
        {
            return nodes.clone();
        }
        let nodes = serde_json::to_value(self.api.stats().await.nodes).unwrap_or_default();
        *cached = Some((std::time::Instant::now(), nodes.clone()));
        nodes
    }

    /// Sets `longlink_module_mailbox_depth` for every module.
    pub(crate) fn sample_mailboxes(&self) {
        if !metrics::enabled() {
            return;
        }
        for mailbox in &self.mailboxes {
            ::metrics::gauge!(metrics::MAILBOX_DEPTH, "module" => mailbox.name().to_owned())
                .set(mailbox.depth() as f64);
        }
    }
}

/// The admin listeners while the app runs.
pub(crate) struct RunningAdmin {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl RunningAdmin {
    /// Stops the listeners and closes their connections.
    pub(crate) async fn stop(self) {
        self.token.cancel();
        self.tracker.wait().await;
    }
}
