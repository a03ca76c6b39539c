//! Processors: the registry of message types, their wire encoding (JSON or protobuf), and where
//! each incoming message goes (a handler, a module, or a raw handler).
//!
//! A type is registered once. Incoming types must then get at least one destination before the
//! gate starts, or [`Gate`](crate::gate::Gate) refuses to start; outgoing-only types need none.
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
//! processor.route(&greeter.module_ref(), |count: &mut longlink::Ctx<u64>, msg: Hello, agent: &Agent| {
//!     **count += 1;
//!     let _ = agent.write(&Hello { name: format!("hello, {}", msg.name) });
//! })?;
//! assert_eq!(processor.encode(&Hello { name: "a".into() })?.as_bytes(), br#"{"Hello":{"name":"a"}}"#);
//! # Ok(()) }
//! ```

mod json;
mod protobuf;

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::agent::Agent;
use crate::module::{Ctx, Job, Mailbox, ModuleRef};

/// The wire encoding of message payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// `{"Name":{...}}`, leaf's `json.Processor`.
    #[default]
    Json,
    /// `| id: u16 | body |`, leaf's `protobuf.Processor`.
    Protobuf,
}

/// Which way a registered message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Accepted from clients (and may also be sent to them); it needs a destination.
    Incoming,
    /// Only sent to clients; a client that sends it gets its connection closed.
    Outgoing,
}

/// Per-type registration options: an explicit name, a pinned protobuf id, the direction.
#[derive(Debug, Clone, Default)]
pub struct MessageOptions {
    name: Option<String>,
    id: Option<u16>,
    outgoing: bool,
}

impl MessageOptions {
    /// Default options: bare type name, next id in registration order, incoming.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the JSON name (the envelope key) instead of the bare Rust type name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Pins the protobuf id instead of taking the registration order.
    pub fn id(mut self, id: u16) -> Self {
        self.id = Some(id);
        self
    }
    /// Marks the type as server-to-client only.
    pub fn outgoing(mut self) -> Self {
        self.outgoing = true;
        self
    }
}

/// What is known of one registered message (for manifests and diagnostics).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageInfo {
    /// JSON envelope key and protobuf message name.
    pub name: String,
    /// Protobuf id.
    pub id: u16,
    /// The Rust type.
    pub type_name: &'static str,
    /// Incoming or outgoing.
    pub direction: Direction,
}

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

/// A message already encoded for this processor's wire: encode once, write to many agents.
#[derive(Debug, Clone)]
pub struct Encoded(
    pub(crate) Bytes,
    /// `longlink_messages_out_total` of its type, counted per write.
    pub(crate) Option<metrics::Counter>,
);

