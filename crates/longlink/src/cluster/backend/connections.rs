//! The agents a backend holds for connections on gates elsewhere, and what it does with
//! their events and messages.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::{Inner, lock};
use crate::agent::events::EventSink;
use crate::agent::link::{ConnLink, LinkEvent};
use crate::agent::{Agent, Transport};
use crate::cluster::Cluster;
use crate::cluster::wire::{ToBackend, ToGate, batch, now_micros};
use crate::metrics::CachedCounter;
use crate::module::Handled;

/// A connection held by another node's gate, as a backend's agent reaches it: every
/// write, close and uid or group change is a command to that gate.
struct RemoteConn {
    cluster: Cluster,
    /// The gate node holding the connection, and the connection's id there (they change
    /// when its session is resumed on another gate).
    at: std::sync::Mutex<(Arc<str>, u64)>,
    /// The connection moved to another node: only writes still go to its gate.
    detached: AtomicBool,
}

impl ConnLink for RemoteConn {
    fn retarget(&self, gate: &str, conn: u64) {
        *lock(&self.at) = (gate.into(), conn);
    }

    fn detach(&self) {
        self.detached.store(true, Ordering::Release);
    }

    fn address(&self, _agent: &Agent) -> Option<(Arc<str>, u64)> {
        Some(lock(&self.at).clone())
    }

    fn tell(&self, _agent: &Agent, event: LinkEvent<'_>) {
        if self.detached.load(Ordering::Acquire) && !matches!(event, LinkEvent::Push(_)) {
            return;
        }
        let (gate, conn) = lock(&self.at).clone();
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
        self.cluster.command_gate(gate, cmd);
    }
}

/// Where a forwarded message's "handled" goes.
enum Ack {
    /// An older gate's message (`ToBackend::Msg`): its reply subject.
    Reply(String),
    /// `ToBackend::Forward`: its gate, as `ToGate::Handled`, after what the handler wrote.
    Gate { gate: Arc<str>, seq: u64 },
}

impl Ack {
    /// Sends it; a gate's is kept for 4 `request_timeout`s, for the gate to ask again
    /// (`ToBackend::Acked`) if it missed it in a NATS outage.
    fn send(self, inner: &Inner) {
        let cluster = &inner.cluster;
        match self {
            Ack::Reply(reply) => cluster.send(reply, None, Bytes::new()),
            Ack::Gate { gate, seq } => {
                inner
                    .acks
                    .sent(&gate, seq, cluster.config().request_timeout * 4);
                cluster.command_gate(gate, ToGate::Handled { seq });
            }
        }
    }
}

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

impl Inner {
    /// One NATS message from a gate: one envelope (with the message's reply subject), or a
    /// batch of them, each handled in order. A batch's reply subject is for NATS's "no
    /// responders" only: its items are acknowledged to their gates (`ToGate::Handled`).
    pub(super) async fn handle_all(self: &Arc<Self>, msg: async_nats::Message) {
        let batched = msg.payload.first() == Some(&batch::BATCH);
        let mut reply = msg
            .reply
            .as_ref()
            .filter(|_| !batched)
            .map(|r| r.to_string());
        let items = match batch::items(msg.payload) {
            Ok(items) => items,
            Err(e) => return tracing::warn!(error = %e, "bad messages from a gate dropped"),
        };
        for item in items {
            match item {
                Ok(item) => self.handle(item, reply.take()).await,
                Err(e) => tracing::warn!(error = %e, "bad message from a gate dropped"),
            }
        }
    }

