//! [`Codec`]: one gate's messages as bytes. It is the message registry of
//! [`longlink_wire`] (the same one the client uses) fixed to the gate's encoding and protobuf
//! id byte order, plus the per-type `longlink_messages_out_total` counters. Every agent of the
//! gate holds it to encode what it is asked to write; the [`Processor`](crate::Processor)
//! holds it to decode what clients send.
//!
//! ```
//! use longlink::{Encoding, Processor};
//!
//! #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
//! struct Int32Value {
//!     #[prost(int32, tag = "1")]
//!     value: i32,
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut processor = Processor::new(Encoding::Protobuf);
//! processor.register_with::<Int32Value>(longlink::processor::MessageOptions::new().id(1).outgoing())?;
//! let encoded = processor.codec().encode(&Int32Value { value: 150 })?;
//! assert_eq!(encoded.as_bytes(), &[0x00, 0x01, 0x08, 0x96, 0x01]); // id 1, then the body
//! # Ok(()) }
//! ```

use std::any::Any;
use std::sync::OnceLock;

use bytes::Bytes;
use longlink_wire::{Delivery, Encoding, MessageInfo, Registry};

pub use longlink_wire::{DecodeError, EncodeError};

use crate::metrics::{Delivered, MsgMetrics, MsgSlot};

/// Why a message in a JSON envelope could not be encoded for the gate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not a one-key object, an unknown name, or a body that is not the type's.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The type has no codec for the gate's encoding.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// One of the gate's own protocol messages (`LL_*`, session resume): the gate alone
    /// sends them, numbered and in order; one pushed from outside would break the client's
    /// count.
    #[error("{0} is one of the gate's protocol messages (LL_*), not the application's")]
    Protocol(String),
}

/// How one payload is queued: its type's [`Delivery`] class, with the type and key of a
/// latest-per-key message (at most one of a type and key waits in a queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    Reliable,
    Volatile,
    Latest { index: u32, key: u64 },
}

/// A payload's [`Tag`] and its type's index in the registry (`None`: not one of the
/// registry's, as a payload from another node may be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Class {
    pub(crate) tag: Tag,
    pub(crate) index: Option<usize>,
}

impl Class {
    const UNKNOWN: Class = Class {
        tag: Tag::Reliable,
        index: None,
    };
}

/// A message already encoded for one gate's wire: encode once, write to many agents. It
/// keeps its type's delivery class, so a broadcast queues it as the type says.
#[derive(Debug, Clone)]
pub struct Encoded {
    payload: Bytes,
    /// `longlink_messages_out_total` of its type, counted per write.
    sent: Option<crate::metrics::FastCounter>,
    /// Its delivery class; for a payload from another node, found at its first write.
    class: OnceLock<Class>,
}

impl PartialEq for Encoded {
    fn eq(&self, other: &Self) -> bool {
        self.payload == other.payload
    }
}

impl Eq for Encoded {}

impl Encoded {
    /// A payload as it came from another node (already encoded there; counted there).
    pub(crate) fn from_wire(payload: Bytes) -> Encoded {
        Encoded {
            payload,
            sent: None,
            class: OnceLock::new(),
        }
    }

    /// Its delivery class, found by `codec` (once) for a payload from another node.
    pub(crate) fn class(&self, codec: &Codec) -> Class {
        *self
            .class
            .get_or_init(|| codec.classify_payload(&self.payload))
    }

    /// The payload bytes (without any TCP length prefix).
    pub fn as_bytes(&self) -> &[u8] {
        &self.payload
    }

    /// The payload, shared.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.payload
    }

    /// Payload length.
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the payload is empty (never, for a registered message).
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// Counts one write of it (`longlink_messages_out_total`).
    pub(crate) fn count_sent(&self) {
        if let Some(sent) = &self.sent {
            sent.increment(1);
        }
    }
}

/// The registry in one encoding: encodes for agents, decodes for the processor.
pub struct Codec {
    /// Name, id and both codecs of every registered type.
    registry: Registry,
    /// The gate's `encoding`.
    encoding: Encoding,
    /// leaf's protobuf `SetByteOrder`: the id's byte order, independent of the TCP length's.
    id_little_endian: bool,
    /// Per registered type (by index), its metric handles, made on first use.
    metrics: Vec<MsgSlot>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("encoding", &self.encoding)
            .field("messages", &self.registry.len())
            .finish()
    }
}

impl Codec {
    pub(crate) fn new(encoding: Encoding) -> Codec {
        Codec {
            registry: Registry::new(),
            encoding,
            id_little_endian: false,
            metrics: Vec::new(),
        }
    }

    /// The wire encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Whether protobuf ids are little-endian.
    pub fn id_little_endian(&self) -> bool {
        self.id_little_endian
    }

    pub(crate) fn set_id_little_endian(&mut self, little_endian: bool) {
        self.id_little_endian = little_endian;
    }