impl PartialEq for Encoded {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Encoded {}

impl Encoded {
    /// The payload bytes (without any TCP length prefix).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// Payload length.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the payload is empty (never, for a registered message).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A registration mistake, found at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcessorError {
    /// The same name twice.
    #[error("message name {0:?} is registered twice")]
    DuplicateName(String),
    /// The same Rust type twice.
    #[error("type {0} is registered twice")]
    DuplicateType(&'static str),
    /// The same protobuf id twice.
    #[error("protobuf id {id} is taken by {taken_by} and asked for by {name}")]
    DuplicateId {
        /// The id.
        id: u16,
        /// Who has it.
        taken_by: String,
        /// Who asked for it.
        name: String,
    },
    /// More than 65535 types.
    #[error("too many message types (at most 65535)")]
    TooMany,
    /// A handler or route for a type that was never registered.
    #[error("type {0} is not registered")]
    NotRegistered(&'static str),
    /// A destination for an outgoing-only type.
    #[error("type {0} is registered as outgoing only, it cannot have a handler")]
    OutgoingOnly(&'static str),
    /// A JSON-only type on a protobuf processor, or the other way round.
    #[error("type {type_name} cannot be encoded as {encoding:?}")]
    WrongEncoding {
        /// The type.
        type_name: &'static str,
        /// The processor's encoding.
        encoding: Encoding,
    },
    /// Incoming types with no handler, no router and no raw handler.
    #[error("registered messages with no handler and no router: {}", .0.join(", "))]
    Unrouted(Vec<String>),
}

/// An incoming payload that could not be turned into a message. The gate closes the connection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a one-key JSON object.
    #[error("invalid json data: {0}")]
    Json(String),
    /// A protobuf payload shorter than its 2-byte id.
    #[error("protobuf data too short: {0} bytes")]
    TooShort(usize),
    /// A name nobody registered.
    #[error("message {0:?} not registered")]
    UnknownName(String),
    /// An id nobody registered.
    #[error("message id {0} not registered")]
    UnknownId(u16),
    /// A registered name whose body does not decode into its type.
    #[error("message {name}: bad body: {reason}")]
    BadBody {
        /// The message name.
        name: String,
        /// What the decoder said.
        reason: String,
    },
    /// A client sent a server-to-client message.
    #[error("message {0} is outgoing only")]
    Outgoing(String),
}

/// A message that could not be encoded. Nothing is sent.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The type was never registered with this processor.
    #[error("message {0} not registered")]
    NotRegistered(&'static str),
    /// serde_json refused the value.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// An undecoded body, as each encoding finds it.
enum Body<'a> {
    Json(&'a serde_json::value::RawValue),
    Protobuf(&'a [u8]),
}

type DecodeFn = fn(&str, Body<'_>) -> Result<Box<dyn Any + Send>, DecodeError>;
type EncodeFn = fn(&Entry, bool, &dyn Any, &mut Vec<u8>) -> Result<(), EncodeError>;
type HandlerFn = Arc<dyn Fn(&dyn Any, &Agent) + Send + Sync>;
type RawFn = Arc<dyn Fn(RawMessage, &Agent) + Send + Sync>;
type MakeJob = Box<dyn Fn(Box<dyn Any + Send>, Agent) -> Job + Send + Sync>;

/// Two codecs per type so that one registration serves either encoding; the one the
/// processor does not use may be missing (JSON-only or protobuf-only types).
struct Codecs {
    json: Option<(DecodeFn, EncodeFn)>,
    protobuf: Option<(DecodeFn, EncodeFn)>,
}

struct RouterTo {
    mailbox: Mailbox,
    make: MakeJob,
}

struct Entry {
    info: MessageInfo,
    decode: DecodeFn,
    encode: EncodeFn,
    handler: Option<HandlerFn>,
    router: Option<RouterTo>,
    raw: Option<RawFn>,
    /// The cluster node type this message is forwarded to, instead of a local destination.
    /// (node type, message name), when the message is forwarded.
    forward: Option<(Arc<str>, Arc<str>)>,
    metrics: crate::admin::metrics::MsgSlot,
}

/// The result of decoding one payload: which entry, and the message or its raw body.
pub(crate) struct Decoded {
    entry: usize,
    msg: DecodedMsg,
}

enum DecodedMsg {
    Typed(Box<dyn Any + Send>),
    Raw(RawMessage),
    /// Checked, then kept as it came, to forward to another node.
    Forward(Bytes),
}

/// The message registry and codec for one gate. Build it, then hand it to the gate, which
/// shares it (read-only) with every connection.
pub struct Processor {
    encoding: Encoding,
    id_little_endian: bool,
    entries: Vec<Entry>,
    by_type: HashMap<TypeId, usize>,
    by_name: HashMap<String, usize>,
    by_id: HashMap<u16, usize>,
    /// The gate's cluster link, for forwarded types (set when the gate is built).
    forwarder: std::sync::OnceLock<Arc<crate::cluster::gate::GateLink>>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("encoding", &self.encoding)
            .field("messages", &self.entries.len())
            .finish()
    }
}

/// The bare type name, as leaf uses Go's bare type name: no module path, no generics.
fn bare_name<T>() -> &'static str {
    let full = type_name::<T>();
    let head = full.split('<').next().unwrap_or(full);
    head.rsplit("::").next().unwrap_or(head)
}

fn json_codec<T: Serialize + DeserializeOwned + Send + 'static>() -> (DecodeFn, EncodeFn) {
    fn dec<T: DeserializeOwned + Send + 'static>(
        name: &str,
        body: Body<'_>,
    ) -> Result<Box<dyn Any + Send>, DecodeError> {
        match body {
            Body::Json(body) => Ok(Box::new(json::decode_body::<T>(name, body)?)),
            Body::Protobuf(_) => Err(DecodeError::Json("not a json body".into())),
        }
    }
    fn enc<T: Serialize + 'static>(
        e: &Entry,
        _: bool,
        msg: &dyn Any,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let msg = msg
            .downcast_ref::<T>()
            .ok_or(EncodeError::NotRegistered(type_name::<T>()))?;
        Ok(json::encode(&e.info.name, msg, out)?)
    }
    (dec::<T>, enc::<T>)
}

fn protobuf_codec<T: prost::Message + Default + Send + 'static>() -> (DecodeFn, EncodeFn) {
    fn dec<T: prost::Message + Default + Send + 'static>(
        name: &str,
        body: Body<'_>,
    ) -> Result<Box<dyn Any + Send>, DecodeError> {
        match body {
            Body::Protobuf(body) => Ok(Box::new(protobuf::decode_body::<T>(name, body)?)),
            Body::Json(_) => Err(DecodeError::TooShort(0)),
        }
    }
    fn enc<T: prost::Message + 'static>(
        e: &Entry,
        little_endian: bool,
        msg: &dyn Any,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let msg = msg
            .downcast_ref::<T>()
            .ok_or(EncodeError::NotRegistered(type_name::<T>()))?;
        protobuf::encode(e.info.id, little_endian, msg, out);
        Ok(())
    }
    (dec::<T>, enc::<T>)
}

