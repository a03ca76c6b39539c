//! The message registry: which Rust type is which message name (the JSON envelope key) and
//! which protobuf id, and the codecs of each, for both encodings.
//!
//! One [`Registry`] serves JSON and protobuf alike; each type says at registration which
//! codecs it has ([`register`](Registry::register) both, [`register_json`](Registry::register_json)
//! or [`register_protobuf`](Registry::register_protobuf) one). Names default to the bare Rust
//! type name and ids to the registration order, as leaf does; both can be pinned with
//! [`MessageOptions`].
//!
//! Decoding is two steps, so that a server can forward or hand over a body without decoding
//! it: [`open`](Registry::open) finds the entry and the undecoded [`Body`], then
//! [`decode_body`](Registry::decode_body) makes the value. [`decode`](Registry::decode) does
//! both.
//!
//! The payload formats, byte by byte:
//!
//! - JSON: `{"Name":body}`, an object with exactly one key. A key repeated counts once and
//!   its last value wins (as Go's decoder does); two different keys are an error.
//! - protobuf: `| id: u16 | body |`, the id big-endian unless `id_little_endian` (leaf's
//!   `SetByteOrder(true)`, independent of the TCP length's order); an empty body is a
//!   default message.

mod codecs;
mod delivery;
mod error;
mod json;
mod message;
mod payload;
mod protobuf;
#[cfg(test)]
mod tests;

use std::any::{TypeId, type_name};
use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use codecs::{Body, Opened};
pub use delivery::{Delivery, OverLimit, RateLimit};
pub use error::{DecodeError, EncodeError, RegistryError};
pub use message::{Direction, MessageInfo, MessageOptions};

use codecs::{JsonCodec, ProtoCodec, bare_name, json_codec, proto_codec};

/// One registered type.
struct Entry {
    /// Its name, id, type and direction, as lookups hand them out.
    info: MessageInfo,
    /// `{"Name":`, escaped once at registration.
    json_head: Box<[u8]>,
    /// `None`: registered without serde (protobuf only).
    json: Option<JsonCodec>,
    /// `None`: registered without prost (JSON only).
    protobuf: Option<ProtoCodec>,
    /// The key of a latest-per-key type.
    latest_key: Option<delivery::KeyFn>,
}

/// The message types of one side of a protocol and their codecs. Build it at start-up, then
/// share it read-only (it is `Send + Sync`).
///
/// ```
/// use longlink_wire::{Encoding, MessageOptions, Registry};
///
/// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
/// struct Hello {
///     #[prost(string, tag = "1")]
///     name: String,
/// }
///
/// let mut registry = Registry::new();
/// registry.register::<Hello>(MessageOptions::new())?;
///
/// let mut json = Vec::new();
/// registry.encode(&Hello { name: "ann".into() }, Encoding::Json, false, &mut json)?;
/// assert_eq!(json, br#"{"Hello":{"name":"ann"}}"#);
/// let mut pb = Vec::new();
/// registry.encode(&Hello { name: "ann".into() }, Encoding::Protobuf, false, &mut pb)?;
/// assert_eq!(pb, [0x00, 0x00, 0x0a, 0x03, b'a', b'n', b'n']);
///
/// let (index, value) = registry.decode(&pb, Encoding::Protobuf, false)?;
/// assert_eq!(registry.info(index).name, "Hello");
/// assert_eq!(value.downcast::<Hello>().unwrap().name, "ann");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct Registry {
    /// In registration order; an entry's index is its position here.
    entries: Vec<Entry>,
    // foldhash rather than SipHash: every message in and out takes three lookups (a name, a
    // type, an id), on the hot path. The keys are fixed at registration, so a peer cannot
    // flood a table with colliding entries; the seed is random per process.
    by_type: HashMap<TypeId, usize, FastHash>,
    /// By the name's bytes, so that a payload's name is looked up before (and without) a
    /// UTF-8 check: a name found is one registered.
    by_name: HashMap<Box<[u8]>, usize, FastHash>,
    by_id: HashMap<u16, usize, FastHash>,
}

