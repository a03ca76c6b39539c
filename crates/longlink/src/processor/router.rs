//! [`Router`]: the processor once the gate is built, shared read-only by every connection:
//! decodes a payload, then delivers it (raw handler, or handler then module; or forwards
//! it to the cluster through [`Forwarder`], a trait the cluster implements above).

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use super::limits::{Limit, Over};
use super::{RawMessage, Route};
use crate::agent::Agent;
use crate::codec::{Codec, DecodeError};
use crate::module::{Handled, Job, Mailbox, Ticket};

/// A future the connection's task waits on (binding it to a backend first, so its messages
/// stay in order).
pub(crate) type ForwardWait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Sends forwarded messages on to other nodes (implemented by the cluster's gate link).
pub(crate) trait Forwarder: Send + Sync {
    /// Forwards one client message (its payload as it came) to `agent`'s backend of
    /// `node_type`; returns a future to wait on when the connection must be bound first.
    fn forward(
        &self,
        agent: &Agent,
        node_type: &Arc<str>,
        name: &Arc<str>,
        payload: Bytes,
    ) -> Option<ForwardWait>;
}

/// The result of decoding one payload: which type, and the message or its raw body.
pub(crate) struct Decoded {
    index: usize,
    msg: DecodedMsg,
}

impl Decoded {
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The decoded value, when it was decoded (not kept raw or as it came for forwarding).
    pub(crate) fn into_typed(self) -> Option<Box<dyn Any + Send>> {
        match self.msg {
            DecodedMsg::Typed(msg) => Some(msg),
            _ => None,
        }
    }
}

enum DecodedMsg {
    Typed(Box<dyn Any + Send>),
    Raw(RawMessage),
    /// Checked, then kept as it came, to forward to another node.
    Forward(Bytes),
}

/// Decodes one payload into a typed message (or a raw one where a raw handler is set, or
/// the payload itself where the type is forwarded, once its body is known to decode).
pub(super) fn decode(
    codec: &Codec,
    routes: &[Route],
    payload: &Bytes,
) -> Result<Decoded, DecodeError> {
    let registry = codec.registry();
    if codec.encoding() == longlink_wire::Encoding::Json {
        // One pass where it gives the same answer (the common payload); a raw handler
        // wants the body as it came, so it takes the two.
        if let Some((index, value)) = registry.decode_plain_json(payload) {
            let route = &routes[index];
            if registry.check_incoming(index).is_ok() && route.raw.is_none() {
                let msg = match route.forward {
                    Some(_) => DecodedMsg::Forward(payload.clone()),
                    None => DecodedMsg::Typed(value),
                };
                return Ok(Decoded { index, msg });
            }
        }
    }
    let opened = registry.open(payload, codec.encoding(), codec.id_little_endian())?;
    registry.check_incoming(opened.index)?;
    let route = &routes[opened.index];
    let msg = if route.forward.is_some() {
        registry.decode_body(&opened)?;
        DecodedMsg::Forward(payload.clone())
    } else if route.raw.is_some() {
        let info = registry.info(opened.index);
        DecodedMsg::Raw(RawMessage {
            name: info.name.clone(),
            id: info.id,
            body: payload.slice_ref(opened.body.as_bytes()),
        })
    } else {
        DecodedMsg::Typed(registry.decode_body(&opened)?)
    };
    Ok(Decoded {
        index: opened.index,
        msg,
    })
}

/// The registry and the destinations, read-only.
pub(crate) struct Router {
    codec: Arc<Codec>,
    routes: Vec<Route>,
    forwarder: Option<Arc<dyn Forwarder>>,
    /// Each type's rate limit, by index.
    limits: Box<[Option<Limit>]>,
}

impl Router {
    pub(super) fn new(
        codec: Arc<Codec>,
        routes: Vec<Route>,
        forwarder: Option<Arc<dyn Forwarder>>,
    ) -> Router {
        let limits = super::limits::limits(codec.registry().messages().map(|m| m.rate_limit));
        Router {
            codec,
            routes,
            forwarder,
            limits,
        }
    }

    /// The codec, for the agents of the gate.
    pub(crate) fn codec(&self) -> &Arc<Codec> {
        &self.codec
    }

    pub(crate) fn decode(&self, payload: &Bytes) -> Result<Decoded, DecodeError> {
        decode(&self.codec, &self.routes, payload)
    }

    /// The mailboxes messages are routed to (with repeats).
    pub(crate) fn mailboxes(&self) -> Vec<Mailbox> {
        self.routes
            .iter()
            .filter_map(|r| r.router.as_ref().map(|r| r.mailbox.clone()))
            .collect()
    }

    /// Delivers a decoded message: raw handler, or handler then router. A panicking handler
    /// is caught and logged. When the module's mailbox is full the job is handed back, for
    /// the connection to wait on (back-pressure on that connection only); the common path
    /// does not wait, so a connection keeps no sending state while it is idle.
    ///
    /// `decoded_at` is when the message was decoded: the start of its handler's latency (the
    /// connection reads the clock once for this and its liveness).
    #[inline]
    pub(crate) fn dispatch(
        &self,
        decoded: Decoded,
        agent: &Agent,
        decoded_at: std::time::Instant,
    ) -> Option<Pending<'_>> {
        self.dispatch_handled(decoded, agent, decoded_at, None)
    }

    /// As [`dispatch`](Self::dispatch), for a message someone waits for: `handled`'s action
    /// runs once it has been handled (by a handler on the caller, or by its module's job and
    /// the callbacks of the background work that job starts); never if it is dropped.
    pub(crate) fn dispatch_handled(
        &self,
        decoded: Decoded,
        agent: &Agent,
        decoded_at: std::time::Instant,
        handled: Option<Arc<Handled>>,
    ) -> Option<Pending<'_>> {
        let route = &self.routes[decoded.index];
        let name = &self.codec.registry().info(decoded.index).name;
        let metrics = self.codec.metrics(decoded.index);
        let since = metrics.map(|m| {
            m.received();
            decoded_at
        });
        match decoded.msg {
            DecodedMsg::Forward(payload) => {
                let (Some(forwarder), Some((ty, name))) = (&self.forwarder, &route.forward) else {
                    tracing::warn!(message = %name, "forwarded type on a gate without a cluster: dropped");
                    return None;
                };
                forwarder
                    .forward(agent, ty, name, payload)
                    .map(Pending::Forward)
            }
            DecodedMsg::Raw(raw) => {
                if let Some(f) = &route.raw {
                    guard(name, || f(raw, agent));
                }
                if let Some(handled) = &handled {
                    handled.ran();
                }
                if let (Some(m), Some(since)) = (metrics, since) {
                    m.handled(since);
                }
                None
            }
            DecodedMsg::Typed(msg) => {
                if let Some(f) = &route.handler {
                    guard(name, || f(&*msg, agent));
                    if let (Some(m), Some(since), None) = (metrics, since, &route.router) {
                        m.handled(since);
                    }
                }
                let Some(router) = route.router.as_ref() else {
                    if let Some(handled) = &handled {
                        handled.ran();
                    }
                    return None;
                };
                let mut job = (router.make)(msg, agent.clone()).handled(Ticket::new(handled));
                if let (Some(m), Some(since)) = (metrics, since) {
                    job = job.timed(since, m.latency.clone());
                }
                match router.mailbox.try_push(job) {
                    Ok(()) => None,
                    Err(Some(job)) => Some(Pending::Mailbox {
                        name,
                        mailbox: &router.mailbox,
                        job,
                    }),
                    Err(None) => {
                        tracing::debug!(message = %name, module = %router.mailbox.name(), "module stopped, message dropped");
                        None
                    }
                }
            }
        }
    }
}

