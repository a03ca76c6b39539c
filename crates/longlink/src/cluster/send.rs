//! Publishing: everything a node sends goes through its publisher task in the order of
//! the calls (`publish`), batched where its listener reads batches (`coalesce`); a
//! barrier for stopping, and a sync with the NATS server.

use std::sync::Arc;

use bytes::Bytes;

use super::outgoing::{Out, Outgoing, To};
use super::wire::{Body, ToGate};
use super::{Cluster, ClusterError};

impl Cluster {
    /// Publishes in order with every other publish of this node (never waits).
    pub(crate) fn send(&self, subject: String, reply: Option<String>, payload: Bytes) {
        self.queue(Out {
            to: To::Subject(subject),
            reply,
            payload: Body::Bytes(payload),
            headers: None,
            batch: false,
            acked: None,
        });
    }

    /// As [`send`](Self::send) without a reply, for a gate's or a backend node's own subject
    /// (its listener reads batches): it may share one NATS message with what is queued right
    /// behind it for the same subject.
    pub(crate) fn send_batched(&self, subject: String, payload: Bytes) {
        self.queue(Out {
            to: To::Subject(subject),
            reply: None,
            payload: Body::Bytes(payload),
            headers: None,
            batch: true,
            acked: None,
        });
    }

    /// As [`send_batched`](Self::send_batched), for this gate's forwarded message `seq` of
    /// connection `conn` to node `node` (`ToBackend::Forward` on the node's own subject, both
    /// made by the publisher): its reply subject,
    /// made by the publisher, is this node's acknowledgement subject for `seq` (shared with
    /// the other forwarded messages of its batch), where NATS's "no responders" fails it.
    pub(crate) fn send_forward(&self, node: &Arc<str>, conn: u64, seq: u64, payload: Bytes) {
        self.queue(Out {
            to: To::Node(Arc::clone(node)),
            reply: None,
            payload: Body::Forward { conn, seq, payload },
            headers: None,
            batch: true,
            acked: Some(seq),
        });
    }

    pub(super) fn queue(&self, out: Out) {
        if self.inner.out.send(Outgoing::Publish(out)).is_err() {
            tracing::debug!("cluster publisher stopped, message dropped");
        }
    }

    /// Returns once everything this node published before the call (pushes, kicks,
    /// broadcasts, commands) has left this process: handed to the NATS client and written
    /// to its socket. `Err(Timeout)` after `request_timeout` (NATS is away: what is queued
    /// goes once it is back, while the runtime runs).
    ///
    /// A push returns once queued; a program that stops its runtime right after one (a
    /// tool whose `main` returns) flushes first, or the push may never leave:
    ///
    /// ```no_run
    /// # async fn tool(cluster: longlink::cluster::Cluster, msg: longlink::Encoded) {
    /// cluster.push_uid(42, &msg).await.unwrap();
    /// cluster.flush().await.unwrap();
    /// # }
    /// ```
    pub async fn flush(&self) -> Result<(), ClusterError> {
        let (done, sent) = tokio::sync::oneshot::channel();
        let flushed = async {
            if self.inner.out.send(Outgoing::Barrier(done)).is_ok() {
                let _ = sent.await;
            }
            let _ = self.inner.client.flush().await;
        };
        let wait = self.inner.config.request_timeout;
        tokio::time::timeout(wait, flushed)
            .await
            .map_err(|_| ClusterError::Timeout(wait))
    }

    /// As [`flush`](Self::flush), for stopping: what a node sent on its way out is not left
    /// in its queue; past `request_timeout` it stops waiting.
    pub(crate) async fn flush_outgoing(&self) {
        let _ = self.flush().await;
    }

    /// Sends a command to gate `gate`. It may share one NATS message with the commands queued
    /// right behind it for that gate (`coalesce`); each NATS message to a gate is numbered
    /// when it is published (one count per gate, `cluster::groupseq`) and kept whole: a gate
    /// that missed some asks for them again and applies each node's commands in order, once.
    pub(crate) fn send_to_gate(&self, gate: &str, msg: &ToGate) {
        self.command_gate(gate.into(), msg.clone());
    }

    /// As [`send_to_gate`](Self::send_to_gate), taking the command and the gate's name (the
    /// hot callers hold it shared): a push or an acknowledgement is encoded by the publisher,
    /// straight into the NATS message, and the gate's subject made once per NATS message.
    pub(crate) fn command_gate(&self, gate: Arc<str>, msg: ToGate) {
        self.queue(Out {
            to: To::Gate(gate),
            reply: None,
            payload: Body::command(msg),
            headers: None,
            batch: true,
            acked: None,
        });
    }

    /// Returns once the NATS server has processed everything this node's client sent before
    /// (subscriptions above all), or after `request_timeout`. NATS has no "sync" of its own
    /// (`flush` only empties the socket buffer): a request that nobody serves comes back as
    /// "no responders" only after the server has read what came before it.
    pub(crate) async fn sync(&self) {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let subject = self.subjects().sync(&self.inner.node_id, n);
        let request = self.inner.client.request(subject, Bytes::new());
        let _ = tokio::time::timeout(self.inner.config.request_timeout, request).await;
    }
}
