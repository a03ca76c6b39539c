//! A node's answers to gates that missed some of its group broadcasts (`P.replay.<node>`):
//! what it still keeps of them (`groupseq`), after the number the gate names.

use std::sync::Arc;

use futures_util::StreamExt;

use super::Cluster;
use super::wire::ReplayRequest;

/// Serves this node's replay subject until its last handle is dropped. Subscribed at once
/// (and again after every reconnection, by the NATS client).
pub(super) fn serve(cluster: &Cluster) {
    let inner = Arc::downgrade(&cluster.inner);
    let closed = cluster.inner.closed.clone();
    let client = cluster.nats().clone();
    let subject = cluster.subjects().replay(cluster.node_id());
    tokio::spawn(async move {
        let mut sub = match client.subscribe(subject.clone()).await {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(error = %e, subject, "cannot serve group broadcasts again");
                return;
            }
        };
        loop {
            let msg = tokio::select! {
                _ = closed.cancelled() => break,
                msg = sub.next() => match msg { Some(m) => m, None => break },
            };
            let (Some(inner), Some(reply)) = (inner.upgrade(), msg.reply) else {
                continue;
            };
            let Ok(request) = ReplayRequest::decode(msg.payload) else {
                tracing::warn!("bad replay request dropped");
                continue;
            };
            let answer = inner.group_seq.replay(&request);
            // Straight to the client: the answer is not ordered with this node's publishes
            // (the gate orders by number).
            let _ = client.publish(reply, answer.encode()).await;
        }
        let _ = sub.unsubscribe().await;
    });
}
