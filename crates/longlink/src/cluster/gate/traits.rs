//! What the gate layer and its agents call on a [`GateLink`]: [`ClusterLink`], [`ConnLink`]
//! and [`Forwarder`], each a thin call into the link's own files.

use std::sync::Arc;

use bytes::Bytes;
use longlink_wire::resume::RefuseReason;

use super::GateLink;
use crate::agent::Agent;
use crate::agent::link::{ConnLink, LinkEvent};
use crate::gate::link::{BoxFuture, ClusterLink, Taken};
use crate::processor::{ForwardWait, Forwarder};

impl ClusterLink for GateLink {
    fn conn_link(self: Arc<Self>) -> Arc<dyn ConnLink> {
        self
    }

    fn forwarder(self: Arc<Self>) -> Arc<dyn Forwarder> {
        self
    }

    fn opened<'a>(&'a self, agent: &'a Agent) -> BoxFuture<'a, ()> {
        Box::pin(self.bind_all(agent))
    }

    fn closed(&self, agent: &Agent) {
        self.feed.gone(agent.id());
        self.forget(agent);
    }

    fn settle(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.settle_forwards())
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.finish())
    }

    fn node_id(&self) -> &str {
        self.cluster.node_id()
    }

    fn take_session<'a>(
        &'a self,
        holder: &'a str,
        token: &'a str,
        last_seq: u64,
        agent: &'a Agent,
    ) -> BoxFuture<'a, Result<Taken, RefuseReason>> {
        Box::pin(self.take(holder, token, last_seq, agent))
    }

    fn give_up_handover(&self, conn: u64) -> BoxFuture<'_, ()> {
        Box::pin(self.give_up_transfers_of(conn))
    }

    fn others_alive(&self) -> BoxFuture<'_, bool> {
        Box::pin(self.other_gate_lives())
    }
}

impl ConnLink for GateLink {
    fn tell(&self, agent: &Agent, event: LinkEvent<'_>) {
        match event {
            LinkEvent::Uid(uid) => self.bind_uid(agent, uid, crate::cluster::wire::now_micros()),
            // Group membership is the gate's own (the gate's link keeps it); and the
            // connection is here: the agent writes and closes it itself.
            LinkEvent::Join(_)
            | LinkEvent::Leave(_)
            | LinkEvent::Push(_)
            | LinkEvent::Close
            | LinkEvent::Destroy => {}
        }
    }

    fn address(&self, agent: &Agent) -> Option<(Arc<str>, u64)> {
        Some((self.cluster.node_id().into(), agent.id()))
    }
}

impl Forwarder for GateLink {
    fn forward(
        &self,
        agent: &Agent,
        node_type: &Arc<str>,
        name: &Arc<str>,
        payload: Bytes,
    ) -> Option<ForwardWait> {
        self.forward_one(agent, node_type, name, payload)
    }
}