impl Processor {
    /// An empty processor for `encoding`. Protobuf ids are big-endian.
    pub fn new(encoding: Encoding) -> Self {
        Processor {
            encoding,
            id_little_endian: false,
            entries: Vec::new(),
            by_type: HashMap::new(),
            by_name: HashMap::new(),
            by_id: HashMap::new(),
            forwarder: std::sync::OnceLock::new(),
        }
    }

    /// Writes protobuf ids little-endian (leaf's `SetByteOrder(true)`); independent of the
    /// TCP length field's byte order.
    pub fn set_id_little_endian(&mut self, little_endian: bool) -> &mut Self {
        self.id_little_endian = little_endian;
        self
    }

    /// The wire encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Registers an incoming type usable with either encoding: serde for JSON, prost for
    /// protobuf. Name = bare type name; id = registration order.
    pub fn register<T>(&mut self) -> Result<&MessageInfo, ProcessorError>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + Sync + 'static,
    {
        self.register_with::<T>(MessageOptions::new())
    }

    /// Registers a server-to-client type (it needs no destination).
    pub fn register_outgoing<T>(&mut self) -> Result<&MessageInfo, ProcessorError>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + Sync + 'static,
    {
        self.register_with::<T>(MessageOptions::new().outgoing())
    }

    /// Registers a type with explicit options.
    pub fn register_with<T>(&mut self, opts: MessageOptions) -> Result<&MessageInfo, ProcessorError>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + Sync + 'static,
    {
        self.insert::<T>(
            opts,
            Codecs {
                json: Some(json_codec::<T>()),
                protobuf: Some(protobuf_codec::<T>()),
            },
        )
    }

