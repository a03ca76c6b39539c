//! [`App`]: starts modules in order, then the gates; on SIGINT, SIGTERM or
//! [`StopHandle::stop`] stops the gates first (their connections flush and close, their close
//! events reach the still-running modules), then the modules in reverse order.
//!
//! ```
//! use std::time::Duration;
//! use longlink::{App, Module};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = App::new().module(Module::new("game", ()));
//! let stop = app.stop_handle();
//! stop.stop(); // even before run: not lost
//! tokio::time::timeout(Duration::from_secs(5), app.run()).await.unwrap().unwrap();
//! # }
//! ```

use std::time::Duration;

#[cfg(feature = "cluster")]
use crate::cluster::{Backend, ClusterError, RunningBackend};
use crate::gate::{Gate, RunningGate};
use crate::module::{AnyModule, Module, ModuleError, RunningModule};
pub use crate::shutdown::StopHandle;

/// Why the app could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A module failed to start.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// A cluster backend could not subscribe.
    #[cfg(feature = "cluster")]
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signal(#[from] std::io::Error),
}

/// Modules and gates run together.
pub struct App {
    modules: Vec<Box<dyn AnyModule>>,
    gates: Vec<Gate>,
    stop: StopHandle,
    shutdown_timeout: Duration,
    signals: bool,
    #[cfg(feature = "admin")]
    admin: crate::admin::AppAdmin,
    #[cfg(feature = "cluster")]
    backends: Vec<Backend>,
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("modules", &self.modules.len())
            .field("gates", &self.gates)
            .finish()
    }
}

impl App {
    /// An empty app that listens for SIGINT and SIGTERM, with a 10 s shutdown deadline.
    pub fn new() -> Self {
        App {
            modules: Vec::new(),
            gates: Vec::new(),
            stop: StopHandle::default(),
            shutdown_timeout: Duration::from_secs(10),
            signals: true,
            #[cfg(feature = "admin")]
            admin: crate::admin::AppAdmin::default(),
            #[cfg(feature = "cluster")]
            backends: Vec::new(),
        }
    }

