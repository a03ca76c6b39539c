//! The processor: which message types a gate speaks, and where each incoming one goes: a
//! handler on the connection's task, a module (by [`route`](Processor::route)), a raw
//! handler, or another node of the cluster (by [`forward`](Processor::forward)).
//!
//! The types themselves (name, protobuf id, JSON and protobuf codecs) live in the
//! [`Codec`], on the registry of `longlink-wire` that the client shares;
//! the processor adds the destinations. A type is registered once; incoming types must then
//! get at least one destination before the gate starts, or the [`Gate`](crate::Gate) refuses
//! to start; outgoing-only types need none. Once the gate is built, the processor becomes a
//! router that every connection shares read-only.
//!
//! ```
//! use longlink::{Agent, Encoding, Module, Processor};
//!
//! #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
//! struct Hello {
//!     #[prost(string, tag = "1")]
//!     name: String,
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let greeter = Module::new("greeter", 0u64); // state: how many greetings
//! let mut processor = Processor::new(Encoding::Json);
//! processor.register::<Hello>()?;
//! processor.route(&greeter.module_ref(), |count: &mut u64, msg: Hello, agent: &Agent| {
//!     *count += 1;
//!     let _ = agent.write(&Hello { name: format!("hello, {}", msg.name) });
//! })?;
//! assert_eq!(processor.encode(&Hello { name: "a".into() })?.as_bytes(), br#"{"Hello":{"name":"a"}}"#);
//! # Ok(()) }
//! ```

mod handler;
mod limits;
mod register;
mod router;

use std::any::{Any, type_name};
use std::sync::Arc;

use bytes::Bytes;

pub use handler::{Handler, WithCtx, WithState};
pub(crate) use limits::Over;
pub use longlink_wire::{
    Delivery, Direction, MessageInfo, MessageOptions, OverLimit, RateLimit, RegistryError,
};
pub(crate) use router::{Decoded, ForwardWait, Forwarder, Pending, Router};

use crate::agent::Agent;
use crate::codec::{Codec, Encoded};
pub use crate::codec::{DecodeError, EncodeError};
use crate::module::{Job, Mailbox, ModuleRef};
use longlink_wire::Encoding;

/// An undecoded message handed to a raw handler: leaf's `MsgRaw`.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// The registered name.
    pub name: String,
    /// The registered protobuf id.
    pub id: u16,
    /// For JSON the raw body value; for protobuf the bytes after the id.
    pub body: Bytes,
}

/// A registration mistake, found at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcessorError {
    /// A name, type or protobuf id registered twice, or too many types.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A handler or route for a type that was never registered.
    #[error("type {0} is not registered")]
    NotRegistered(&'static str),
    /// A destination for an outgoing-only type.
    #[error("type {0} is registered as outgoing only, it cannot have a handler")]
    OutgoingOnly(&'static str),
    /// A JSON-only type on a protobuf processor, or the other way round.
    #[error(
        "type {type_name} was registered with only the {has:?} codec, but this processor speaks {encoding:?}"
    )]
    WrongEncoding {
        /// The type.
        type_name: &'static str,
        /// The codec the type has.
        has: Encoding,
        /// The processor's encoding.
        encoding: Encoding,
    },
    /// A hook for messages over a rate limit, on a type registered without one.
    #[error("type {0} has no rate limit (MessageOptions::rate_limit)")]
    NoRateLimit(&'static str),
    /// Incoming types with no handler, no router and no raw handler.
    #[error("registered messages with no handler and no router: {}", .0.join(", "))]
    Unrouted(Vec<String>),
}

type HandlerFn = Arc<dyn Fn(&dyn Any, &Agent) + Send + Sync>;
type RawFn = Arc<dyn Fn(RawMessage, &Agent) + Send + Sync>;
type MakeJob = Box<dyn Fn(Box<dyn Any + Send>, Agent) -> Job + Send + Sync>;

/// A module's mailbox and the job a routed message becomes there.
struct RouteTo {
    mailbox: Mailbox,
    make: MakeJob,
}

/// Where one registered type goes (by the registry's index).
#[derive(Default)]
struct Route {
    /// leaf's `SetHandler`: runs on the connection's task, before any router.
    handler: Option<HandlerFn>,
    /// leaf's `SetRouter`: a module.
    router: Option<RouteTo>,
    /// leaf's `SetRawHandler`: the body undecoded; neither handler nor router runs.
    raw: Option<RawFn>,
    /// (cluster node type, message name), when the message is forwarded instead.
    forward: Option<(Arc<str>, Arc<str>)>,
    /// What a connection gets for a message over the type's rate limit (dropped).
    limited: Option<limits::LimitedFn>,
}