    /// Registers a type that only has serde impls; only for a JSON processor.
    pub fn register_json<T>(&mut self, opts: MessageOptions) -> Result<&MessageInfo, ProcessorError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.insert::<T>(
            opts,
            Codecs {
                json: Some(json_codec::<T>()),
                protobuf: None,
            },
        )
    }

    /// Registers a type that only has a prost impl; only for a protobuf processor.
    pub fn register_protobuf<T>(
        &mut self,
        opts: MessageOptions,
    ) -> Result<&MessageInfo, ProcessorError>
    where
        T: prost::Message + Default + Send + Sync + 'static,
    {
        self.insert::<T>(
            opts,
            Codecs {
                json: None,
                protobuf: Some(protobuf_codec::<T>()),
            },
        )
    }

    fn insert<T: 'static>(
        &mut self,
        opts: MessageOptions,
        codecs: Codecs,
    ) -> Result<&MessageInfo, ProcessorError> {
        let type_id = TypeId::of::<T>();
        if self.by_type.contains_key(&type_id) {
            return Err(ProcessorError::DuplicateType(type_name::<T>()));
        }
        let (decode, encode) = match self.encoding {
            Encoding::Json => codecs.json,
            Encoding::Protobuf => codecs.protobuf,
        }
        .ok_or(ProcessorError::WrongEncoding {
            type_name: type_name::<T>(),
            encoding: self.encoding,
        })?;
        let name = opts.name.unwrap_or_else(|| bare_name::<T>().to_owned());
        if self.by_name.contains_key(&name) {
            return Err(ProcessorError::DuplicateName(name));
        }
        let id = match opts.id {
            Some(id) => id,
            None => u16::try_from(self.entries.len()).map_err(|_| ProcessorError::TooMany)?,
        };
        if id == u16::MAX {
            return Err(ProcessorError::TooMany);
        }
        if let Some(&other) = self.by_id.get(&id) {
            return Err(ProcessorError::DuplicateId {
                id,
                taken_by: self.entries[other].info.name.clone(),
                name,
            });
        }
        let index = self.entries.len();
        self.by_type.insert(type_id, index);
        self.by_name.insert(name.clone(), index);
        self.by_id.insert(id, index);
        self.entries.push(Entry {
            info: MessageInfo {
                name,
                id,
                type_name: type_name::<T>(),
                direction: if opts.outgoing {
                    Direction::Outgoing
                } else {
                    Direction::Incoming
                },
            },
            decode,
            encode,
            handler: None,
            router: None,
            raw: None,
            forward: None,
            metrics: Default::default(),
        });
        Ok(&self.entries[index].info)
    }

    fn incoming_entry<T: 'static>(&mut self) -> Result<&mut Entry, ProcessorError> {
        let index = *self
            .by_type
            .get(&TypeId::of::<T>())
            .ok_or(ProcessorError::NotRegistered(type_name::<T>()))?;
        let entry = &mut self.entries[index];
        if entry.info.direction == Direction::Outgoing {
            return Err(ProcessorError::OutgoingOnly(type_name::<T>()));
        }
        Ok(entry)
    }

    /// Sets a handler that runs synchronously on the connection's reader, before any router
    /// (leaf's `SetHandler`). Keep it short: it holds up that connection's reads.
    pub fn handle<T, F>(&mut self, f: F) -> Result<(), ProcessorError>
    where
        T: 'static,
        F: Fn(&T, &Agent) + Send + Sync + 'static,
    {
        let entry = self.incoming_entry::<T>()?;
        entry.handler = Some(Arc::new(move |msg: &dyn Any, agent: &Agent| {
            if let Some(msg) = msg.downcast_ref::<T>() {
                f(msg, agent)
            }
        }));
        Ok(())
    }

    /// Routes a type to a module: `f` runs on the module's task with `&mut` access to its
    /// state, in order with that connection's other messages and events (leaf's `SetRouter`
    /// plus `RegisterChanRPC`, typed).
    pub fn route<T, S, F>(&mut self, module: &ModuleRef<S>, f: F) -> Result<(), ProcessorError>
    where
        T: Send + 'static,
        S: Send + 'static,
        F: Fn(&mut Ctx<S>, T, &Agent) + Send + Sync + 'static,
    {
        let entry = self.incoming_entry::<T>()?;
        let f = Arc::new(f);
        let label = type_name::<T>();
        entry.router = Some(RouterTo {
            mailbox: module.mailbox().clone(),
            make: Box::new(move |msg: Box<dyn Any + Send>, agent: Agent| {
                let f = Arc::clone(&f);
                Job::new::<S>(label, move |ctx| {
                    if let Ok(msg) = msg.downcast::<T>() {
                        f(ctx, *msg, &agent)
                    }
                })
            }),
        });
        Ok(())
    }

    /// Forwards a type to a backend node of `node_type` in the cluster (see
    /// [`cluster`](crate::cluster)) instead of handling it here: the gate checks that it
    /// decodes, then sends its payload as it came. The backend's own processor routes it to
    /// its module with [`route`](Self::route), the same handler as on a single node. The
    /// gate must be built with [`GateBuilder::cluster`](crate::gate::GateBuilder::cluster).
    pub fn forward<T: 'static>(&mut self, node_type: &str) -> Result<(), ProcessorError> {
        let entry = self.incoming_entry::<T>()?;
        entry.forward = Some((node_type.into(), entry.info.name.as_str().into()));
        Ok(())
    }

    /// The node types messages are forwarded to, each once.
    pub(crate) fn forward_types(&self) -> Vec<Arc<str>> {
        let mut types: Vec<Arc<str>> = Vec::new();
        for (t, _) in self.entries.iter().filter_map(|e| e.forward.as_ref()) {
            if !types.contains(t) {
                types.push(Arc::clone(t));
            }
        }
        types
    }

    pub(crate) fn set_forwarder(&self, link: Arc<crate::cluster::gate::GateLink>) {
        let _ = self.forwarder.set(link);
    }

    /// The mailbox a decoded message is routed to, if any.
    pub(crate) fn mailbox_of(&self, decoded: &Decoded) -> Option<Mailbox> {
        let entry = &self.entries[decoded.entry];
        match decoded.msg {
            DecodedMsg::Typed(_) => entry.router.as_ref().map(|r| r.mailbox.clone()),
            _ => None,
        }
    }

    /// Sets a raw handler: the message is not decoded, and neither the handler nor the
    /// router runs (leaf's `SetRawHandler`). Runs on the connection's reader.
    pub fn handle_raw<T, F>(&mut self, f: F) -> Result<(), ProcessorError>
    where
        T: 'static,
        F: Fn(RawMessage, &Agent) + Send + Sync + 'static,
    {
        self.incoming_entry::<T>()?.raw = Some(Arc::new(f));
        Ok(())
    }

    /// The mailboxes messages are routed to (with repeats).
    pub(crate) fn mailboxes(&self) -> Vec<Mailbox> {
        self.entries
            .iter()
            .filter_map(|e| e.router.as_ref().map(|r| r.mailbox.clone()))
            .collect()
    }

    /// Every registered message, in registration order.
    pub fn messages(&self) -> impl Iterator<Item = &MessageInfo> {
        self.entries.iter().map(|e| &e.info)
    }

    /// Checks that every incoming type has a destination. The gate calls this at start-up.
    pub fn validate(&self) -> Result<(), ProcessorError> {
        let unrouted: Vec<String> = self
            .entries
            .iter()
            .filter(|e| {
                e.info.direction == Direction::Incoming
                    && e.handler.is_none()
                    && e.router.is_none()
                    && e.raw.is_none()
                    && e.forward.is_none()
            })
            .map(|e| e.info.name.clone())
            .collect();
        if unrouted.is_empty() {
            Ok(())
        } else {
            Err(ProcessorError::Unrouted(unrouted))
        }
    }

    /// Encodes a registered message into its payload (no TCP length prefix).
    pub fn encode<T: 'static>(&self, msg: &T) -> Result<Encoded, EncodeError> {
        let index = *self
            .by_type
            .get(&TypeId::of::<T>())
            .ok_or(EncodeError::NotRegistered(type_name::<T>()))?;
        let entry = &self.entries[index];
        let mut out = Vec::with_capacity(64);
        (entry.encode)(entry, self.id_little_endian, msg, &mut out)?;
        let sent = entry.metrics.get(&entry.info.name).map(|m| m.sent.clone());
        Ok(Encoded(Bytes::from(out), sent))
    }

    /// Decodes a payload as the gate would and says which message it is; the message itself
    /// is dropped. For validating captured traffic, tools and fuzzing.
    pub fn inspect(&self, payload: &[u8]) -> Result<&MessageInfo, DecodeError> {
        let decoded = self.decode(&Bytes::copy_from_slice(payload))?;
        Ok(&self.entries[decoded.entry].info)
    }

    /// Decodes one payload into a typed message (or a raw one where a raw handler is set).
    pub(crate) fn decode(&self, payload: &Bytes) -> Result<Decoded, DecodeError> {
        match self.encoding {
            Encoding::Json => {
                let env = json::open(payload)?;
                let index = *self
                    .by_name
                    .get(env.name.as_ref())
                    .ok_or_else(|| DecodeError::UnknownName(env.name.to_string()))?;
                let entry = self.incoming(index)?;
                let msg = if entry.forward.is_some() {
                    (entry.decode)(&entry.info.name, Body::Json(env.body))?;
                    DecodedMsg::Forward(payload.clone())
                } else if entry.raw.is_some() {
                    DecodedMsg::Raw(RawMessage {
                        name: entry.info.name.clone(),
                        id: entry.info.id,
                        body: payload.slice_ref(env.body.get().as_bytes()),
                    })
                } else {
                    DecodedMsg::Typed((entry.decode)(&entry.info.name, Body::Json(env.body))?)
                };
                Ok(Decoded { entry: index, msg })
            }
            Encoding::Protobuf => {
                let (id, body) = protobuf::split_id(payload, self.id_little_endian)?;
                let index = *self.by_id.get(&id).ok_or(DecodeError::UnknownId(id))?;
                let entry = self.incoming(index)?;
                let msg = if entry.forward.is_some() {
                    (entry.decode)(&entry.info.name, Body::Protobuf(body))?;
                    DecodedMsg::Forward(payload.clone())
                } else if entry.raw.is_some() {
                    DecodedMsg::Raw(RawMessage {
                        name: entry.info.name.clone(),
                        id,
                        body: payload.slice(2..),
                    })
                } else {
                    DecodedMsg::Typed((entry.decode)(&entry.info.name, Body::Protobuf(body))?)
                };
                Ok(Decoded { entry: index, msg })
            }
        }
    }

    fn incoming(&self, index: usize) -> Result<&Entry, DecodeError> {
        let entry = &self.entries[index];
        if entry.info.direction == Direction::Outgoing {
            return Err(DecodeError::Outgoing(entry.info.name.clone()));
        }
        Ok(entry)
    }

    /// Delivers a decoded message: raw handler, or handler then router. A panicking handler
    /// is caught and logged. When the module's mailbox is full the job is handed back, for the
    /// reader to wait on (back-pressure on that connection only); the common path does not
    /// wait, so a reader keeps no sending state while it is idle.
    pub(crate) fn dispatch(&self, decoded: Decoded, agent: &Agent) -> Option<Pending<'_>> {
        let entry = &self.entries[decoded.entry];
        let metrics = entry.metrics.get(&entry.info.name);
        let since = metrics.map(|m| {
            m.received();
            std::time::Instant::now()
        });
        match decoded.msg {
            DecodedMsg::Forward(payload) => {
                let (Some(link), Some((ty, name))) = (self.forwarder.get(), entry.forward.as_ref())
                else {
                    tracing::warn!(message = %entry.info.name, "forwarded type on a gate without a cluster: dropped");
                    return None;
                };
                let wait = link.forward(agent, ty, name, payload)?;
                Some(Pending::Forward(wait))
            }
            DecodedMsg::Raw(raw) => {
                if let Some(f) = &entry.raw {
                    guard(&entry.info.name, || f(raw, agent));
                }
                if let (Some(m), Some(since)) = (metrics, since) {
                    m.handled(since);
                }
                None
            }
            DecodedMsg::Typed(msg) => {
                if let Some(f) = &entry.handler {
                    guard(&entry.info.name, || f(&*msg, agent));
                    if let (Some(m), Some(since), None) = (metrics, since, &entry.router) {
                        m.handled(since);
                    }
                }
                let router = entry.router.as_ref()?;
                let mut job = (router.make)(msg, agent.clone());
                if let (Some(m), Some(since)) = (metrics, since) {
                    job = job.timed(since, m.latency.clone());
                }
                match router.mailbox.try_push(job) {
                    Ok(()) => None,
                    Err(Some(job)) => Some(Pending::Mailbox {
                        name: &entry.info.name,
                        mailbox: &router.mailbox,
                        job,
                    }),
                    Err(None) => {
                        tracing::debug!(message = %entry.info.name, module = %router.mailbox.name(), "module stopped, message dropped");
                        None
                    }
                }
            }
        }
    }
}

