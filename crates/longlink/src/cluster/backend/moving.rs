//! A stopping backend node's connections moving to another node of its type, and the
//! other side: adopting a connection that moves here (see `cluster/gate/moving.rs` for the
//! gate's part, which drives each move).
//!
//! Stopping, the node leaves its type's queue group first (no new connection, no adoption
//! comes here), checks that another node of the type serves (else its connections end here,
//! as they always did), and asks the gates to move each of its connections. Each gate holds
//! that connection's messages and asks this node to hand it off, in order after what it
//! sent before: the hand-off hook runs after those messages on its module, then the node
//! answers with the connection's uid and user data (serialized, when its type is
//! registered). The node stops once every connection has gone, or when its stop's time is up.
//! A connection whose session moves to another gate meanwhile (`ToBackend::Rebind`) is
//! asked for again, of the gate it is on now: the gate it left does not move it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::connections::addr;
use super::{Inner, lock};
use crate::agent::{Agent, Transport};
use crate::cluster::subjects::node_key;
use crate::cluster::wire::{Adopt, AgentState, ToBackend, ToGate};
use crate::module::Job;

impl Inner {
    /// The stop's first part: moves this node's connections to another node of its type,
    /// if one serves, within `timeout`. Its queue-group subscription is already gone.
    pub(super) async fn move_away(&self, timeout: Duration) {
        self.reap_gone_gates().await;
        let conns: Vec<(Arc<str>, u64)> = lock(&self.agents)
            .iter()
            .flat_map(|(gate, conns)| conns.keys().map(|c| (Arc::clone(gate), *c)))
            .collect();
        if conns.is_empty() {
            return;
        }
        let c = &self.cluster;
        let probe = ToBackend::Probe.encode();
        if let Err(e) = c
            .request_in_order(c.subjects().svc(&self.node_type), &self.node_type, probe)
            .await
        {
            tracing::info!(node_type = %self.node_type, error = %e, connections = conns.len(), "no other node of this type; its connections end here");
            return;
        }
        // Those rebound to another gate from now on are asked for there (`rebound`).
        let conns: Vec<(Arc<str>, u64)> = {
            let agents = lock(&self.agents);
            self.moving.store(true, Ordering::Release);
            agents
                .iter()
                .flat_map(|(gate, conns)| conns.keys().map(|c| (Arc::clone(gate), *c)))
                .collect()
        };
        tracing::info!(node_type = %self.node_type, connections = conns.len(), "moving connections to other nodes of this type");
        for (gate, conn) in &conns {
            self.ask_to_move(gate, *conn);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while lock(&self.agents).values().any(|conns| !conns.is_empty()) {
            if tokio::time::Instant::now() >= deadline {
                let left: usize = lock(&self.agents).values().map(|c| c.len()).sum();
                tracing::warn!(
                    connections = left,
                    "connections not moved in time; they end here"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Asks `gate` to move its connection `conn` away from this node.
    fn ask_to_move(&self, gate: &str, conn: u64) {
        let c = &self.cluster;
        let ask = ToGate::Move {
            conn,
            node_type: self.node_type.to_string(),
            from: c.node_id().to_owned(),
        };
        c.send_to_gate(gate, &ask);
    }

    /// A connection here is reached at `gate`'s `conn` from now on (its session moved to
    /// that gate): `agent` is kept under it, and, if this node's connections are moving
    /// away, that gate is asked to move it (the one it left has not, or no longer can).
    pub(super) fn rebound(&self, gate: &str, conn: u64, agent: Agent) {
        let moving = {
            let mut agents = lock(&self.agents);
            agents.entry(gate.into()).or_default().insert(conn, agent);
            self.moving.load(Ordering::Acquire)
        };
        if moving {
            tracing::debug!(
                gate,
                conn,
                "a moving connection went to another gate: asked for there"
            );
            self.ask_to_move(gate, conn);
        }
    }

    /// Closes the connections of gates whose "alive" key is gone from the directory: no
    /// gate would move them, and the stop would wait for them in vain. While the directory
    /// cannot be read, nothing is closed.
    async fn reap_gone_gates(&self) {
        let Ok(store) = self.cluster.directory().await else {
            return;
        };
        let gates: Vec<Arc<str>> = lock(&self.agents).keys().cloned().collect();
        let timeout = self.cluster.config().request_timeout;
        for gate in gates {
            let alive = tokio::time::timeout(timeout, store.get(node_key(&gate))).await;
            if let Ok(Ok(None)) = alive {
                self.reap(&gate).await;
            }
        }
    }

    /// A gate asks for one of its connections (in order after its messages): the hand-off
    /// hook (or, without one, the close event) is queued now, after those messages, and the
    /// answer (the connection's state) goes once it has run. Empty if it is not held here.
    pub(super) async fn hand_off(self: &Arc<Self>, gate: &str, conn: u64, reply: Option<String>) {
        let Some(reply) = reply else {
            return;
        };
        let Some(agent) = self.forget(gate, conn) else {
            self.cluster.send(reply, None, Bytes::new());
            return;
        };
        // Whatever the application does with it from now on (leaving its groups, logging it
        // out) is its own bookkeeping: the gate keeps them for the new node.
        agent.detach();
        let events = self.on_hand_off.as_ref().or(self.on_close.as_ref());
        // The uid as the connection's messages before left it: read after them, before the
        // hook (which may log the agent out of the module's own sessions).
        let uid = Arc::new(AtomicU64::new(agent.uid().unwrap_or(0)));
        let ran = match events {
            Some(events) => {
                let (seen, a) = (Arc::clone(&uid), agent.clone());
                let read_uid = Job::untyped("hand-off uid", move || {
                    seen.store(a.uid().unwrap_or(0), Ordering::Relaxed);
                });
                let _ = events.mailbox().send(read_uid).await;
                events.send(&agent).await;
                let (done, ran) = tokio::sync::oneshot::channel();
                let job = Job::untyped("hand-off done", move || {
                    let _ = done.send(());
                });
                let _ = events.mailbox().send(job).await;
                Some(ran)
            }
            None => None,
        };
        let inner = Arc::clone(self);
        self.tracker.spawn(async move {
            if let Some(ran) = ran {
                let _ = ran.await;
            }
            let state = inner.state_of(&agent, uid.load(Ordering::Relaxed));
            inner.cluster.send(reply, None, state.encode());
        });
    }

    /// The connection's uid and user data, as they move.
    fn state_of(&self, agent: &Agent, uid: u64) -> AgentState {
        let user_data = self.user_data.as_ref().and_then(|codec| {
            match (codec.save)(agent)? {
                Ok(bytes) => Some(Bytes::from(bytes)),
                Err(e) => {
                    tracing::warn!(conn = agent.id(), error = %e, "user data not serialized; it does not move");
                    None
                }
            }
        });
        AgentState { uid, user_data }
    }

    /// A gate's connection moves here: its agent is made with its uid and user data, and the
    /// adopt hook (or, without one, the new-connection event) is queued before any of its
    /// messages. The answer is this node's id.
    pub(super) async fn adopt(&self, adopt: Adopt, reply: Option<String>) {
        let Adopt {
            gate,
            conn,
            transport,
            local,
            remote,
            state,
        } = adopt;
        let transport = Transport::from_code(transport).unwrap_or_default();
        let prepare = |agent: &Agent| {
            agent.store_uid(state.uid);
            if let (Some(bytes), Some(codec)) = (&state.user_data, &self.user_data)
                && let Err(e) = (codec.restore)(agent, bytes)
            {
                tracing::warn!(conn = agent.id(), error = %e, "moved user data does not deserialize here");
            }
        };
        let event = self.on_adopt.as_ref().or(self.on_new.as_ref());
        let addrs = (addr(&local), addr(&remote));
        self.make(&gate, conn, transport, addrs, prepare, event)
            .await;
        tracing::debug!(gate, conn, "connection adopted");
        self.ack_with_id(reply);
    }

    pub(super) fn ack_with_id(&self, reply: Option<String>) {
        if let Some(reply) = reply {
            let id = Bytes::from(self.cluster.node_id().to_owned());
            self.cluster.send(reply, None, id);
        }
    }
}