/// The message registry and the destinations of one gate. Build it, then hand it to the
/// gate, which shares it (read-only) with every connection.
pub struct Processor {
    codec: Codec,
    /// By the registry's index.
    routes: Vec<Route>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("encoding", &self.codec.encoding())
            .field("messages", &self.routes.len())
            .finish()
    }
}

impl Processor {
    /// An empty processor for `encoding`. Protobuf ids are big-endian.
    pub fn new(encoding: Encoding) -> Self {
        Processor {
            codec: Codec::new(encoding),
            routes: Vec::new(),
        }
    }

    /// Writes protobuf ids little-endian (leaf's `SetByteOrder(true)`); independent of the
    /// TCP length field's byte order.
    pub fn set_id_little_endian(&mut self, little_endian: bool) -> &mut Self {
        self.codec.set_id_little_endian(little_endian);
        self
    }

    /// The wire encoding.
    pub fn encoding(&self) -> Encoding {
        self.codec.encoding()
    }

    /// The codec (the registry in this processor's encoding).
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// Every registered message, in registration order.
    pub fn messages(&self) -> impl Iterator<Item = &MessageInfo> {
        self.codec.registry().messages()
    }

    /// The message manifest of every registered message ([`longlink_wire::manifest`]): names,
    /// ids, directions, and fields from `descriptors` (the application's compiled `.proto`
    /// files), with the `LL_` messages described when they are registered (the gate
    /// registers them at `bind` when `resume_window` is on; [`Processor::register_resume`]
    /// does it beforehand).
    ///
    /// ```
    /// use longlink::{Encoding, Processor};
    ///
    /// let mut p = Processor::new(Encoding::Protobuf);
    /// p.register_resume()?;
    /// let doc = p.manifest(&Default::default());
    /// assert_eq!(doc.messages[0].name, "LL_Move");
    /// assert_eq!(doc.messages[1].name, "LL_SessionStart");
    /// assert_eq!(doc.messages[2].fields[1].name, "window_s");
    /// # Ok::<(), longlink::processor::ProcessorError>(())
    /// ```
    pub fn manifest(
        &self,
        descriptors: &longlink_wire::manifest::FileDescriptorSet,
    ) -> longlink_wire::manifest::Manifest {
        longlink_wire::manifest::Manifest::build(self.messages(), descriptors)
    }

