//! What a node publishes, as its publisher takes it (plain data, below `publish` and
//! `coalesce`).

use std::sync::Arc;

use super::wire::Body;

/// What the publisher task takes, in order.
pub(crate) enum Outgoing {
    /// A message.
    Publish(Out),
    /// Everything before it has been handed to the NATS client.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// Something to publish, in order with everything else this node publishes.
pub(crate) struct Out {
    pub(crate) to: To,
    pub(crate) reply: Option<String>,
    /// Its envelope: encoded already, or encoded by the publisher (straight into a batch).
    pub(crate) payload: Body,
    /// A numbered group broadcast's headers ([`super::groupseq`]).
    pub(crate) headers: Option<async_nats::HeaderMap>,
    /// It may share one NATS message with what is queued right behind it for the same
    /// subject ([`super::coalesce`]): its listener reads batches.
    pub(crate) batch: bool,
    /// A forwarded message's number: its reply subject is this node's acknowledgement
    /// subject for it, `<P>.ack.<node>.<n>`, made by the publisher (one for a batch, listing
    /// the numbers of its items: [`super::coalesce`]).
    pub(crate) acked: Option<u64>,
}

/// Where an [`Out`] goes. A node's own subject is made by the publisher, once per NATS
/// message (a batch's items name their node by a shared `Arc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum To {
    /// This subject.
    Subject(String),
    /// Gate node `id`'s own subject (`P.gate.<id>`): a command to this gate. The NATS
    /// message that carries it (alone or in a batch) is numbered in the gate's count, and
    /// kept, when it is published ([`super::groupseq`]).
    Gate(Arc<str>),
    /// Node `id`'s own subject (`P.node.<id>`): a forwarded message.
    Node(Arc<str>),
}
