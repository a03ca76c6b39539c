//! This node's publisher: one task publishes everything the node sends, in the order of
//! the `send` calls (a numbered group broadcast with its headers; a NATS message to a gate
//! numbered as it goes).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::groupseq::GroupSeq;
use super::outgoing::Outgoing;

/// Publishes everything this node sends, one at a time, so the order of `send` calls is the
/// order on the wire; what is queued for one gate or backend node goes out together
/// ([`super::coalesce`]). Each NATS message of commands to a gate (one, or a batch) gets
/// the gate's next number here, so numbers go out in order, and `numbering` keeps it whole
/// for the gate to ask for again. `own` names this node in what the publisher encodes (its
/// id, its acknowledgement prefix). A publish fails only when the client is closed; while
/// NATS is away, async-nats buffers and sends after reconnecting.
///
/// When the node's last handle goes (the queue ends), what was published is flushed to the
/// NATS server before the publisher lets its client go, within `flush_wait` (NATS may be
/// away): the NATS client's task stops as soon as its last client is gone, and what it had
/// not written to the socket by then would be lost (a push that `push_uid` had accepted).
pub(super) async fn publish_loop(
    client: async_nats::Client,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    numbering: Arc<GroupSeq>,
    own: super::coalesce::Own,
    flush_wait: std::time::Duration,
) {
    let mut taken = None;
    loop {
        let next = match taken.take() {
            Some(next) => next,
            None => match rx.recv().await {
                Some(next) => next,
                None => break,
            },
        };
        let out = match next {
            Outgoing::Publish(out) => out,
            Outgoing::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
        };
        if out.batch {
            // What other tasks have ready in this turn of the runtime (the other connections'
            // messages read in the same wake-up) is queued before the batch is made: the
            // batch is deeper, and nothing waits on a timer.
            tokio::task::yield_now().await;
        }
        let (mut out, after) = super::coalesce::gather(out, &mut rx, &own);
        taken = after;
        if let Some(gate) = &out.numbered {
            out.headers = Some(numbering.number_command(gate, &out.payload));
        }
        let result = match (out.reply, out.headers) {
            (Some(reply), Some(headers)) => {
                client
                    .publish_with_reply_and_headers(out.subject, reply, headers, out.payload)
                    .await
            }
            (Some(reply), None) => {
                client
                    .publish_with_reply(out.subject, reply, out.payload)
                    .await
            }
            (None, Some(headers)) => {
                client
                    .publish_with_headers(out.subject, headers, out.payload)
                    .await
            }
            (None, None) => client.publish(out.subject, out.payload).await,
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "nats publish failed");
        }
    }
    if tokio::time::timeout(flush_wait, client.flush())
        .await
        .is_err()
    {
        tracing::warn!(
            "cluster's last handle gone while NATS is away: what it sent last may be lost"
        );
    }
}
