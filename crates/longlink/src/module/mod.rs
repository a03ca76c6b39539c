//! Modules: actors with their own task, state and mailbox (leaf's `module` + `Skeleton`).
//!
//! Everything a module does runs on its own task, one job at a time, with `&mut` access to its
//! state through [`Ctx`]: routed messages, connection events, calls from other modules, timer
//! and cron callbacks, and the callbacks of background jobs. No locks in user code.
//!
//! Between modules (leaf's chanrpc, typed):
//! - fire-and-forget: [`ModuleRef::cast`] / [`ModuleRef::try_cast`];
//! - call-and-await with a timeout: [`ModuleRef::call`];
//! - call-with-callback, the callback on the caller's task: [`Ctx::call`].
//!
//! ```
//! use std::time::Duration;
//! use longlink::Module;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let counter = Module::new("counter", 0u32);
//! let handle = counter.module_ref();
//! let running = counter.start().await.unwrap();
//!
//! handle.cast(|ctx| **ctx += 2).await.unwrap();
//! let n = handle.call(Duration::from_secs(1), |ctx| **ctx).await.unwrap();
//! assert_eq!(n, 2);
//! running.stop(Duration::from_secs(1)).await;
//! # }
//! ```

mod ctx;
mod handled;
mod mailbox;
mod serve;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use ctx::{Ctx, Linear};
pub(crate) use handled::{Handled, Ticket};
pub(crate) use mailbox::{Job, Mailbox, panic_message};

/// Default mailbox capacity (leaf's `ChanRPCLen` in leafserver is 10000).
pub const DEFAULT_MAILBOX: usize = 10_000;

/// Why a call to a module did not give a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The mailbox is full (only from the non-waiting [`ModuleRef::try_cast`]).
    #[error("module mailbox is full")]
    Full,
    /// The module has stopped.
    #[error("module is closed")]
    Closed,
    /// No answer within the timeout.
    #[error("call timed out")]
    Timeout,
    /// The call was taken but no answer came: the function panicked or the module stopped
    /// before running it.
    #[error("call got no reply (the function panicked or the module stopped)")]
    NoReply,
}

/// A cheap, cloneable handle to a module: send it work from anywhere.
pub struct ModuleRef<S> {
    mailbox: Mailbox,
    _state: PhantomData<fn() -> S>,
}

impl<S> Clone for ModuleRef<S> {
    fn clone(&self) -> Self {
        ModuleRef {
            mailbox: self.mailbox.clone(),
            _state: PhantomData,
        }
    }
}

impl<S> fmt::Debug for ModuleRef<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleRef")
            .field("name", &self.mailbox.name)
            .finish()
    }
}

impl<S: Send + 'static> ModuleRef<S> {
    /// The module's name.
    pub fn name(&self) -> &str {
        self.mailbox.name()
    }

    pub(crate) fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    /// Jobs waiting in the module's mailbox (a gauge for monitoring).
    pub fn mailbox_depth(&self) -> usize {
        self.mailbox.depth()
    }

    /// Runs `f` on the module's task, waiting for room in its mailbox (leaf's `Go`).
    pub async fn cast(
        &self,
        f: impl FnOnce(&mut Ctx<S>) + Send + 'static,
    ) -> Result<(), CallError> {
        self.mailbox
            .send(Job::new("cast", f))
            .await
            .map_err(|_| CallError::Closed)
    }

    /// Runs `f` on the module's task if its mailbox has room now; never waits.
    pub fn try_cast(&self, f: impl FnOnce(&mut Ctx<S>) + Send + 'static) -> Result<(), CallError> {
        self.mailbox.try_send(Job::new("cast", f))
    }

    /// Runs `f` on the module's task and returns its result, or an error after `timeout`
    /// (which covers waiting for room, waiting in the queue and running).
    pub async fn call<R: Send + 'static>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&mut Ctx<S>) -> R + Send + 'static,
    ) -> Result<R, CallError> {
        let (tx, rx) = oneshot::channel();
        let job = Job::new("call", move |ctx: &mut Ctx<S>| {
            let _ = tx.send(f(ctx));
        });
        let exchange = async {
            self.mailbox
                .send(job)
                .await
                .map_err(|_| CallError::Closed)?;
            rx.await.map_err(|_| CallError::NoReply)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(CallError::Timeout))
    }
}

type Hook<S> = Box<dyn FnOnce(&mut Ctx<S>) + Send>;

/// A module before it runs: its name, state, mailbox and lifecycle hooks.
pub struct Module<S> {
    name: Arc<str>,
    state: S,
    tx: mpsc::Sender<Job>,
    rx: mpsc::Receiver<Job>,
    on_init: Option<Hook<S>>,
    on_destroy: Option<Hook<S>>,
}

