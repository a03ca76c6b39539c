//! The backend node's side: connections held by gates elsewhere, their events and messages
//! delivered to local modules through the same processor and handlers as on a gate.
//!
//! This file: building, starting and stopping a [`Backend`]; `connections`: the agents it
//! holds for gates (made on first sight, reaped with a dead gate) and the delivery of their
//! messages; `moving`: a stopping node's connections moving to another node of its type,
//! and the adoption of those that move here.

pub(crate) mod acks;
mod connections;
mod moving;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Cluster, ClusterError};
use crate::agent::Agent;
use crate::agent::carried::UserDataCodec;
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
    on_hand_off: Option<EventSink>,
    on_adopt: Option<EventSink>,
    user_data: Option<UserDataCodec>,
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

    /// Runs `f` on `module`'s task when this node stops and a connection bound to it moves
    /// to another node of its type, after all of its messages here: the place to take it
    /// out of the module's own maps (its uid and groups stay with the connection: what `f`
    /// does to them is not told to its gate) and to put what should move with it into its
    /// user data (see [`user_data`](Self::user_data)). Without it, the close event runs.
    ///
    /// ```no_run
    /// # use longlink::{Agent, Ctx, Module, Processor};
    /// # use longlink::cluster::{Backend, Cluster};
    /// # use std::collections::HashMap;
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct Player { uid: u64, room: u64 }
    ///
    /// #[derive(Default)]
    /// struct Game { players: HashMap<u64, Player> }
    ///
    /// # fn build(cluster: Cluster, processor: Processor, game: Module<Game>) -> anyhow::Result<()> {
    /// let m = game.module_ref();
    /// let backend = Backend::builder(&cluster, "game", processor)
    ///     .user_data::<Player>()
    ///     // Old node: what moves goes into the user data; the module lets it go.
    ///     .on_hand_off_agent(&m, |game: &mut Game, agent: &Agent| {
    ///         if let Some(player) = game.players.remove(&agent.id()) {
    ///             agent.set_user_data(player);
    ///         }
    ///     })
    ///     // New node: the module takes it back, from the user data that moved.
    ///     .on_adopt_agent(&m, |game: &mut Game, agent: &Agent| {
    ///         if let Some(player) = agent.user_data::<Player>() {
    ///             game.players.insert(agent.id(), player);
    ///         }
    ///     })
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn on_hand_off_agent<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.on_hand_off = Some(EventSink::new(module, "hand off agent", f));
        self
    }

    /// Runs `f` on `module`'s task when a connection moves here from a stopping node of this
    /// type, before any of its messages here; the agent already has its uid and the user
    /// data that moved with it (see [`on_hand_off_agent`](Self::on_hand_off_agent)).
    /// Without it, the new-connection event runs.
    pub fn on_adopt_agent<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.on_adopt = Some(EventSink::new(module, "adopt agent", f));
        self
    }

    /// Moves the agent's user data ([`Agent::set_user_data`]) with a connection that moves
    /// to another node, when it is a `T` (serialized as JSON; every node of the type must
    /// register the same `T`). User data of another type does not move. See
    /// [`on_hand_off_agent`](Self::on_hand_off_agent) for an example.
    pub fn user_data<T>(mut self) -> Self
    where
        T: serde::Serialize + serde::de::DeserializeOwned + std::any::Any + Send + Sync,
    {
        self.user_data = Some(UserDataCodec::new::<T>());
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
                on_hand_off: self.on_hand_off,
                on_adopt: self.on_adopt,
                user_data: self.user_data,
                agents: Mutex::new(FastMap::default()),
                making: tokio::sync::Mutex::new(()),
                acks: acks::Acks::default(),
                moving: std::sync::atomic::AtomicBool::new(false),
                stop_svc: CancellationToken::new(),
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
    /// When a connection moves away from this node (a stop), and here from another.
    on_hand_off: Option<EventSink>,
    on_adopt: Option<EventSink>,
    /// How user data moves with a connection (when its type is registered).
    user_data: Option<UserDataCodec>,
    /// Gate node -> its connection id -> the agent here.
    agents: Mutex<FastMap<Arc<str>, FastMap<u64, Agent>>>,
    /// Held while an agent is made and announced.
    making: tokio::sync::Mutex<()>,
    /// The acknowledgements sent lately, for gates back from a NATS outage.
    acks: acks::Acks,
    /// Its connections are moving to another node (a stop): one rebound to another gate
    /// from now on is asked to move there too. Set under the `agents` lock.
    moving: std::sync::atomic::AtomicBool,
    /// Stops taking connections (the queue group): the first step of a stop.
    stop_svc: CancellationToken,
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
            on_hand_off: None,
            on_adopt: None,
            user_data: None,
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
        let svc_done = serve(inner, svc, inner.stop_svc.clone());
        // The node subscription ends with the rest, at `stop`.
        drop(serve(inner, node, inner.stop.clone()));
        let reaper = Arc::clone(inner);
        inner
            .tracker
            .spawn(async move { reaper.reap_dead_gates().await });
        Ok(RunningBackend {
            inner: Arc::clone(&self.inner),
            svc_done,
        })
    }
}

/// Serves one subscription until `stop`, then unsubscribes; the receiver hears when it has.
fn serve(
    inner: &Arc<Inner>,
    mut sub: async_nats::Subscriber,
    stop: CancellationToken,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done, unsubscribed) = tokio::sync::oneshot::channel();
    let inner = Arc::clone(inner);
    inner.tracker.clone().spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = stop.cancelled() => break,
                msg = sub.next() => match msg { Some(m) => m, None => break },
            };
            inner.handle_all(msg).await;
        }
        let _ = sub.unsubscribe().await;
        let _ = done.send(());
    });
    unsubscribed
}

/// A hash map keyed by what other nodes send (gate names, connection ids), looked up on every
/// forwarded message: foldhash, seeded per process, rather than SipHash (the keys come from
/// the cluster's own nodes, not from clients).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running backend; stop it before its modules.
pub struct RunningBackend {
    inner: Arc<Inner>,
    /// Hears when the queue-group subscription is gone.
    svc_done: tokio::sync::oneshot::Receiver<()>,
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
        lock(&self.inner.agents).values().map(FastMap::len).sum()
    }

    /// Stops: leaves the type's queue group (new connections go to other nodes), moves this
    /// node's connections to another node of its type if one serves (their gates hold their
    /// messages meanwhile; see [`BackendBuilder::on_hand_off_agent`]), then stops taking
    /// messages and waits for what was taken to be queued. Each part within `timeout`. With
    /// no other node of the type, its connections' gates bind them elsewhere on their next
    /// message.
    pub async fn stop(self, timeout: Duration) {
        let inner = &self.inner;
        inner.stop_svc.cancel();
        let _ = tokio::time::timeout(timeout, self.svc_done).await;
        // The server has dropped the subscription before any gate asks the queue group.
        inner.cluster.sync().await;
        inner.move_away(timeout).await;
        inner.stop.cancel();
        inner.tracker.close();
        let _ = tokio::time::timeout(timeout, inner.tracker.wait()).await;
        inner.cluster.flush_outgoing().await;
    }
}
