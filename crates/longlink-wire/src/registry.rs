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
mod error;
mod message;
#[cfg(test)]
mod tests;

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use codecs::{Body, Opened};
pub use error::{DecodeError, EncodeError, RegistryError};
pub use message::{Direction, MessageInfo, MessageOptions};

use codecs::{JsonCodec, ProtoCodec, bare_name, json_codec, proto_codec};

use crate::kind::Encoding;
use crate::{json, protobuf};

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
    by_type: HashMap<TypeId, usize>,
    by_name: HashMap<String, usize>,
    by_id: HashMap<u16, usize>,
}

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
    /// before. Checked in this order: the type, the name, the id's range, the id.
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
        let name = opts.name.unwrap_or_else(|| bare_name::<T>().to_owned());
        if self.by_name.contains_key(&name) {
            return Err(RegistryError::DuplicateName(name));
        }
        let id = match opts.id {
            Some(id) => id,
            None => u16::try_from(self.entries.len()).map_err(|_| RegistryError::TooMany)?,
        };
        if id == u16::MAX {
            return Err(RegistryError::TooMany);
        }
        if let Some(&other) = self.by_id.get(&id) {
            return Err(RegistryError::DuplicateId {
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
                json: json.is_some(),
                protobuf: protobuf.is_some(),
            },
            json,
            protobuf,
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
        self.by_name.get(name).copied()
    }

    /// The index of the message with protobuf id `id`.
    pub fn index_of_id(&self, id: u16) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// Appends the payload of `msg` (no TCP length prefix) to `out` and returns the index of
    /// its type: `{"Name":body}` for JSON, `| id | body |` for protobuf, the id big-endian
    /// unless `id_little_endian`. On error nothing is appended.
    ///
    /// ```
    /// use longlink_wire::{Encoding, MessageOptions, Registry};
    ///
    /// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// struct Int32Value { #[prost(int32, tag = "1")] value: i32 }
    ///
    /// let mut registry = Registry::new();
    /// registry.register::<Int32Value>(MessageOptions::new().id(1))?;
    /// let v = Int32Value { value: 150 };
    /// let mut out = Vec::new();
    /// assert_eq!(registry.encode(&v, Encoding::Protobuf, false, &mut out)?, 0);
    /// assert_eq!(out, [0x00, 0x01, 0x08, 0x96, 0x01]);
    /// out.clear();
    /// registry.encode(&v, Encoding::Protobuf, true, &mut out)?;
    /// assert_eq!(out, [0x01, 0x00, 0x08, 0x96, 0x01]);
    /// out.clear();
    /// registry.encode(&v, Encoding::Json, false, &mut out)?;
    /// assert_eq!(out, br#"{"Int32Value":{"value":150}}"#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode<T: 'static>(
        &self,
        msg: &T,
        encoding: Encoding,
        id_little_endian: bool,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeError> {
        let index = self
            .index_of::<T>()
            .ok_or(EncodeError::NotRegistered(type_name::<T>()))?;
        let entry = &self.entries[index];
        let wrong = || EncodeError::WrongEncoding {
            name: entry.info.name.clone(),
            encoding,
        };
        match encoding {
            Encoding::Json => {
                let codec = entry.json.ok_or_else(wrong)?;
                let start = out.len();
                if let Err(e) = (codec.encode)(&entry.json_head, msg, out) {
                    out.truncate(start);
                    return Err(EncodeError::Json {
                        name: entry.info.name.clone(),
                        reason: e.to_string(),
                    });
                }
            }
            Encoding::Protobuf => {
                let codec = entry.protobuf.ok_or_else(wrong)?;
                (codec.encode)(entry.info.id, id_little_endian, msg, out);
            }
        }
        Ok(index)
    }

    /// Finds the registered message a payload names, without decoding its body. An unknown
    /// name or id, a payload that is no envelope, or a type registered without this
    /// encoding's codec is an error. The direction is not checked: see
    /// [`check_incoming`](Self::check_incoming).
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Hello {}
    /// use longlink_wire::{Body, DecodeError, Encoding, MessageOptions, Registry};
    ///
    /// let mut registry = Registry::new();
    /// registry.register::<Hello>(MessageOptions::new())?;
    /// let opened = registry.open(br#"{"Hello":{"x":1}}"#, Encoding::Json, false)?;
    /// assert_eq!(registry.info(opened.index).name, "Hello");
    /// assert!(matches!(opened.body, Body::Json(raw) if raw.get() == r#"{"x":1}"#));
    /// assert_eq!(
    ///     registry.open(br#"{"Bye":{}}"#, Encoding::Json, false).unwrap_err(),
    ///     DecodeError::UnknownName("Bye".into())
    /// );
    /// assert_eq!(
    ///     registry.open(&[0, 9], Encoding::Protobuf, false).unwrap_err(),
    ///     DecodeError::UnknownId(9)
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open<'a>(
        &self,
        payload: &'a [u8],
        encoding: Encoding,
        id_little_endian: bool,
    ) -> Result<Opened<'a>, DecodeError> {
        let (index, body) = match encoding {
            Encoding::Json => {
                let env = json::open(payload)?;
                let index = self
                    .index_of_name(&env.name)
                    .ok_or_else(|| DecodeError::UnknownName(env.name.into_owned()))?;
                (index, Body::Json(env.body))
            }
            Encoding::Protobuf => {
                let (id, body) = protobuf::split_id(payload, id_little_endian)?;
                let index = self.index_of_id(id).ok_or(DecodeError::UnknownId(id))?;
                (index, Body::Protobuf(body))
            }
        };
        let info = &self.entries[index].info;
        if !info.supports(encoding) {
            return Err(DecodeError::WrongEncoding {
                name: info.name.clone(),
                encoding,
            });
        }
        Ok(Opened { index, body })
    }

    /// A server's check that a client may send the message at `index`: an outgoing-only
    /// type is [`DecodeError::Outgoing`]. Panics if `index` is not one of this registry's.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct S2cKick {}
    /// use longlink_wire::{DecodeError, Encoding, MessageOptions, Registry};
    ///
    /// let mut registry = Registry::new();
    /// registry.register::<S2cKick>(MessageOptions::new().outgoing())?;
    /// let opened = registry.open(br#"{"S2cKick":{}}"#, Encoding::Json, false)?;
    /// assert_eq!(registry.check_incoming(opened.index), Err(DecodeError::Outgoing("S2cKick".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_incoming(&self, index: usize) -> Result<(), DecodeError> {
        let info = &self.entries[index].info;
        match info.direction {
            Direction::Incoming => Ok(()),
            Direction::Outgoing => Err(DecodeError::Outgoing(info.name.clone())),
        }
    }

    /// Decodes an opened body into its registered type, boxed. A body that does not decode
    /// is [`DecodeError::BadBody`]. Panics if `opened.index` is not one of this registry's.
    ///
    /// ```
    /// use longlink_wire::{DecodeError, Encoding, MessageOptions, Registry};
    ///
    /// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// struct Hello { #[prost(string, tag = "1")] name: String }
    ///
    /// let mut registry = Registry::new();
    /// registry.register::<Hello>(MessageOptions::new())?;
    /// let opened = registry.open(br#"{"Hello":{"name":"x"}}"#, Encoding::Json, false)?;
    /// let hello = registry.decode_body(&opened)?.downcast::<Hello>().unwrap();
    /// assert_eq!(hello.name, "x");
    /// let bad = registry.open(br#"{"Hello":{"name":1}}"#, Encoding::Json, false)?;
    /// assert!(matches!(registry.decode_body(&bad), Err(DecodeError::BadBody { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decode_body(&self, opened: &Opened<'_>) -> Result<Box<dyn Any + Send>, DecodeError> {
        let entry = &self.entries[opened.index];
        let wrong = |encoding| DecodeError::WrongEncoding {
            name: entry.info.name.clone(),
            encoding,
        };
        match opened.body {
            Body::Json(raw) => {
                let codec = entry.json.ok_or_else(|| wrong(Encoding::Json))?;
                (codec.decode)(&entry.info.name, raw)
            }
            Body::Protobuf(bytes) => {
                let codec = entry.protobuf.ok_or_else(|| wrong(Encoding::Protobuf))?;
                (codec.decode)(&entry.info.name, bytes)
            }
        }
    }

    /// [`open`](Self::open) then [`decode_body`](Self::decode_body): the index of the message
    /// and its value. The direction is not checked.
    ///
    /// ```
    /// use longlink_wire::{Encoding, MessageOptions, Registry};
    ///
    /// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// struct Int32Value { #[prost(int32, tag = "1")] value: i32 }
    ///
    /// let mut registry = Registry::new();
    /// registry.register::<Int32Value>(MessageOptions::new().id(1))?;
    /// let (index, value) = registry.decode(&[0x00, 0x01, 0x08, 0x96, 0x01], Encoding::Protobuf, false)?;
    /// assert_eq!(index, 0);
    /// assert_eq!(value.downcast_ref::<Int32Value>(), Some(&Int32Value { value: 150 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decode(
        &self,
        payload: &[u8],
        encoding: Encoding,
        id_little_endian: bool,
    ) -> Result<(usize, Box<dyn Any + Send>), DecodeError> {
        let opened = self.open(payload, encoding, id_little_endian)?;
        Ok((opened.index, self.decode_body(&opened)?))
    }
}