/// A routed message waiting for room in its module's mailbox.
pub(crate) enum Pending<'a> {
    /// The module's mailbox is full.
    Mailbox {
        name: &'a str,
        mailbox: &'a Mailbox,
        job: Job,
    },
    /// The connection is being bound to a backend node first.
    Forward(crate::cluster::gate::ForwardWait),
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

fn guard(name: &str, f: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
        tracing::error!(message = %name, panic = %crate::module::panic_message(&panic), "handler panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    struct StringValue {
        #[prost(string, tag = "1")]
        value: String,
    }

    #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    struct Int32Value {
        #[prost(int32, tag = "1")]
        value: i32,
    }

    #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    struct Chat {
        #[prost(uint64, tag = "1")]
        room_id: u64,
        #[prost(string, tag = "2")]
        text: String,
        #[prost(int64, tag = "3")]
        ts: i64,
    }

    fn both(encoding: Encoding) -> Processor {
        let mut p = Processor::new(encoding);
        p.register::<StringValue>().unwrap();
        p.register::<Int32Value>().unwrap();
        p.register::<Chat>().unwrap();
        p
    }

    fn typed<T: 'static + Clone>(p: &Processor, bytes: &[u8]) -> Result<T, DecodeError> {
        match p.decode(&Bytes::copy_from_slice(bytes))?.msg {
            DecodedMsg::Typed(m) => Ok(m.downcast_ref::<T>().unwrap().clone()),
            DecodedMsg::Raw(_) => panic!("raw"),
            DecodedMsg::Forward(_) => panic!("forwarded"),
        }
    }

    #[test]
    fn golden_protobuf_id_and_body() {
        let p = both(Encoding::Protobuf);
        let e = p.encode(&Int32Value { value: 150 }).unwrap();
        assert_eq!(e.as_bytes(), &[0x00, 0x01, 0x08, 0x96, 0x01]);
        let mut le = both(Encoding::Protobuf);
        le.set_id_little_endian(true);
        assert_eq!(
            le.encode(&Int32Value { value: 150 }).unwrap().as_bytes(),
            &[0x01, 0x00, 0x08, 0x96, 0x01]
        );
        assert_eq!(
            typed::<Int32Value>(&p, &[0x00, 0x01, 0x08, 0x96, 0x01]).unwrap(),
            Int32Value { value: 150 }
        );
        assert_eq!(
            typed::<Int32Value>(&p, &[0x00, 0x01]).unwrap(),
            Int32Value { value: 0 }
        );
    }

    #[test]
    fn protobuf_errors() {
        let p = both(Encoding::Protobuf);
        assert_eq!(
            typed::<Int32Value>(&p, &[0x00]).unwrap_err(),
            DecodeError::TooShort(1)
        );
        assert_eq!(
            typed::<Int32Value>(&p, &[0x00, 0x09]).unwrap_err(),
            DecodeError::UnknownId(9)
        );
        assert!(matches!(
            typed::<Int32Value>(&p, &[0x00, 0x01, 0xff, 0xff]).unwrap_err(),
            DecodeError::BadBody { .. }
        ));
    }

    #[test]
    fn json_names_and_errors() {
        let p = both(Encoding::Json);
        assert_eq!(
            typed::<StringValue>(&p, br#"{"StringValue":{"value":"x"}}"#).unwrap(),
            StringValue { value: "x".into() }
        );
        assert_eq!(
            typed::<StringValue>(&p, br#"{"Nope":{}}"#).unwrap_err(),
            DecodeError::UnknownName("Nope".into())
        );
        assert!(matches!(
            typed::<StringValue>(&p, br#"{"StringValue":{"value":1}}"#),
            Err(DecodeError::BadBody { .. })
        ));
        assert!(matches!(
            typed::<StringValue>(&p, br#"{"StringValue":{},"Int32Value":{}}"#),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            typed::<StringValue>(&p, b"not json"),
            Err(DecodeError::Json(_))
        ));
    }

    #[test]
    fn explicit_names_and_ids() {
        let mut p = Processor::new(Encoding::Protobuf);
        p.register_with::<StringValue>(MessageOptions::new().name("S").id(100))
            .unwrap();
        let info = p.register::<Int32Value>().unwrap();
        assert_eq!((info.name.as_str(), info.id), ("Int32Value", 1));
        assert_eq!(
            p.encode(&StringValue {
                value: String::new()
            })
            .unwrap()
            .as_bytes(),
            &[0x00, 100]
        );
        assert!(matches!(
            p.register_with::<Chat>(MessageOptions::new().id(100)),
            Err(ProcessorError::DuplicateId { id: 100, .. })
        ));
        assert!(matches!(
            p.register_with::<Chat>(MessageOptions::new().name("S")),
            Err(ProcessorError::DuplicateName(_))
        ));
        assert_eq!(
            p.register::<Int32Value>().unwrap_err(),
            ProcessorError::DuplicateType(type_name::<Int32Value>())
        );
    }

    #[test]
    fn unrouted_incoming_types_are_an_error_outgoing_are_not() {
        let mut p = Processor::new(Encoding::Json);
        p.register::<StringValue>().unwrap();
        p.register_outgoing::<Int32Value>().unwrap();
        assert_eq!(
            p.validate(),
            Err(ProcessorError::Unrouted(vec!["StringValue".into()]))
        );
        p.handle::<StringValue, _>(|_, _| {}).unwrap();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(
            p.handle::<Int32Value, _>(|_, _| {}),
            Err(ProcessorError::OutgoingOnly(type_name::<Int32Value>()))
        );
        assert_eq!(
            typed::<Int32Value>(&p, br#"{"Int32Value":{}}"#).unwrap_err(),
            DecodeError::Outgoing("Int32Value".into())
        );
        assert_eq!(
            p.handle::<Chat, _>(|_, _| {}),
            Err(ProcessorError::NotRegistered(type_name::<Chat>()))
        );
    }

    #[test]
    fn raw_handlers_get_the_undecoded_body() {
        let mut p = Processor::new(Encoding::Json);
        p.register::<StringValue>().unwrap();
        p.handle_raw::<StringValue, _>(|_, _| {}).unwrap();
        // The body is not decoded, so a body of the wrong shape is fine.
        match p
            .decode(&Bytes::from_static(br#"{"StringValue":[1,2]}"#))
            .unwrap()
            .msg
        {
            DecodedMsg::Raw(raw) => assert_eq!(&raw.body[..], b"[1,2]"),
            DecodedMsg::Typed(_) | DecodedMsg::Forward(_) => panic!("decoded"),
        }
    }

    #[test]
    fn json_only_types_refuse_a_protobuf_processor() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct OnlyJson {
            a: u8,
        }
        let mut p = Processor::new(Encoding::Protobuf);
        assert!(matches!(
            p.register_json::<OnlyJson>(MessageOptions::new()),
            Err(ProcessorError::WrongEncoding { .. })
        ));
        let mut j = Processor::new(Encoding::Json);
        j.register_json::<OnlyJson>(MessageOptions::new()).unwrap();
        assert_eq!(
            j.encode(&OnlyJson { a: 1 }).unwrap().as_bytes(),
            br#"{"OnlyJson":{"a":1}}"#
        );
    }

    fn chat_strategy() -> impl Strategy<Value = Chat> {
        (any::<u64>(), ".{0,40}", any::<i64>()).prop_map(|(room_id, text, ts)| Chat {
            room_id,
            text,
            ts,
        })
    }

    proptest! {
        #[test]
        fn json_round_trip(msg in chat_strategy()) {
            let p = both(Encoding::Json);
            let e = p.encode(&msg).unwrap();
            prop_assert_eq!(typed::<Chat>(&p, e.as_bytes()).unwrap(), msg);
        }

        #[test]
        fn protobuf_round_trip(msg in chat_strategy(), le in any::<bool>()) {
            let mut p = both(Encoding::Protobuf);
            p.set_id_little_endian(le);
            let e = p.encode(&msg).unwrap();
            prop_assert_eq!(typed::<Chat>(&p, e.as_bytes()).unwrap(), msg);
        }

        #[test]
        fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = both(Encoding::Json).decode(&Bytes::from(data.clone()));
            let _ = both(Encoding::Protobuf).decode(&Bytes::from(data));
        }
    }
}
