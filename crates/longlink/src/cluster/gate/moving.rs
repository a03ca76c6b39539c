//! A connection's binding moving from a stopping backend node to another node of its type.
//!
//! The stopping node first leaves its type's queue group, then asks each gate to move each
//! of its connections (`ToGate::Move`). The gate holds the connection's messages for that
//! type (they wait in `forward`, in order) and asks the stopping node, in order after what
//! it forwarded there before, to hand the connection off (`ToBackend::HandOff`): that node
//! handles those messages, runs the application's hand-off hook, and answers with the
//! connection's state (its uid and serialized user data). The gate gives that state to any
//! other node of the type (`ToBackend::Adopt` on the queue group), binds the connection to
//! the node that adopted it, and lets the held messages go there.
//!
//! A move that fails (the stopping node does not answer, or no other node adopts) unbinds
//! the connection: its next message binds afresh, as after a node that is gone, and its
//! state on the stopping node is lost.
//!
//! A connection whose session moves to another gate meanwhile (`handover`) is parked on
//! both gates for the hand-over's time: the holder first lets a move under way end (the
//! bindings it offers are then the new node's), and a move asked for while parked waits
//! until the hand-over ends. Handed over, the connection is the new gate's: the stopping
//! node, told to reach it there (`ToBackend::Rebind`), asks the new gate to move it, and
//! that gate starts the move once it holds the session. A hand-over that fails leaves the
//! holder to start the moves that waited.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{GateLink, lock};
use crate::cluster::ClusterError;
use crate::cluster::wire::{Adopt, AgentState, ToBackend};

/// How many connections one gate moves at once; the others' messages wait meanwhile.
pub(super) const AT_ONCE: usize = 64;

/// The moves asked for a parked connection: (node type, the stopping node), in order.
pub(super) type Waiting = Vec<(Arc<str>, String)>;

/// Lets a moving connection's held messages go, whichever way the move ends.
struct Release<'a> {
    link: &'a GateLink,
    key: (u64, Arc<str>),
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if let Some(released) = lock(&self.link.held).remove(&self.key) {
            released.cancel();
        }
    }
}

impl GateLink {
    /// Node `from` is stopping: moves connection `conn`'s binding of `node_type` elsewhere
    /// if it is bound there; if not, `from` holds a connection this gate no longer sends
    /// there, and is told it closed.
    pub(super) fn start_move(&self, conn: u64, node_type: &str, from: &str) {
        let Some(ty) = self.types.iter().find(|t| ***t == *node_type).cloned() else {
            return;
        };
        let released = CancellationToken::new();
        {
            let bindings = lock(&self.bindings);
            if let Some(waiting) = lock(&self.parked).get_mut(&conn) {
                waiting.push((ty, from.to_owned()));
                return;
            }
            let bound_there = bindings
                .get(&conn)
                .and_then(|b| b.get(&ty))
                .is_some_and(|node| **node == *from);
            if !bound_there {
                drop(bindings);
                self.tell_closed(from, conn);
                return;
            }
            let mut held = lock(&self.held);
            if held.contains_key(&(conn, Arc::clone(&ty))) {
                return;
            }
            // From here on, `forward` holds the connection's messages of this type.
            held.insert((conn, Arc::clone(&ty)), released);
        }
        let Some(link) = self.me.upgrade() else {
            return;
        };
        let from = from.to_owned();
        tokio::spawn(async move { link.move_conn(conn, ty, from).await });
    }