    async fn handle(self: &Arc<Self>, payload: Bytes, reply: Option<String>) {
        match ToBackend::decode(payload) {
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
                self.ack_with_id(reply);
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
                self.deliver(&agent, payload, reply.map(Ack::Reply)).await;
            }
            Ok(ToBackend::Forward {
                gate,
                conn,
                seq,
                payload,
            }) => {
                // The gate's name as the agents map holds it, shared by its acknowledgements.
                let (gate, agent) = match self.known_at(&gate, conn) {
                    Some(known) => known,
                    None => {
                        let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
                        let agent = self
                            .agent(&gate, conn, Transport::Tcp, unknown, unknown)
                            .await;
                        (gate.into(), agent)
                    }
                };
                self.deliver(&agent, payload, Some(Ack::Gate { gate, seq }))
                    .await;
            }
            Ok(ToBackend::Close { gate, conn }) => {
                if let Some(agent) = self.forget(&gate, conn) {
                    self.closed(&agent).await;
                }
            }
            Ok(ToBackend::Rebind {
                gate,
                conn,
                to_gate,
                to_conn,
                transport,
                local,
                remote,
            }) => {
                // The same agent goes on (no close event, no new one), reaching its new gate.
                if let Some(agent) = self.forget(&gate, conn) {
                    agent.retarget(&to_gate, to_conn);
                    let transport = Transport::from_code(transport).unwrap_or_default();
                    agent.set_socket(transport, (addr(&local), addr(&remote)));
                    tracing::debug!(gate, conn, to_conn, "connection moved to another gate");
                    self.rebound(&to_gate, to_conn, agent);
                }
                // Through the ordered publisher: after every write to the old gate.
                self.ack(reply);
            }
            Ok(ToBackend::HandOff { gate, conn }) => self.hand_off(&gate, conn, reply).await,
            Ok(ToBackend::Adopt(adopt)) => self.adopt(adopt, reply).await,
            Ok(ToBackend::Probe) => self.ack_with_id(reply),
            Ok(ToBackend::Acked { gate }) => {
                if let Some(reply) = reply {
                    self.cluster.send(reply, None, self.acks.of(&gate));
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
        if let Some(agent) = self.known(gate, conn) {
            return agent;
        }
        let made = self.make(
            gate,
            conn,
            transport,
            (local, remote),
            |_| {},
            self.on_new.as_ref(),
        );
        made.await
    }

    /// As [`known`](Self::known), with the gate's name as the map holds it.
    fn known_at(&self, gate: &str, conn: u64) -> Option<(Arc<str>, Agent)> {
        let agents = lock(&self.agents);
        let (gate, conns) = agents.get_key_value(gate)?;
        Some((Arc::clone(gate), conns.get(&conn)?.clone()))
    }

    pub(super) fn known(&self, gate: &str, conn: u64) -> Option<Agent> {
        lock(&self.agents)
            .get(gate)
            .and_then(|conns| conns.get(&conn))
            .cloned()
    }

    /// Makes the agent for a gate's connection unless it is known: `prepare` gives it its
    /// state, `event` (if any) is queued, and only then is it visible. Made once: the open
    /// and the messages of one connection come through two subscriptions (two tasks).
    pub(super) async fn make(
        &self,
        gate: &str,
        conn: u64,
        transport: Transport,
        addrs: (SocketAddr, SocketAddr),
        prepare: impl FnOnce(&Agent),
        event: Option<&EventSink>,
    ) -> Agent {
        let _making = self.making.lock().await;
        if let Some(agent) = self.known(gate, conn) {
            return agent;
        }
        // One `Arc` per gate, shared by all of its connections here (a new one for each
        // connection was 32 bytes more in every one of them).
        let gate: Arc<str> = lock(&self.agents)
            .get_key_value(gate)
            .map_or_else(|| gate.into(), |(name, _)| Arc::clone(name));
        let agent = Agent::remote(
            crate::agent::next_id(),
            transport,
            addrs,
            Arc::clone(self.router.codec()),
            Arc::new(RemoteConn {
                cluster: self.cluster.clone(),
                at: std::sync::Mutex::new((Arc::clone(&gate), conn)),
                detached: AtomicBool::new(false),
            }),
        );
        prepare(&agent);
        if let Some(events) = event {
            events.send(&agent).await;
        }
        lock(&self.agents)
            .entry(gate)
            .or_default()
            .insert(conn, agent.clone());
        agent
    }

    /// Runs one forwarded message through the processor; acknowledges it once it has been
    /// handled: by its module, and by the callbacks of the background work its handler
    /// started there (a private message pushed through the directory, say). A message that
    /// is dropped (its module stopped) is not acknowledged: the gate answers its sender with
    /// an error.
    async fn deliver(self: &Arc<Self>, agent: &Agent, payload: Bytes, ack: Option<Ack>) {
        let decoded = match self.router.decode(&payload) {
            Ok(d) => d,
            Err(e) => {
                // The gate decoded it with the same registry: a version mismatch.
                tracing::warn!(conn = agent.id(), error = %e, "forwarded message does not decode here");
                if let Some(ack) = ack {
                    ack.send(self);
                }
                return;
            }
        };
        let handled = ack.map(|ack| {
            let inner = Arc::clone(self);
            Handled::new(move || ack.send(&inner))
        });
        let decoded_at = std::time::Instant::now();
        if let Some(pending) = self
            .router
            .dispatch_handled(decoded, agent, decoded_at, handled)
        {
            pending.send().await;
        }
        static HANDLED: CachedCounter = CachedCounter::new("longlink_cluster_handled_total");
        HANDLED.increment(1);
    }

    /// Every third of `directory_ttl`: a gate whose "alive" key is missing three times in
    /// a row died without goodbye; its connections here are closed (close events run), so
    /// no module keeps users that are gone. While the directory cannot be read (NATS away),
    /// nothing is reaped.
    pub(super) async fn reap_dead_gates(&self) {
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
                match store.get(crate::cluster::subjects::node_key(&gate)).await {
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

    pub(super) async fn reap(&self, gate: &Arc<str>) {
        let gone = lock(&self.agents).remove(gate).unwrap_or_default();
        tracing::warn!(gate = %gate, connections = gone.len(), "gate node gone without goodbye; closing its connections here");
        for agent in gone.values() {
            self.closed(agent).await;
        }
    }

    /// Removes a gate's connection (and the gate, with its last connection).
    pub(super) fn forget(&self, gate: &str, conn: u64) -> Option<Agent> {
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

    pub(super) fn ack(&self, reply: Option<String>) {
        if let Some(reply) = reply {
            self.cluster.send(reply, None, Bytes::new());
        }
    }
}
