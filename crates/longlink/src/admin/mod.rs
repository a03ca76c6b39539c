//! Operations: Prometheus metrics, a health check and an admin console (`[admin]`).
//!
//! - **Metrics**: an HTTP listener on `[admin] addr` (default `127.0.0.1:9090`) serves
//!   `GET /metrics` in the Prometheus text format and `GET /healthz` (`200` while the app
//!   serves, `503` once it is stopping). Every metric is named `longlink_*`; see
//!   [`metrics`] for the list.
//! - **Console**: a line protocol on `[admin] console_addr` (default off), like leaf's
//!   console: `help`, `stats`, `kick <uid>`, `quit`, plus the commands the application
//!   registers with [`App::console_command`](crate::App::console_command).
//!
//! Both listen on exactly the address configured; keep them on loopback (or behind a
//! firewall): neither asks for a password.
//!
//! ```no_run
//! use longlink::App;
//! use longlink::admin::{AdminConfig, AdminServer};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = AdminConfig {
//!     addr: "127.0.0.1:9090".into(),
//!     console_addr: "127.0.0.1:9091".into(),
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

mod console;
mod http;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::gate::GateHandle;
use crate::metrics;
use crate::module::Mailbox;
use crate::shutdown::StopHandle;

/// `[admin]` settings.
///
/// ```
/// use longlink::admin::AdminConfig;
///
/// let config = AdminConfig::default();
/// assert_eq!(config.addr, "127.0.0.1:9090");
/// assert_eq!(config.console_addr, ""); // the console is off unless configured
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The HTTP listener for `/metrics` and `/healthz`, `host:port`; empty turns it off.
    pub addr: String,
    /// The admin console, `host:port`; empty (the default) turns it off. It listens on
    /// exactly this address: keep it on loopback.
    pub console_addr: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            addr: "127.0.0.1:9090".into(),
            console_addr: String::new(),
        }
    }
}

/// Why the admin listeners could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
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
    pub(crate) fn start(
        self,
        gates: Vec<GateHandle>,
        mailboxes: Vec<Mailbox>,
        stop: StopHandle,
    ) -> Option<RunningAdmin> {
        let server = self.server?;
        let shared = Arc::new(Shared {
            gates,
            mailboxes,
            stop,
            commands: self.commands,
            stats: self.stats,
            rate: metrics::Rate::default(),
        });
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        if let Some(listener) = server.http {
            tracing::info!(addr = ?listener.local_addr().ok(), "admin http listening");
            tracker.spawn(http::serve(
                listener,
                Arc::clone(&shared),
                token.clone(),
                tracker.clone(),
            ));
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

/// Every second: the message rate for `stats`, and the mailbox depth gauges.
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
}

impl Shared {
    /// Whether the app is serving (not stopping).
    pub(crate) fn healthy(&self) -> bool {
        !self.stop.is_stopped()
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

/// The admin listeners, bound and not yet serving; give them to
/// [`App::admin`](crate::App::admin). Binding installs the metrics recorder (see
/// [`metrics::install`]).
pub struct AdminServer {
    http: Option<TcpListener>,
    console: Option<TcpListener>,
}

impl std::fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminServer")
            .field("addr", &self.addr())
            .field("console_addr", &self.console_addr())
            .finish()
    }
}

impl AdminServer {
    /// Installs the metrics recorder (once per process) and binds the listeners that
    /// `config` turns on.
    pub async fn bind(config: &AdminConfig) -> Result<AdminServer, AdminError> {
        metrics::install();
        Ok(AdminServer {
            http: bind("admin.addr", &config.addr).await?,
            console: bind("admin.console_addr", &config.console_addr).await?,
        })
    }

    /// The bound metrics address (useful with port 0).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bound console address.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console.as_ref().and_then(|l| l.local_addr().ok())
    }
}

async fn bind(key: &'static str, addr: &str) -> Result<Option<TcpListener>, AdminError> {
    if addr.is_empty() {
        return Ok(None);
    }
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|error| AdminError::Bind {
            key,
            addr: addr.to_owned(),
            error,
        })
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
