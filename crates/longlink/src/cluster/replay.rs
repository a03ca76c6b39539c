//! A node's answers to gates that missed some of its group broadcasts or commands
//! (`P.replay.<node>`): what it still keeps of them (`groupseq`), after the number the gate
//! names; and the gates' reports of the commands they have applied (`P.delivered.<node>`),
//! which it then keeps no longer.

use std::sync::{Arc, Weak};

use async_nats::Message;
use futures_util::StreamExt;

use super::wire::ReplayRequest;
use super::{Cluster, Inner};

/// Serves this node's replay and delivered subjects until its last handle is dropped.
/// Subscribed at once (and again after every reconnection, by the NATS client).
pub(super) fn serve(cluster: &Cluster) {
    let replay = cluster.subjects().replay(cluster.node_id());
    serve_subject(cluster, replay, |inner, client, msg| async move {
        let Some(reply) = msg.reply else { return };
        let Ok(request) = ReplayRequest::decode(msg.payload) else {
            return tracing::warn!("bad replay request dropped");
        };
        let answer = inner.group_seq.replay(&request);
        // Straight to the client: the answer is not ordered with this node's publishes
        // (the gate orders by number).
        let _ = client.publish(reply, answer.encode()).await;
    });
    let delivered = cluster.subjects().delivered(cluster.node_id());
    serve_subject(cluster, delivered, |inner, _, msg| async move {
        match ReplayRequest::decode(msg.payload) {
            Ok(report) => inner.group_seq.delivered(&report),
            Err(_) => tracing::warn!("bad delivery report dropped"),
        }
    });
}

/// Runs `handle` on every message of `subject`, in turn, until the node closes.
fn serve_subject<F, Fut>(cluster: &Cluster, subject: String, handle: F)
where
    F: Fn(Arc<Inner>, async_nats::Client, Message) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let inner: Weak<Inner> = Arc::downgrade(&cluster.inner);
    let closed = cluster.inner.closed.clone();
    let client = cluster.nats().clone();
    tokio::spawn(async move {
        let mut sub = match client.subscribe(subject.clone()).await {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(error = %e, subject, "cannot serve what gates ask of this node");
                return;
            }
        };
        loop {
            let msg = tokio::select! {
                _ = closed.cancelled() => break,
                msg = sub.next() => match msg { Some(m) => m, None => break },
            };
            let Some(inner) = inner.upgrade() else { break };
            handle(inner, client.clone(), msg).await;
        }
        let _ = sub.unsubscribe().await;
    });
}
