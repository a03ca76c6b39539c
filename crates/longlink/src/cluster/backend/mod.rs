//! The backend node's side: connections held by gates elsewhere, their events and messages
//! delivered to local modules through the same processor and handlers as on a gate.
//!
//! This file: building, starting and stopping a [`Backend`]; `connections`: the agents it
//! holds for gates (made on first sight, reaped with a dead gate) and the delivery of their
//! messages.

mod connections;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Cluster, ClusterError};
use crate::agent::Agent;
use crate::agent::events::{EventHandler, EventSink};
use crate::module::ModuleRef;
use crate::processor::{Processor, ProcessorError, Router};

/// Builds a [`Backend`]: the node type it serves, its processor, its connection events.
pub struct BackendBuilder {
    cluster: Cluster,
    node_type: Arc<str>,
    processor: Processor,
    on_new: Option<EventSink>,
    on_close: Option<EventSink>,
}

impl BackendBuilder {
    /// Runs `f` on `module`'s task when a connection bound to this node opens, before any of
    /// its messages (as [`GateBuilder::on_new_agent`](crate::gate::GateBuilder::on_new_agent)).
    pub fn on_new_agent<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.on_new = Some(EventSink::new(module, "new agent", f));
        self
    }

    /// Runs `f` on `module`'s task when a connection bound to this node closes, after all
    /// of its messages.
    pub fn on_close_agent<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.on_close = Some(EventSink::new(module, "close agent", f));
        self
    }

    /// Checks the processor (every incoming type needs a destination here).
    pub fn build(self) -> Result<Backend, ProcessorError> {
        self.processor.validate()?;
        Ok(Backend {
            inner: Arc::new(Inner {
                cluster: self.cluster,
                node_type: self.node_type,
                router: self.processor.into_router(None),
                on_new: self.on_new,
                on_close: self.on_close,
                agents: Mutex::new(HashMap::new()),
                making: tokio::sync::Mutex::new(()),
                stop: CancellationToken::new(),
                tracker: TaskTracker::new(),
            }),
        })
    }
}

struct Inner {
    cluster: Cluster,
    node_type: Arc<str>,
    /// Decodes forwarded payloads and hands them to the local modules.
    router: Router,
    on_new: Option<EventSink>,
    on_close: Option<EventSink>,
    /// Gate node -> its connection id -> the agent here.
    agents: Mutex<HashMap<Arc<str>, HashMap<u64, Agent>>>,
    /// Held while an agent is made and announced.
    making: tokio::sync::Mutex<()>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

/// A backend node's service for one node type: it takes connections from the type's queue
/// group and runs their messages on local modules.
///
/// ```no_run
/// # use longlink::{App, Encoding, Module, Processor};
/// # use longlink::cluster::{Backend, Cluster, ClusterConfig};
/// # async fn run(cluster: Cluster, processor: Processor, chat: Module<()>) -> anyhow::Result<()> {
/// let backend = Backend::builder(&cluster, "chat", processor)
///     .on_new_agent(&chat.module_ref(), |_: &mut (), agent: &longlink::Agent| tracing::info!(conn = agent.id(), "new"))
///     .build()?;
/// App::new().module(chat).backend(backend).run().await?;
/// # Ok(()) }
/// ```
pub struct Backend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("node_type", &self.inner.node_type)
            .field("node_id", &self.inner.cluster.node_id())
            .finish()
    }
}

impl Backend {
    /// Starts building the backend for `node_type` with this processor (routes to local
    /// modules, as on a single node).
    pub fn builder(cluster: &Cluster, node_type: &str, processor: Processor) -> BackendBuilder {
        BackendBuilder {
            cluster: cluster.clone(),
            node_type: node_type.into(),
            processor,
            on_new: None,
            on_close: None,
        }
    }

    /// Subscribes and starts serving. Used by [`App`](crate::App).
    pub async fn start(self) -> Result<RunningBackend, ClusterError> {
        let inner = &self.inner;
        let nats = inner.cluster.nats();
        let svc_subject = inner.cluster.subjects().svc(&inner.node_type);
        let node_subject = inner.cluster.subjects().node(inner.cluster.node_id());
        let svc = nats
            .queue_subscribe(svc_subject, inner.node_type.to_string())
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        let node = nats
            .subscribe(node_subject)
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        // The server has the subscriptions before anyone is told we serve.
        inner.cluster.sync().await;
        tracing::info!(node_type = %inner.node_type, node = %inner.cluster.node_id(), "backend serving");
        for mut sub in [svc, node] {
            let inner = Arc::clone(inner);
            inner.tracker.clone().spawn(async move {
                loop {
                    let msg = tokio::select! {
                        _ = inner.stop.cancelled() => break,
                        msg = sub.next() => match msg { Some(m) => m, None => break },
                    };
                    inner.handle(msg).await;
                }
                let _ = sub.unsubscribe().await;
            });
        }
        let reaper = Arc::clone(inner);
        inner
            .tracker
            .spawn(async move { reaper.reap_dead_gates().await });
        Ok(RunningBackend {
            inner: Arc::clone(&self.inner),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running backend; stop it before its modules.
pub struct RunningBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RunningBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningBackend")
            .field("node_type", &self.inner.node_type)
            .finish()
    }
}

impl RunningBackend {
    /// The codec of the backend's processor.
    pub(crate) fn codec(&self) -> &Arc<crate::codec::Codec> {
        self.inner.router.codec()
    }

    /// Connections this backend currently holds for gates.
    pub fn connections(&self) -> usize {
        lock(&self.inner.agents).values().map(HashMap::len).sum()
    }

    /// Stops taking messages (unsubscribes; gates bind their connections elsewhere on their
    /// next message), then waits for what was taken to be queued, within `timeout`.
    pub async fn stop(self, timeout: Duration) {
        self.inner.stop.cancel();
        self.inner.tracker.close();
        let _ = tokio::time::timeout(timeout, self.inner.tracker.wait()).await;
        self.inner.cluster.flush_outgoing().await;
    }
}
