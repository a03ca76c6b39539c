//! Several longlink processes serving as one, over NATS (off unless configured).
//!
//! A **gate node** holds client connections; a **backend node** runs modules. One process
//! can be both. Message types routed with [`Processor::forward`](crate::Processor::forward)
//! go from the gate to a backend of that node type; the backend runs the very same handlers
//! as a local module would, with an [`Agent`](crate::Agent) whose writes travel back to the
//! gate that holds the connection.
//!
//! What crosses NATS, and under which subject, is listed in [`subjects`]; the cluster's
//! own envelopes (small binary headers before the client payload) are in `wire`. The
//! directory of which uid is on which gate lives in a JetStream key-value bucket; an entry
//! counts while the gate that wrote it is alive (its own key, refreshed every third of
//! `directory_ttl`, says so).
//!
//! Inside: [`Cluster`] (this file: the connection, group and all-gates broadcasts),
//! `directory` (the bucket: uid entries and gates' alive keys), `send` (publishing in order: one message, a batched one, a command to a
//! gate; flush and sync), `by_uid` (push, kick and goodbye to one uid wherever it is),
//! `push_many` (a push to many uids, one message per gate), `rpc` (remote calls), `gate/` (a
//! gate node's side: forwarding, the directory, commands from other nodes;
//! [`GateBuilder::cluster`](crate::gate::GateBuilder::cluster)),
//! `backend` (a backend node's side: [`Backend`]).
//!
//! **Delivery is at most once.** A message is lost if NATS or the node it is on fails while
//! it is in flight; a forwarded client message that is not acknowledged as handled within
//! `request_timeout` (the node acknowledges once its handler, and the callbacks of the
//! background work that handler started, have run) is reported to the gate's
//! [`on_forward_error`](crate::gate::GateBuilder::on_forward_error) hook (never a hang), and
//! the connection is bound to another backend on its next message. A backend node that
//! *stops* loses nothing: it hands its connections to another node of its type first
//! ([`BackendBuilder::on_hand_off_agent`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use longlink::cluster::{Cluster, ClusterConfig};
//! let config = ClusterConfig {
//!     nats_url: "nats://127.0.0.1:4222".into(),
//!     node_type: "chat".into(),
//!     ..ClusterConfig::default()
//! };
//! let cluster = Cluster::connect(&config).await?;
//! let answer: u64 = cluster.call("chat", "online", &()).await?;
//! # Ok(()) }
//! ```

mod backend;
mod by_uid;
mod coalesce;
mod config;
mod directory;
mod except;
mod gate;
pub(crate) mod groupseq;
mod outgoing;
mod publish;
mod push_many;
mod replay;
mod rpc;
mod send;
pub mod subjects;
mod wire;

pub use backend::{Backend, BackendBuilder, RunningBackend};
pub use config::ClusterConfig;
pub use push_many::PushedMany;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OnceCell, mpsc};

use crate::codec::Encoded;
use outgoing::{Out, Outgoing};
use publish::publish_loop;
use subjects::Subjects;

/// Why a cluster operation failed. Every operation ends within its timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// No node answered within `request_timeout`.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// No node of that type (or with that id) is subscribed: it is not running.
    #[error("no node serves {0}")]
    NoResponders(String),
    /// The uid is not connected anywhere in the cluster.
    #[error("uid {0} is not online")]
    NotOnline(u64),
    /// The remote side answered with an error (e.g. it could not decode the request).
    #[error("remote error: {0}")]
    Remote(String),
    /// A request or an answer could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(String),
    /// NATS refused or failed (not connected, bucket unavailable, ...).
    #[error("nats: {0}")]
    Nats(String),
}

/// A NATS request's failure as a [`ClusterError`] (`target` names what was asked).
pub(crate) fn request_error(
    target: &str,
    timeout: Duration,
    e: async_nats::RequestError,
) -> ClusterError {
    use async_nats::RequestErrorKind;
    match e.kind() {
        RequestErrorKind::NoResponders => ClusterError::NoResponders(target.to_owned()),
        RequestErrorKind::TimedOut => ClusterError::Timeout(timeout),
        _ => ClusterError::Nats(e.to_string()),
    }
}

struct Inner {
    client: async_nats::Client,
    config: ClusterConfig,
    node_id: String,
    /// Every subject and key name, under `subject_prefix`.
    subjects: Subjects,
    out: mpsc::UnboundedSender<Outgoing>,
    directory: OnceCell<directory::Bucket>,
    /// Gates seen alive in the directory lately.
    alive_seen: directory::AliveSeen,
    /// This start of the node: its directory entries name it.
    incarnation: u64,
    /// The numbering of this node's group broadcasts, and the last ones, for gates that
    /// missed them.
    group_seq: Arc<groupseq::GroupSeq>,
    /// Whether the NATS connection is up (from the client's events).
    online: Arc<tokio::sync::watch::Sender<bool>>,
    /// Cancelled when the last handle goes: this node's own services stop.
    closed: tokio_util::sync::CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

/// A connection to the cluster: this node's identity, and the operations any node can do
/// (push, kick, broadcast, remote calls). Cheap to clone.
///
/// What a node sent before its last handle is dropped still reaches NATS: the node's
/// publisher flushes it in the background (within `request_timeout`, while the runtime runs).
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.inner.node_id)
            .field("node_type", &self.inner.config.node_type)
            .finish()
    }
}