    /// The registry underneath.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers through `f` (one of the registry's `register*`), and gives the new type its
    /// metric slot.
    pub(crate) fn register<E>(
        &mut self,
        f: impl FnOnce(&mut Registry) -> Result<&MessageInfo, E>,
    ) -> Result<usize, E> {
        f(&mut self.registry)?;
        self.metrics.push(MsgSlot::default());
        Ok(self.registry.len() - 1)
    }

    /// Registers several types through `f`, each with its metric slot.
    pub(crate) fn register_all<E>(
        &mut self,
        f: impl FnOnce(&mut Registry) -> Result<(), E>,
    ) -> Result<(), E> {
        let result = f(&mut self.registry);
        self.metrics
            .resize_with(self.registry.len(), MsgSlot::default);
        result
    }

    /// The metric handles of the type at `index`, once metrics are on.
    pub(crate) fn metrics(&self, index: usize) -> Option<&MsgMetrics> {
        self.metrics[index].get(&self.registry.info(index).name)
    }

    /// Encodes a message given in leaf's JSON envelope (`{"S2C_Message":{..}}`, checked
    /// against the registry) in this codec's encoding: a service that speaks only JSON can
    /// push to protobuf clients. For the server API, which refuses the gate's own `LL_*`
    /// messages ([`EnvelopeError::Protocol`]).
    pub fn encode_envelope(&self, json: &[u8]) -> Result<Encoded, EnvelopeError> {
        let (index, value) = self.registry.decode(json, Encoding::Json, false)?;
        let name = &self.registry.info(index).name;
        if longlink_wire::resume::is_protocol_name(name) {
            return Err(EnvelopeError::Protocol(name.clone()));
        }
        let mut out = Vec::with_capacity(json.len());
        self.registry.encode_value(
            index,
            &*value,
            self.encoding,
            self.id_little_endian,
            &mut out,
        )?;
        Ok(Encoded {
            payload: Bytes::from(out),
            sent: self.metrics(index).map(|m| m.sent.clone()),
            class: OnceLock::from(self.classify(index, &*value)),
        })
    }

    /// Encodes a registered message into its payload (no TCP length prefix).
    pub fn encode<T: 'static>(&self, msg: &T) -> Result<Encoded, EncodeError> {
        let (payload, index) = self.encode_indexed(msg)?;
        Ok(Encoded {
            payload,
            sent: self.metrics(index).map(|m| m.sent.clone()),
            class: OnceLock::from(self.classify(index, msg)),
        })
    }

    /// The class of `value`, a message of the type at `index`. A latest-per-key message
    /// whose key cannot be taken goes as reliable.
    pub(crate) fn classify(&self, index: usize, value: &dyn Any) -> Class {
        let tag = match self.registry.info(index).delivery {
            Delivery::Reliable => Tag::Reliable,
            Delivery::Volatile => Tag::Volatile,
            Delivery::Latest => match self.registry.latest_key(index, value) {
                Some(key) => Tag::Latest {
                    index: index as u32,
                    key,
                },
                None => Tag::Reliable,
            },
        };
        Class {
            tag,
            index: Some(index),
        }
    }

    /// The class of an encoded payload (from another node): its type found by its name or
    /// id, and for a latest-per-key type its body decoded for the key. One that does not
    /// open goes as reliable.
    pub(crate) fn classify_payload(&self, payload: &[u8]) -> Class {
        let Ok(opened) = self
            .registry
            .open(payload, self.encoding, self.id_little_endian)
        else {
            return Class::UNKNOWN;
        };
        let index = opened.index;
        match self.registry.info(index).delivery {
            Delivery::Latest => match self.registry.decode_body(&opened) {
                Ok(value) => self.classify(index, &*value),
                Err(_) => Class {
                    tag: Tag::Reliable,
                    index: Some(index),
                },
            },
            _ => self.classify(index, &()),
        }
    }

    /// Encodes a registered message: its payload and its type's index, for
    /// [`count_sent`](Self::count_sent).
    pub(crate) fn encode_indexed<T: 'static>(
        &self,
        msg: &T,
    ) -> Result<(Bytes, usize), EncodeError> {
        let mut out = Vec::with_capacity(64);
        let index = self
            .registry
            .encode(msg, self.encoding, self.id_little_endian, &mut out)?;
        Ok((Bytes::from(out), index))
    }

    /// Counts one message of the type at `index` that its class or rate limit acted on.
    pub(crate) fn count_delivered(&self, index: usize, what: Delivered) {
        if let Some(m) = self.metrics(index) {
            m.delivered(&self.registry.info(index).name, what);
        }
    }

    /// Counts one write of the type at `index` (`longlink_messages_out_total`).
    pub(crate) fn count_sent(&self, index: usize) {
        if let Some(m) = self.metrics(index) {
            m.sent.increment(1);
        }
    }
}