    /// Adds a module; modules start in the order added and stop in reverse.
    pub fn module<S: Send + 'static>(mut self, module: Module<S>) -> Self {
        self.modules.push(Box::new(module));
        self
    }

    /// Adds a gate; gates start after every module and stop before any.
    pub fn gate(mut self, gate: Gate) -> Self {
        self.gates.push(gate);
        self
    }

    /// How long shutdown may take: connections flushing, then each module's drain.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Whether SIGINT and SIGTERM stop the app (default true; tests that run several apps in
    /// one process turn it off and use [`StopHandle`]).
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }

    /// A handle that stops this app.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Serves `/metrics`, `/healthz` and the console (see [`admin`](crate::admin)) while the
    /// app runs; `/healthz` answers 503 from the moment stop begins.
    #[cfg(feature = "admin")]
    pub fn admin(mut self, server: crate::admin::AdminServer) -> Self {
        self.admin.server = Some(server);
        self
    }

    /// Adds a console command: `f` gets the words after the name and answers with text. A
    /// command with a built-in's name (`stats`, `kick`) replaces it.
    ///
    /// ```
    /// use longlink::App;
    ///
    /// let app = App::new()
    ///     .console_command("echo", "echo <words>: says them back", |args: Vec<String>| async move {
    ///         args.join(" ")
    ///     });
    /// # drop(app);
    /// ```
    #[cfg(feature = "admin")]
    pub fn console_command<F, Fut>(mut self, name: &str, help: &str, f: F) -> Self
    where
        F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = String> + Send + 'static,
    {
        self.admin.command(name, help, f);
        self
    }

    /// Adds the application's numbers to the console's `stats` (e.g. sessions and rooms), as
    /// `key: value` lines; `f` may ask a module (see [`ModuleRef::call`](crate::ModuleRef::call)).
    ///
    /// ```
    /// use longlink::App;
    ///
    /// let app = App::new().console_stats(|| async { vec![("sessions".to_string(), "0".to_string())] });
    /// # drop(app);
    /// ```
    #[cfg(feature = "admin")]
    pub fn console_stats<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Vec<(String, String)>> + Send + 'static,
    {
        self.admin.stats(f);
        self
    }

    /// Adds a cluster backend (see [`cluster`](crate::cluster)): it starts after the modules
    /// and stops before them, after the gates.
    #[cfg(feature = "cluster")]
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backends.push(backend);
        self
    }

    /// Runs until stopped, then shuts down cleanly. Returns an error only if start-up failed
    /// (after stopping what had started).
    pub async fn run(self) -> Result<(), AppError> {
        let App {
            modules,
            gates,
            stop,
            shutdown_timeout,
            signals,
            #[cfg(feature = "admin")]
            admin,
            #[cfg(feature = "cluster")]
            backends,
        } = self;
        // Install signal handlers first, so a signal during start-up is not lost either.
        let signal = if signals {
            Some(signal_listener()?)
        } else {
            None
        };
        let stop_token = stop.0.clone();
        let signal_task = signal.map(|mut sig| {
            let stop = stop_token.clone();
            tokio::spawn(async move {
                tokio::select! {
                    name = sig.recv() => {
                        tracing::info!(signal = name, "shutting down");
                        stop.cancel();
                    }
                    _ = stop.cancelled() => {}
                }
            })
        });

        #[cfg(feature = "admin")]
        let mailboxes: Vec<_> = modules.iter().map(|m| m.mailbox()).collect();
        let mut running: Vec<RunningModule> = Vec::new();
        let mut failure = None;
        for module in modules {
            match module.start().await {
                Ok(m) => running.push(m),
                Err(e) => {
                    tracing::error!(error = %e, "module failed to start");
                    failure = Some(e.into());
                    break;
                }
            }
        }
        let mut started: Vec<RunningGate> = Vec::new();
        #[cfg(feature = "admin")]
        let mut running_admin = None;
        #[cfg(feature = "cluster")]
        let mut serving: Vec<RunningBackend> = Vec::new();
        #[cfg(feature = "cluster")]
        if failure.is_none() {
            for backend in backends {
                match backend.start().await {
                    Ok(b) => serving.push(b),
                    Err(e) => {
                        tracing::error!(error = %e, "cluster backend failed to start");
                        failure = Some(AppError::Cluster(e));
                        break;
                    }
                }
            }
        }
        if failure.is_none() {
            #[cfg(feature = "admin")]
            {
                let handles: Vec<_> = gates.iter().map(Gate::handle).collect();
                // The API's messages in the gates' encoding (a cluster's nodes share it).
                let codec = handles
                    .first()
                    .map(|h| std::sync::Arc::clone(h.codec()))
                    .or_else(|| serving.first().map(|b| std::sync::Arc::clone(b.codec())));
                running_admin = admin.start(handles, mailboxes, stop.clone(), codec);
            }
            started = gates.into_iter().map(Gate::start).collect();
            stop_token.cancelled().await;
        }

        for gate in started {
            gate.stop(shutdown_timeout).await;
        }
        #[cfg(feature = "cluster")]
        for backend in serving {
            backend.stop(shutdown_timeout).await;
        }
        while let Some(module) = running.pop() {
            module.stop(shutdown_timeout).await;
        }
        #[cfg(feature = "admin")]
        if let Some(admin) = running_admin {
            admin.stop().await;
        }
        stop_token.cancel();
        if let Some(task) = signal_task {
            let _ = task.await;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// SIGINT and SIGTERM (Unix only).
#[cfg(unix)]
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

#[cfg(unix)]
fn signal_listener() -> std::io::Result<Signals> {
    use tokio::signal::unix::{SignalKind, signal};
    Ok(Signals {
        int: signal(SignalKind::interrupt())?,
        term: signal(SignalKind::terminate())?,
    })
}

/// Ctrl-C, where there are no Unix signals (not built or tested by the test command).
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    async fn recv(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}

#[cfg(not(unix))]
fn signal_listener() -> std::io::Result<Signals> {
    Ok(Signals)
}
