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

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{GateLink, lock};
use crate::cluster::ClusterError;
use crate::cluster::wire::{Adopt, AgentState, ToBackend};

/// How many connections one gate moves at once; the others' messages wait meanwhile.
pub(super) const AT_ONCE: usize = 64;

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
        c.send_batched(c.subjects().node(node), None, close.encode());
    }
}