    /// Encodes a registered message into its payload (no TCP length prefix).
    pub fn encode<T: 'static>(&self, msg: &T) -> Result<Encoded, EncodeError> {
        self.codec.encode(msg)
    }

    /// Decodes a payload as the gate would and says which message it is; the message itself
    /// is dropped. For validating captured traffic, tools and fuzzing.
    pub fn inspect(&self, payload: &[u8]) -> Result<&MessageInfo, DecodeError> {
        let decoded = router::decode(&self.codec, &self.routes, &Bytes::copy_from_slice(payload))?;
        Ok(self.codec.registry().info(decoded.index()))
    }

    /// Checks that every incoming type has a destination. The gate calls this at start-up.
    pub fn validate(&self) -> Result<(), ProcessorError> {
        let unrouted: Vec<String> = self
            .messages()
            .zip(&self.routes)
            .filter(|(info, r)| {
                info.direction == Direction::Incoming
                    && r.handler.is_none()
                    && r.router.is_none()
                    && r.raw.is_none()
                    && r.forward.is_none()
            })
            .map(|(info, _)| info.name.clone())
            .collect();
        if unrouted.is_empty() {
            Ok(())
        } else {
            Err(ProcessorError::Unrouted(unrouted))
        }
    }

    fn incoming_route<T: 'static>(&mut self) -> Result<(&mut Route, &MessageInfo), ProcessorError> {
        let registry = self.codec.registry();
        let index = registry
            .index_of::<T>()
            .ok_or(ProcessorError::NotRegistered(type_name::<T>()))?;
        let info = registry.info(index);
        if info.direction == Direction::Outgoing {
            return Err(ProcessorError::OutgoingOnly(type_name::<T>()));
        }
        Ok((&mut self.routes[index], info))
    }

    /// Sets a handler that runs synchronously on the connection's task, before any router
    /// (leaf's `SetHandler`). Keep it short: it holds up that connection's reads.
    pub fn handle<T, F>(&mut self, f: F) -> Result<(), ProcessorError>
    where
        T: 'static,
        F: Fn(&T, &Agent) + Send + Sync + 'static,
    {
        let (route, _) = self.incoming_route::<T>()?;
        route.handler = Some(Arc::new(move |msg: &dyn Any, agent: &Agent| {
            if let Some(msg) = msg.downcast_ref::<T>() {
                f(msg, agent)
            }
        }));
        Ok(())
    }

    /// Routes a type to a module: `f` runs on the module's task with `&mut` access to its
    /// state (`&mut S`, or `&mut Ctx<S>` for timers and calls too: see [`Handler`]), in order
    /// with that connection's other messages and events (leaf's `SetRouter` plus
    /// `RegisterChanRPC`, typed).
    pub fn route<T, S, M>(
        &mut self,
        module: &ModuleRef<S>,
        f: impl Handler<S, T, M>,
    ) -> Result<(), ProcessorError>
    where
        T: Send + 'static,
        S: Send + 'static,
    {
        let (route, _) = self.incoming_route::<T>()?;
        let f = Arc::new(f);
        let label = type_name::<T>();
        route.router = Some(RouteTo {
            mailbox: module.mailbox().clone(),
            make: Box::new(move |msg: Box<dyn Any + Send>, agent: Agent| {
                let f = Arc::clone(&f);
                Job::new::<S>(label, move |ctx| {
                    if let Ok(msg) = msg.downcast::<T>() {
                        f.call(ctx, *msg, &agent)
                    }
                })
            }),
        });
        Ok(())
    }

    /// Sets a raw handler: the message is not decoded, and neither the handler nor the
    /// router runs (leaf's `SetRawHandler`). Runs on the connection's task.
    pub fn handle_raw<T, F>(&mut self, f: F) -> Result<(), ProcessorError>
    where
        T: 'static,
        F: Fn(RawMessage, &Agent) + Send + Sync + 'static,
    {
        self.incoming_route::<T>()?.0.raw = Some(Arc::new(f));
        Ok(())
    }

    /// Forwards a type to a backend node of `node_type` in the cluster (see
    /// [`cluster`](crate::cluster)) instead of handling it here: the gate checks that it
    /// decodes, then sends its payload as it came. The backend's own processor routes it to
    /// its module with [`route`](Self::route), the same handler as on a single node. The
    /// gate must be built with [`GateBuilder::cluster`](crate::gate::GateBuilder::cluster).
    pub fn forward<T: 'static>(&mut self, node_type: &str) -> Result<(), ProcessorError> {
        let (route, info) = self.incoming_route::<T>()?;
        let name: Arc<str> = info.name.as_str().into();
        route.forward = Some((node_type.into(), name));
        Ok(())
    }

    /// The node types messages are forwarded to, each once.
    pub(crate) fn forward_types(&self) -> Vec<Arc<str>> {
        let mut types: Vec<Arc<str>> = Vec::new();
        for (t, _) in self.routes.iter().filter_map(|r| r.forward.as_ref()) {
            if !types.contains(t) {
                types.push(Arc::clone(t));
            }
        }
        types
    }

    /// Registers the session-resume protocol's seven `LL_` messages (ids 65529 to 65535,
    /// [`longlink_wire::resume`]); they go to the gate, not a module. A gate with
    /// `resume_window` on does this itself at `bind`; call it to list them, e.g. in a
    /// manifest. Registering them twice is a no-op.
    ///
    /// ```
    /// use longlink::{Encoding, Processor};
    ///
    /// let mut p = Processor::new(Encoding::Protobuf);
    /// p.register_resume()?.register_resume()?;
    /// let ids: Vec<u16> = p.messages().map(|m| m.id).collect();
    /// assert_eq!(ids, [65530, 65531, 65532, 65533, 65534, 65535, 65529]);
    /// # Ok::<(), longlink::processor::ProcessorError>(())
    /// ```
    pub fn register_resume(&mut self) -> Result<&mut Self, ProcessorError> {
        use longlink_wire::resume::LlSessionStart;
        if self.codec.registry().index_of::<LlSessionStart>().is_some() {
            return Ok(self);
        }
        let result = self.codec.register_all(longlink_wire::resume::register);
        let routes = self.codec.registry().len();
        self.routes.resize_with(routes, Route::default);
        result?;
        Ok(self)
    }

    /// The processor, done with registration, as the read-only router connections share;
    /// forwarded types go to `forwarder`.
    pub(crate) fn into_router(self, forwarder: Option<Arc<dyn Forwarder>>) -> Router {
        Router::new(Arc::new(self.codec), self.routes, forwarder)
    }
}
