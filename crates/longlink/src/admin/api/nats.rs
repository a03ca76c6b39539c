//! The server API over NATS request/reply, for services that already talk NATS: a request on
//! `<subject_prefix>.api.push`, `.broadcast`, `.kick`, `.online`, `.stats`, `.batch` with the HTTP
//! API's JSON body (`.online` takes `{"uid": 42}`) gets the HTTP API's JSON answer, or
//! `{"error": reason}` (with the status the HTTP API would give as `"status"`). One node of
//! the cluster (a queue group) answers each request, for the whole cluster:
//!
//! ```text
//! nats req longlink.api.push '{"uid": 42, "message": {"S2C_Message": {"text": "your order shipped"}}}'
//! ```
//!
//! Every node also answers `<subject_prefix>.api.node_stats` (no queue group) with its own
//! numbers, which `stats` and the live page gather: with or without `api_key`, as they are
//! the counts the page shows.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Api, ApiError, NodeStats};
use crate::cluster::Cluster;

/// The operations served, by the last token of their subject.
const OPS: [&str; 6] = ["push", "broadcast", "kick", "online", "stats", "batch"];

/// The queue group every node's API subscriptions join (one node answers a request).
const QUEUE: &str = "longlink-api";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlineReq {
    uid: u64,
}

/// Answers one request's body for `op`.
async fn answer(api: &Api, op: &str, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    use super::parse_body as parse;
    let value = match op {
        "push" => serde_json::json!({ "delivered": api.push(&parse(body)?).await? }),
        "broadcast" => serde_json::json!({ "sent": api.broadcast(&parse(body)?).await? }),
        "kick" => {
            let kick: super::Kick = parse(body)?;
            serde_json::json!({ "kicked": api.kick(kick.uid, &kick.reason).await? > 0 })
        }
        "online" => {
            let req: OnlineReq = parse(body)?;
            serde_json::to_value(api.online(req.uid).await?).unwrap_or_default()
        }
        "stats" => serde_json::to_value(api.stats().await).unwrap_or_default(),
        "batch" => {
            let batch = super::batch::parse_batch(body)?;
            serde_json::to_value(api.batch(&batch).await?).unwrap_or_default()
        }
        other => {
            return Err(ApiError::bad_request(
                "unknown_command",
                format!("no operation {other:?}"),
            ));
        }
    };
    Ok(value)
}

/// Serves this node's `node_stats` (for every node's live page) and, with `with_api` (an
/// `api_key` is set), the API, until `stop`.
pub(crate) async fn serve(
    api: Arc<Api>,
    cluster: Cluster,
    with_api: bool,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let nats = cluster.nats().clone();
    let mut subs = Vec::new();
    let ops: &[&str] = if with_api { &OPS } else { &[] };
    for &op in ops {
        let subject = cluster.subjects().api(op);
        match nats
            .queue_subscribe(subject.clone(), QUEUE.to_owned())
            .await
        {
            Ok(sub) => subs.push((op, sub)),
            Err(e) => tracing::error!(%subject, error = %e, "server API not served over NATS"),
        }
    }
    match nats.subscribe(cluster.subjects().api("node_stats")).await {
        Ok(sub) => subs.push(("node_stats", sub)),
        Err(e) => tracing::error!(error = %e, "node stats not served over NATS"),
    }
    for (op, mut sub) in subs {
        let (api, cluster, stop) = (Arc::clone(&api), cluster.clone(), stop.clone());
        tracker.spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => break,
                    msg = sub.next() => match msg { Some(m) => m, None => break },
                };
                let Some(reply) = msg.reply.clone() else {
                    continue;
                };
                let body = if op == "node_stats" {
                    serde_json::to_vec(&api.node_stats()).unwrap_or_default()
                } else {
                    match answer(&api, op, &msg.payload).await {
                        Ok(v) => serde_json::to_vec(&v).unwrap_or_default(),
                        Err(e) => {
                            let mut answer = e.to_json();
                            answer["status"] = e.status.into();
                            serde_json::to_vec(&answer).unwrap_or_default()
                        }
                    }
                };
                cluster.send(reply.to_string(), None, Bytes::from(body));
            }
            let _ = sub.unsubscribe().await;
        });
    }
}

/// Asks every node for its numbers and collects the answers that come within `window`.
pub(crate) async fn gather_stats(cluster: &Cluster, window: Duration) -> Vec<NodeStats> {
    let nats = cluster.nats();
    let inbox = nats.new_inbox();
    let Ok(mut answers) = nats.subscribe(inbox.clone()).await else {
        return Vec::new();
    };
    let asked = nats
        .publish_with_reply(cluster.subjects().api("node_stats"), inbox, Bytes::new())
        .await;
    if asked.is_err() {
        return Vec::new();
    }
    let _ = nats.flush().await;
    let mut nodes = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, answers.next()).await {
        if let Ok(stats) = serde_json::from_slice::<NodeStats>(&msg.payload) {
            nodes.push(stats);
        }
    }
    let _ = answers.unsubscribe().await;
    nodes
}
