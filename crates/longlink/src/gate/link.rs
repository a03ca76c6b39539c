//! What a gate asks of a cluster it is in. The gate knows nothing of NATS: the cluster layer
//! (above) implements [`ClusterLink`] and hands the builder a `ClusterSetup` (in `builder`;
//! [`GateBuilder::cluster`](super::GateBuilder::cluster) is defined there).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use longlink_wire::resume::RefuseReason;

use crate::agent::Agent;
use crate::agent::link::ConnLink;
use crate::processor::Forwarder;

/// A boxed future, for the trait's async steps.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The cluster's side of one gate, in the order the gate uses it.
pub(crate) trait ClusterLink: Send + Sync {
    /// How the gate's agents tell the cluster of uid and group changes.
    fn conn_link(self: Arc<Self>) -> Arc<dyn ConnLink>;
    /// Where forwarded message types go.
    fn forwarder(self: Arc<Self>) -> Arc<dyn Forwarder>;
    /// A connection opened (before its first message is read).
    fn opened<'a>(&'a self, agent: &'a Agent) -> BoxFuture<'a, ()>;
    /// A connection closed (its socket is gone).
    fn closed(&self, agent: &Agent);
    /// Returns once every forwarded message has been answered or has failed.
    fn settle(&self) -> BoxFuture<'_, ()>;
    /// The last step of the gate's stop, after its connections are closed.
    fn stop(&self) -> BoxFuture<'_, ()>;
    /// This node's id: a resume token names the gate that holds its session.
    fn node_id(&self) -> &str;
    /// Takes over the session of `token` from the gate `holder` (another node) for `agent`,
    /// a new agent of this gate that will serve it: the cluster's side of it (the backends'
    /// bindings, the uid, the groups) moves to `agent`; the session's numbering and kept
    /// messages are returned.
    fn take_session<'a>(
        &'a self,
        holder: &'a str,
        token: &'a str,
        last_seq: u64,
        agent: &'a Agent,
    ) -> BoxFuture<'a, Result<Taken, RefuseReason>>;
    /// A socket is about to claim the session of agent `conn` (a resume, here or from another
    /// gate): a hand-over of it to another gate still under way is given up first (the
    /// latest resume wins, and its claim does not wait for the older one's deadline).
    fn give_up_handover(&self, conn: u64) -> BoxFuture<'_, ()> {
        let _ = conn;
        Box::pin(async {})
    }
    /// The gate is stopping with resumable sessions to hand over: whether another gate
    /// lives to take them (`true` when the cluster cannot tell). The cluster hears that
    /// this gate takes no session from now on.
    fn others_alive(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }
}

/// A session taken over from another gate: where its numbering stands.
pub(crate) struct Taken {
    /// The client messages the former gate handled.
    pub(crate) in_seq: u64,
    /// The messages the client has not acknowledged, numbered from its `last_seq + 1`.
    pub(crate) kept: Vec<bytes::Bytes>,
    /// The user data the former gate's modules gave the session (`user_data`), serialized.
    pub(crate) user_data: Option<bytes::Bytes>,
}