impl<S: Send + 'static> Module<S> {
    /// A module with a mailbox of [`DEFAULT_MAILBOX`] jobs.
    pub fn new(name: &str, state: S) -> Self {
        Self::with_capacity(name, state, DEFAULT_MAILBOX)
    }

    /// A module whose mailbox holds `capacity` jobs; senders wait (or `try_cast` fails) when
    /// it is full, so a slow module pushes back on its own senders only.
    pub fn with_capacity(name: &str, state: S, capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Module {
            name: Arc::from(name),
            state,
            tx,
            rx,
            on_init: None,
            on_destroy: None,
        }
    }

    /// A handle for routing messages, events and calls to this module.
    pub fn module_ref(&self) -> ModuleRef<S> {
        ModuleRef {
            mailbox: Mailbox {
                tx: self.tx.clone(),
                name: Arc::clone(&self.name),
            },
            _state: PhantomData,
        }
    }

    /// Runs on the module's task before anything else (leaf's `OnInit`).
    pub fn on_init(mut self, f: impl FnOnce(&mut Ctx<S>) + Send + 'static) -> Self {
        self.on_init = Some(Box::new(f));
        self
    }

    /// Runs on the module's task after it has stopped serving (leaf's `OnDestroy`).
    pub fn on_destroy(mut self, f: impl FnOnce(&mut Ctx<S>) + Send + 'static) -> Self {
        self.on_destroy = Some(Box::new(f));
        self
    }

    /// Spawns the module's task, runs its init hook there, and returns once init is done.
    pub async fn start(self) -> Result<RunningModule, ModuleError> {
        let Module {
            name,
            state,
            tx,
            rx,
            on_init,
            on_destroy,
        } = self;
        let (stop, stop_rx) = oneshot::channel::<Duration>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let mailbox = Mailbox {
            tx,
            name: Arc::clone(&name),
        };
        let mut ctx = Ctx::new(state, mailbox);
        let join = tokio::spawn(async move {
            if let Some(init) = on_init
                && let Err(panic) = catch_unwind(AssertUnwindSafe(|| init(&mut ctx)))
            {
                let _ = ready_tx.send(Err(panic_message(&panic)));
                return;
            }
            let _ = ready_tx.send(Ok(()));
            serve::serve(&mut ctx, rx, stop_rx).await;
            if let Some(destroy) = on_destroy
                && let Err(panic) = catch_unwind(AssertUnwindSafe(|| destroy(&mut ctx)))
            {
                tracing::error!(module = %ctx.name(), panic = %panic_message(&panic), "on_destroy panicked");
            }
        });
        match ready_rx.await {
            Ok(Ok(())) => Ok(RunningModule { name, stop, join }),
            Ok(Err(panic)) => Err(ModuleError::InitPanicked {
                module: name.to_string(),
                panic,
            }),
            Err(_) => Err(ModuleError::InitPanicked {
                module: name.to_string(),
                panic: "the module task ended during init".into(),
            }),
        }
    }
}

/// A module that could not start.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Its init hook panicked.
    #[error("module {module}: init panicked: {panic}")]
    InitPanicked {
        /// The module's name.
        module: String,
        /// The panic message.
        panic: String,
    },
}

/// A module whose task is running.
#[derive(Debug)]
pub struct RunningModule {
    name: Arc<str>,
    /// Tells the loop to stop, and how long it may drain.
    stop: oneshot::Sender<Duration>,
    join: JoinHandle<()>,
}

impl RunningModule {
    /// The module's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops the module: waits up to `timeout` for its background jobs and calls in flight,
    /// runs every job already in its mailbox, drops its pending timers, then runs its destroy
    /// hook. Returns when the task has ended.
    pub async fn stop(self, timeout: Duration) {
        // If the task already ended (it cannot, short of a bug), there is nothing to stop.
        let _ = self.stop.send(timeout);
        if let Err(e) = self.join.await {
            tracing::error!(module = %self.name, error = %e, "module task failed");
        }
    }
}

/// A module, its state type erased, for [`App`](crate::App).
pub(crate) trait AnyModule: Send {
    fn start(
        self: Box<Self>,
    ) -> Pin<Box<dyn Future<Output = Result<RunningModule, ModuleError>> + Send>>;

    /// The module's mailbox (for the mailbox depth gauge).
    fn mailbox(&self) -> Mailbox;
}

impl<S: Send + 'static> AnyModule for Module<S> {
    fn start(
        self: Box<Self>,
    ) -> Pin<Box<dyn Future<Output = Result<RunningModule, ModuleError>> + Send>> {
        Box::pin((*self).start())
    }

    fn mailbox(&self) -> Mailbox {
        self.module_ref().mailbox
    }
}
