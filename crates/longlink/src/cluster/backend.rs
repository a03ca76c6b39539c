//! The backend node's side: connections held by gates elsewhere, their events and messages
//! delivered to local modules through the same processor and handlers as on a gate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::wire::{ToBackend, ToGate, now_micros};
use super::{Cluster, ClusterError};
use crate::agent::events::{EventHandler, EventSink};
use crate::agent::link::{ConnLink, LinkEvent};
use crate::agent::{Agent, Transport};
use crate::module::{Job, ModuleRef};
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

/// A connection held by another node's gate, as a backend's agent reaches it: every
/// write, close and uid or group change is a command to that gate.
struct RemoteConn {
    cluster: Cluster,
    /// The gate node holding the connection.
    gate: Arc<str>,
    /// The connection's id on that gate.
    conn: u64,
}

impl ConnLink for RemoteConn {
    fn tell(&self, _agent: &Agent, event: LinkEvent<'_>) {
        let conn = self.conn;
        let cmd = match event {
            LinkEvent::Push(msg) => ToGate::Push {
                conn,
                payload: msg.bytes().clone(),
            },
            LinkEvent::Close => ToGate::Close { conn },
            LinkEvent::Destroy => ToGate::Destroy { conn },
            LinkEvent::Uid(uid) => ToGate::Bind {
                conn,
                uid,
                at: now_micros(),
            },
            LinkEvent::Join(group) => ToGate::Join {
                conn,
                group: group.to_owned(),
            },
            LinkEvent::Leave(group) => ToGate::Leave {
                conn,
                group: group.to_owned(),
            },
        };
        self.cluster.send_to_gate(&self.gate, &cmd);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

impl Inner {
    async fn handle(&self, msg: async_nats::Message) {
        let reply = msg.reply.as_ref().map(|r| r.to_string());
        match ToBackend::decode(msg.payload) {
            Ok(ToBackend::Open {
                gate,
                conn,
                transport,
                local,
                remote,
            }) => {
                let transport = Transport::from_code(transport).unwrap_or_default();
                self.agent(&gate, conn, transport, addr(&local), addr(&remote))
                    .await;
                if let Some(reply) = reply {
                    self.cluster
                        .send(reply, None, Bytes::from(self.cluster.node_id().to_owned()));
                }
            }
            Ok(ToBackend::Msg {
                gate,
                conn,
                payload,
            }) => {
                let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
                let agent = self
                    .agent(&gate, conn, Transport::Tcp, unknown, unknown)
                    .await;
                self.deliver(&agent, payload, reply).await;
            }
            Ok(ToBackend::Close { gate, conn }) => {
                if let Some(agent) = self.forget(&gate, conn) {
                    self.closed(&agent).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "bad message from a gate dropped"),
        }
    }

    /// The agent for a gate's connection, made (and announced) on first sight.
    async fn agent(
        &self,
        gate: &str,
        conn: u64,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Agent {
        let known = |agents: &HashMap<Arc<str>, HashMap<u64, Agent>>| {
            agents.get(gate).and_then(|conns| conns.get(&conn)).cloned()
        };
        if let Some(agent) = known(&lock(&self.agents)) {
            return agent;
        }
        // Made once, and visible only after its open event is queued: the open and the
        // messages of one connection come through two subscriptions (two tasks).
        let _making = self.making.lock().await;
        if let Some(agent) = known(&lock(&self.agents)) {
            return agent;
        }
        let gate: Arc<str> = gate.into();
        let agent = Agent::remote(
            crate::agent::next_id(),
            transport,
            (local, remote),
            Arc::clone(self.router.codec()),
            Arc::new(RemoteConn {
                cluster: self.cluster.clone(),
                gate: Arc::clone(&gate),
                conn,
            }),
        );
        if let Some(events) = &self.on_new {
            events.send(&agent).await;
        }
        lock(&self.agents)
            .entry(gate)
            .or_default()
            .insert(conn, agent.clone());
        agent
    }

    /// Runs one forwarded message through the processor; acknowledges it once its module
    /// has handled it (or at once when nothing more is queued).
    async fn deliver(&self, agent: &Agent, payload: Bytes, reply: Option<String>) {
        let decoded = match self.router.decode(&payload) {
            Ok(d) => d,
            Err(e) => {
                // The gate decoded it with the same registry: a version mismatch.
                tracing::warn!(conn = agent.id(), error = %e, "forwarded message does not decode here");
                self.ack(reply);
                return;
            }
        };
        let mailbox = self.router.mailbox_of(&decoded);
        if let Some(pending) = self.router.dispatch(decoded, agent) {
            pending.send().await;
        }
        metrics::counter!("longlink_cluster_handled_total").increment(1);
        match (mailbox, reply) {
            (Some(mailbox), Some(reply)) => {
                let cluster = self.cluster.clone();
                let job = Job::untyped("cluster ack", move || {
                    cluster.send(reply, None, Bytes::new());
                });
                if let Err(job) = mailbox.send(job).await {
                    drop(job);
                    tracing::debug!("module stopped before acknowledging");
                }
            }
            (None, reply) => self.ack(reply),
            (Some(_), None) => {}
        }
    }

    /// Every third of `directory_ttl`: a gate whose "alive" key is missing three times in
    /// a row died without goodbye; its connections here are closed (close events run), so
    /// no module keeps users that are gone. While the directory cannot be read (NATS away),
    /// nothing is reaped.
    async fn reap_dead_gates(&self) {
        let every = self.cluster.config().directory_ttl / 3;
        let mut misses: HashMap<Arc<str>, u32> = HashMap::new();
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let Ok(store) = self.cluster.directory().await else {
                continue;
            };
            let gates: Vec<Arc<str>> = lock(&self.agents).keys().cloned().collect();
            misses.retain(|g, _| gates.contains(g));
            for gate in gates {
                match store.get(super::subjects::node_key(&gate)).await {
                    Ok(Some(_)) => {
                        misses.remove(&gate);
                    }
                    Ok(None) => {
                        let n = misses.entry(Arc::clone(&gate)).or_insert(0);
                        *n += 1;
                        if *n >= 3 {
                            misses.remove(&gate);
                            self.reap(&gate).await;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
    }

    async fn reap(&self, gate: &Arc<str>) {
        let gone = lock(&self.agents).remove(gate).unwrap_or_default();
        tracing::warn!(gate = %gate, connections = gone.len(), "gate node gone without goodbye; closing its connections here");
        for agent in gone.values() {
            self.closed(agent).await;
        }
    }

    /// Removes a gate's connection (and the gate, with its last connection).
    fn forget(&self, gate: &str, conn: u64) -> Option<Agent> {
        let mut agents = lock(&self.agents);
        let conns = agents.get_mut(gate)?;
        let agent = conns.remove(&conn);
        if conns.is_empty() {
            agents.remove(gate);
        }
        agent
    }

    /// A gate's connection is gone (closed, or its gate died): the close event runs.
    async fn closed(&self, agent: &Agent) {
        agent.mark_remote_closed();
        if let Some(events) = &self.on_close {
            events.send(agent).await;
        }
    }

    fn ack(&self, reply: Option<String>) {
        if let Some(reply) = reply {
            self.cluster.send(reply, None, Bytes::new());
        }
    }
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