type FastHash = foldhash::fast::RandomState;

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|e| (&e.info.name, e.info.id)))
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    ///
    /// ```
    /// assert!(longlink_wire::Registry::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a type usable with either encoding: serde for JSON, prost for protobuf.
    /// Name: `opts`' or the bare type name; id: `opts`' or the number of types registered
    /// before. Checked in this order: the type, the name, the id.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Pong {}
    /// use longlink_wire::{MessageOptions, Registry, RegistryError};
    ///
    /// let mut registry = Registry::new();
    /// assert_eq!(registry.register::<Ping>(MessageOptions::new())?.id, 0);
    /// let e = registry.register::<Pong>(MessageOptions::new().id(0)).unwrap_err();
    /// assert_eq!(e.to_string(), "protobuf id 0 is taken by Ping and asked for by Pong");
    /// assert_eq!(registry.register::<Pong>(MessageOptions::new())?.id, 1);
    /// # Ok::<(), RegistryError>(())
    /// ```
    pub fn register<T>(&mut self, opts: MessageOptions) -> Result<&MessageInfo, RegistryError>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + 'static,
    {
        self.insert::<T>(opts, Some(json_codec::<T>()), Some(proto_codec::<T>()))
    }

    /// Registers a type that only has serde impls: it encodes and decodes as JSON only.
    ///
    /// ```
    /// use longlink_wire::{Encoding, EncodeError, MessageOptions, Registry};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct OnlyJson { a: u8 }
    ///
    /// let mut registry = Registry::new();
    /// registry.register_json::<OnlyJson>(MessageOptions::new())?;
    /// let mut out = Vec::new();
    /// registry.encode(&OnlyJson { a: 1 }, Encoding::Json, false, &mut out)?;
    /// assert_eq!(out, br#"{"OnlyJson":{"a":1}}"#);
    /// assert!(matches!(
    ///     registry.encode(&OnlyJson { a: 1 }, Encoding::Protobuf, false, &mut out),
    ///     Err(EncodeError::WrongEncoding { .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn register_json<T>(&mut self, opts: MessageOptions) -> Result<&MessageInfo, RegistryError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.insert::<T>(opts, Some(json_codec::<T>()), None)
    }

    /// Registers a type that only has a prost impl: it encodes and decodes as protobuf only.
    ///
    /// ```
    /// use longlink_wire::{Encoding, MessageOptions, Registry};
    ///
    /// #[derive(Clone, PartialEq, prost::Message)]
    /// struct Int32Value { #[prost(int32, tag = "1")] value: i32 }
    ///
    /// let mut registry = Registry::new();
    /// registry.register_protobuf::<Int32Value>(MessageOptions::new().id(1))?;
    /// let mut out = Vec::new();
    /// registry.encode(&Int32Value { value: 150 }, Encoding::Protobuf, false, &mut out)?;
    /// assert_eq!(out, [0x00, 0x01, 0x08, 0x96, 0x01]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn register_protobuf<T>(
        &mut self,
        opts: MessageOptions,
    ) -> Result<&MessageInfo, RegistryError>
    where
        T: prost::Message + Default + Send + 'static,
    {
        self.insert::<T>(opts, None, Some(proto_codec::<T>()))
    }

    fn insert<T: 'static>(
        &mut self,
        opts: MessageOptions,
        json: Option<JsonCodec>,
        protobuf: Option<ProtoCodec>,
    ) -> Result<&MessageInfo, RegistryError> {
        let type_id = TypeId::of::<T>();
        if self.by_type.contains_key(&type_id) {
            return Err(RegistryError::DuplicateType(type_name::<T>()));
        }
        if let delivery::Class::Latest { of, type_name, .. } = &opts.class
            && *of != type_id
        {
            return Err(RegistryError::KeyType {
                key_of: type_name,
                registered: std::any::type_name::<T>(),
            });
        }
        let name = opts.name.unwrap_or_else(|| bare_name::<T>().to_owned());
        if self.by_name.contains_key(name.as_bytes()) {
            return Err(RegistryError::DuplicateName(name));
        }
        // Registration order gives ids 0 to 65534, as leaf does; a pinned id may be any u16
        // (the resume protocol's `LL_Ack` is 65535).
        let id = match opts.id {
            Some(id) => id,
            None => match u16::try_from(self.entries.len()) {
                Ok(id) if id < u16::MAX => id,
                _ => return Err(RegistryError::TooMany),
            },
        };
        if let Some(&other) = self.by_id.get(&id) {
            return Err(RegistryError::DuplicateId {
                id,
                taken_by: self.entries[other].info.name.clone(),
                name,
            });
        }
        let index = self.entries.len();
        self.by_type.insert(type_id, index);
        self.by_name.insert(name.as_bytes().into(), index);
        self.by_id.insert(id, index);
        self.entries.push(Entry {
            json_head: json::head(&name),
            info: MessageInfo {
                name,
                id,
                type_name: type_name::<T>(),
                direction: if opts.outgoing {
                    Direction::Outgoing
                } else {
                    Direction::Incoming
                },
                delivery: opts.class.delivery(),
                rate_limit: opts.rate_limit,
                json: json.is_some(),
                protobuf: protobuf.is_some(),
            },
            json,
            protobuf,
            latest_key: match opts.class {
                delivery::Class::Latest { key, .. } => Some(key),
                _ => None,
            },
        });
        Ok(&self.entries[index].info)
    }

    /// How many types are registered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no type is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every registered message, in registration order (the order of the indexes).
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Pong {}
    /// use longlink_wire::{MessageOptions, Registry};
    ///
    /// let mut registry = Registry::new();
    /// registry.register::<Ping>(MessageOptions::new().id(9))?;
    /// registry.register::<Pong>(MessageOptions::new())?;
    /// let all: Vec<_> = registry.messages().map(|m| (m.name.as_str(), m.id)).collect();
    /// assert_eq!(all, [("Ping", 9), ("Pong", 1)]);
    /// # Ok::<(), longlink_wire::RegistryError>(())
    /// ```
    pub fn messages(&self) -> impl Iterator<Item = &MessageInfo> {
        self.entries.iter().map(|e| &e.info)
    }

    /// The message at `index` (from [`encode`](Self::encode), [`open`](Self::open) or a
    /// lookup). Panics if `index` is not one of this registry's.
    pub fn info(&self, index: usize) -> &MessageInfo {
        &self.entries[index].info
    }

    /// The index of the type `T`.
    pub fn index_of<T: 'static>(&self) -> Option<usize> {
        self.by_type.get(&TypeId::of::<T>()).copied()
    }

    /// The message of the type `T`.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// use longlink_wire::{MessageOptions, Registry};
    ///
    /// let mut registry = Registry::new();
    /// registry.register::<Ping>(MessageOptions::new().name("P").id(3))?;
    /// assert_eq!(registry.info_of::<Ping>().map(|m| (m.name.as_str(), m.id)), Some(("P", 3)));
    /// assert_eq!(registry.index_of::<Ping>(), Some(0));
    /// assert_eq!(registry.index_of_name("P"), Some(0));
    /// assert_eq!(registry.index_of_id(3), Some(0));
    /// assert_eq!(registry.index_of::<String>(), None);
    /// # Ok::<(), longlink_wire::RegistryError>(())
    /// ```
    pub fn info_of<T: 'static>(&self) -> Option<&MessageInfo> {
        self.index_of::<T>().map(|i| &self.entries[i].info)
    }

    /// The index of the message named `name`.
    pub fn index_of_name(&self, name: &str) -> Option<usize> {
        self.index_of_name_bytes(name.as_bytes())
    }

    fn index_of_name_bytes(&self, name: &[u8]) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The key of `value`, a message of the latest-per-key type at `index` (`None` for
    /// another class, or a value of another type).
    pub fn latest_key(&self, index: usize, value: &dyn std::any::Any) -> Option<u64> {
        self.entries.get(index)?.latest_key.as_ref()?(value)
    }

    /// The index of the message with protobuf id `id`.
    pub fn index_of_id(&self, id: u16) -> Option<usize> {
        self.by_id.get(&id).copied()
    }
}
