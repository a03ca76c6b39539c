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

use tokio_util::sync::CancellationToken;

use crate::gate::{Gate, RunningGate};
use crate::module::{AnyModule, Module, ModuleError, RunningModule};

/// Why the app could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A module failed to start.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signal(#[from] std::io::Error),
}

/// Stops a running (or not yet running) [`App`]. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StopHandle(CancellationToken);

impl StopHandle {
    /// Asks the app to shut down. Idempotent; works before, during and after start-up.
    pub fn stop(&self) {
        self.0.cancel();
    }

    /// Whether stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// Modules and gates run together.
pub struct App {
    modules: Vec<Box<dyn AnyModule>>,
    gates: Vec<Gate>,
    stop: StopHandle,
    shutdown_timeout: Duration,
    signals: bool,
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

    /// Runs until stopped, then shuts down cleanly. Returns an error only if start-up failed
    /// (after stopping what had started).
    pub async fn run(self) -> Result<(), AppError> {
        let App {
            modules,
            gates,
            stop,
            shutdown_timeout,
            signals,
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

        let mut running: Vec<RunningModule> = Vec::new();
        let mut failure = None;
        for module in modules {
            match module.start().await {
                Ok(m) => running.push(m),
                Err(e) => {
                    tracing::error!(error = %e, "module failed to start");
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut started: Vec<RunningGate> = Vec::new();
        if failure.is_none() {
            started = gates.into_iter().map(Gate::start).collect();
            stop_token.cancelled().await;
        }

        for gate in started {
            gate.stop(shutdown_timeout).await;
        }
        while let Some(module) = running.pop() {
            module.stop(shutdown_timeout).await;
        }
        stop_token.cancel();
        if let Some(task) = signal_task {
            let _ = task.await;
        }
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

fn signal_listener() -> std::io::Result<Signals> {
    use tokio::signal::unix::{SignalKind, signal};
    Ok(Signals {
        int: signal(SignalKind::interrupt())?,
        term: signal(SignalKind::terminate())?,
    })
}