    /// The holder's side of a hand-over of `conn`: waits (within `request_timeout`) for the
    /// moves of its bindings under way to end, then parks it. `false` if they did not end.
    pub(super) async fn park_after_moves(&self, conn: u64) -> bool {
        let deadline = tokio::time::Instant::now() + self.cluster.config().request_timeout;
        loop {
            let moving = {
                let _bindings = lock(&self.bindings);
                let held = lock(&self.held);
                let moving = held.iter().find(|((c, _), _)| *c == conn);
                match moving {
                    Some((_, released)) => released.clone(),
                    None => {
                        lock(&self.parked).entry(conn).or_default();
                        return true;
                    }
                }
            };
            if tokio::time::timeout_at(deadline, moving.cancelled())
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    /// The new gate's side of a hand-over: its connection `conn` is parked from now on.
    pub(super) fn park(&self, conn: u64) {
        let _bindings = lock(&self.bindings);
        lock(&self.parked).entry(conn).or_default();
    }

    /// The hand-over of `conn` ended: the moves asked for meanwhile start if `start` (the
    /// connection is bound here, as before or as it came), else the stopping nodes ask
    /// again where it is now.
    pub(super) fn unpark(&self, conn: u64, start: bool) {
        let waiting = {
            let _bindings = lock(&self.bindings);
            lock(&self.parked).remove(&conn).unwrap_or_default()
        };
        if start {
            for (ty, from) in waiting {
                self.start_move(conn, &ty, &from);
            }
        }
    }

    async fn move_conn(&self, conn: u64, ty: Arc<str>, from: String) {
        let _release = Release {
            link: self,
            key: (conn, Arc::clone(&ty)),
        };
        let moved = match self.moves.acquire().await {
            Ok(_permit) => self.adopt_elsewhere(conn, &ty, &from).await,
            Err(_) => Err(ClusterError::Nats("gate stopping".into())),
        };
        let mut bindings = lock(&self.bindings);
        match (moved, bindings.get_mut(&conn)) {
            (Ok(node), Some(bound)) => {
                tracing::debug!(conn, node_type = %ty, from = %from, to = %node, "connection moved to another node");
                metrics::counter!("longlink_cluster_moved_total").increment(1);
                bound.insert(ty, node);
            }
            (Ok(node), None) => {
                // It closed (or its session went to another gate) while it moved.
                drop(bindings);
                self.tell_closed(&node, conn);
            }
            (Err(e), bound) => {
                let why = "connection not moved; it binds afresh on its next message";
                match self.agent(conn) {
                    Some(agent) => {
                        crate::agent::logged::conn_event!(WARN, agent, node_type = %ty, from = %from, error = %e, "{why}")
                    }
                    None => {
                        tracing::warn!(id = conn, node_type = %ty, from = %from, error = %e, "{why}")
                    }
                }
                if let Some(bound) = bound.filter(|b| b.get(&ty).is_some_and(|n| **n == *from)) {
                    bound.remove(&ty);
                }
            }
        }
    }

    /// Asks `from` for the connection's state (after the messages sent there before), then
    /// any other node of the type to adopt it; the node that did.
    async fn adopt_elsewhere(
        &self,
        conn: u64,
        ty: &Arc<str>,
        from: &str,
    ) -> Result<Arc<str>, ClusterError> {
        let c = &self.cluster;
        let gate = c.node_id().to_owned();
        let hand_off = ToBackend::HandOff {
            gate: gate.clone(),
            conn,
        };
        let state = c
            .request_in_order(c.subjects().node(from), from, hand_off.encode())
            .await?;
        if state.is_empty() {
            return Err(ClusterError::Remote(format!(
                "node {from} does not hold the connection"
            )));
        }
        let state = AgentState::decode(state).map_err(|e| ClusterError::Codec(e.to_string()))?;
        let agent = self
            .agent(conn)
            .ok_or_else(|| ClusterError::Remote("the connection closed".into()))?;
        let adopt = ToBackend::Adopt(Adopt {
            gate,
            conn,
            transport: agent.transport().code(),
            local: agent.local_addr().to_string(),
            remote: agent.remote_addr().to_string(),
            state,
        });
        let node = c
            .request_in_order(c.subjects().svc(ty), ty, adopt.encode())
            .await?;
        Ok(String::from_utf8_lossy(&node).into())
    }

    /// Tells `node` that connection `conn` closed (it runs the close event, if it holds it).
    fn tell_closed(&self, node: &str, conn: u64) {
        let c = &self.cluster;
        let close = ToBackend::Close {
            gate: c.node_id().to_owned(),
            conn,
        };
        c.send_batched(c.subjects().node(node), close.encode());
    }
}