/// A routed message waiting for room in its module's mailbox, or for its connection to be
/// bound to a backend.
pub(crate) enum Pending<'a> {
    /// The module's mailbox is full.
    Mailbox {
        name: &'a str,
        mailbox: &'a Mailbox,
        job: Job,
    },
    /// The connection is being bound to a backend node first.
    Forward(ForwardWait),
}

impl Pending<'_> {
    /// Waits for room (or for the binding), then queues the message.
    pub(crate) async fn send(self) {
        match self {
            Pending::Mailbox { name, mailbox, job } => {
                if mailbox.send(job).await.is_err() {
                    tracing::debug!(message = %name, module = %mailbox.name(), "module stopped, message dropped");
                }
            }
            Pending::Forward(wait) => wait.await,
        }
    }
}

/// The rate limits per type (set with
/// [`MessageOptions::rate_limit`](super::MessageOptions::rate_limit)).
impl Router {
    /// How many types have a rate limit (the buckets a connection needs).
    pub(crate) fn limited_types(&self) -> usize {
        self.limits.iter().flatten().count()
    }

    /// The rate limit of the type at `index`, if it has one.
    #[inline]
    pub(crate) fn limit(&self, index: usize) -> Option<Limit> {
        self.limits.get(index).copied().flatten()
    }

    /// A message of the type at `index` from `agent` is over its limit: counts it, and with
    /// [`OverLimit::Drop`] runs the type's hook.
    pub(crate) fn over_limit(
        &self,
        index: usize,
        limit: longlink_wire::RateLimit,
        agent: &Agent,
    ) -> Over {
        let codec = self.codec();
        codec.count_delivered(index, crate::metrics::Delivered::Limited);
        let name = &codec.registry().info(index).name;
        tracing::debug!(message = %name, over = ?limit.over, "message over its type's rate limit");
        match limit.over {
            longlink_wire::OverLimit::Close => Over::Close,
            longlink_wire::OverLimit::Drop => {
                if let Some(f) = &self.routes[index].limited {
                    guard(name, || f(agent));
                }
                Over::Dropped
            }
        }
    }
}

fn guard(name: &str, f: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
        tracing::error!(message = %name, panic = %crate::module::panic_message(&panic), "handler panicked");
    }
}

#[cfg(test)]
mod tests;