impl Cluster {
    /// Connects to NATS (retrying in the background if it is not up yet: the node starts
    /// anyway and joins when NATS comes). Reconnects by itself after any failure, and
    /// re-subscribes everything.
    pub async fn connect(config: &ClusterConfig) -> Result<Cluster, ClusterError> {
        config
            .validate()
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        let node_id = config.node_id();
        let group_seq = Arc::new(groupseq::GroupSeq::new(&node_id));
        let connected_before = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let online = Arc::new(tokio::sync::watch::Sender::new(false));
        let online_events = Arc::clone(&online);
        let options = async_nats::ConnectOptions::new()
            .name(format!("longlink {} {}", config.node_type, node_id))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .ping_interval(Duration::from_secs(5))
            .request_timeout(Some(config.request_timeout))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).min(1000))
            })
            .event_callback(move |event| {
                let connected_before = Arc::clone(&connected_before);
                let online = Arc::clone(&online_events);
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            online.send_replace(true);
                            if connected_before.swap(true, std::sync::atomic::Ordering::Relaxed) {
                                metrics::counter!("longlink_cluster_reconnects_total").increment(1);
                                tracing::info!("nats reconnected");
                            } else {
                                tracing::info!("nats connected");
                            }
                        }
                        async_nats::Event::Disconnected => {
                            online.send_replace(false);
                            tracing::warn!("nats disconnected");
                        }
                        other => tracing::debug!(event = %other, "nats event"),
                    }
                }
            });
        let client = options
            .connect(config.nats_url.as_str())
            .await
            .map_err(|e| ClusterError::Nats(format!("{}: {e}", config.nats_url)))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let own = coalesce::Own::new(&Subjects::new(&config.subject_prefix), &node_id);
        tokio::spawn(publish_loop(
            client.clone(),
            rx,
            Arc::clone(&group_seq),
            own,
            config.request_timeout,
        ));
        if client.connection_state() == async_nats::connection::State::Connected {
            online.send_replace(true);
        }
        tracing::info!(node = %node_id, node_type = %config.node_type, url = %config.nats_url, "cluster on");
        let cluster = Cluster {
            inner: Arc::new(Inner {
                client,
                config: config.clone(),
                subjects: Subjects::new(&config.subject_prefix),
                node_id,
                out: tx,
                directory: OnceCell::new(),
                alive_seen: directory::AliveSeen::default(),
                incarnation: directory::new_incarnation(),
                group_seq,
                online,
                closed: tokio_util::sync::CancellationToken::new(),
            }),
        };
        replay::serve(&cluster);
        Ok(cluster)
    }

    /// This node's id (`[cluster] node_id`, or a generated unique one).
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// This node's type (`[cluster] node_type`).
    pub fn node_type(&self) -> &str {
        &self.inner.config.node_type
    }

    /// The settings this cluster connection was made with.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// The NATS client underneath, for anything this API does not cover.
    pub fn nats(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// This start of the node (a random number, never 0): directory entries written by
    /// an earlier start under the same node id do not count.
    pub(crate) fn incarnation(&self) -> u64 {
        self.inner.incarnation
    }

    pub(crate) fn subjects(&self) -> &Subjects {
        &self.inner.subjects
    }

    /// Whether the NATS connection is up, and its changes (from the client's connect and
    /// disconnect events: a message published just after the connection broke is not yet
    /// seen as offline).
    pub(crate) fn online(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.online.subscribe()
    }

    /// Sends `msg` to every member of a cluster group (see
    /// [`Groups::in_cluster`](crate::Groups::in_cluster)): one NATS message; each gate gets
    /// one copy and writes it to its own members.
    ///
    /// Each broadcast is numbered (per sending node, in NATS headers): a member whose session
    /// moves between gates meanwhile gets it exactly once, and a gate that missed some (it
    /// was not subscribed while NATS restarted) asks this node for them again: the node keeps
    /// its last 4,096 broadcasts (at most 16 MiB) for that. What a gate cannot get again any
    /// more is reported to the members there
    /// ([`GateBuilder::on_broadcast_loss`](crate::gate::GateBuilder::on_broadcast_loss)).
    pub fn broadcast_group(&self, group: &str, msg: &Encoded) {
        self.broadcast_group_except(group, msg, None);
    }

    /// [`broadcast_group`](Self::broadcast_group), save to connection `except` (its gate's
    /// node id, its id there), named in a header its gate reads (an older gate ignores it,
    /// and delivers to that connection too).
    pub(crate) fn broadcast_group_except(
        &self,
        group: &str,
        msg: &Encoded,
        except: Option<(Arc<str>, u64)>,
    ) {
        let subject = self.subjects().group(group);
        let token = subjects::group_token(group);
        let payload = msg.bytes();
        self.inner.group_seq.stamp(&token, payload, |mut headers| {
            if let Some((gate, conn)) = &except {
                except::except(&mut headers, gate, *conn);
            }
            self.queue(Out {
                to: outgoing::To::Subject(subject),
                reply: None,
                payload: wire::Body::Bytes(payload.clone()),
                headers: Some(headers),
                batch: false,
                acked: None,
            })
        });
    }

    /// Sends `msg` to every connection of every gate.
    pub fn broadcast_all(&self, msg: &Encoded) {
        self.send(self.subjects().all(), None, msg.bytes().clone());
    }
}
