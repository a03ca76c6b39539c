//! The client's message registry: which Rust type is which message name (JSON) and id
//! (protobuf), and the codecs for both encodings.

use std::any::{Any, TypeId, type_name};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::config::Encoding;
use crate::error::{Error, Result};

type Value = Box<dyn Any + Send>;
type JsonDecode = fn(&str) -> Result<Value, String>;
type JsonEncode = fn(&dyn Any, &mut Vec<u8>) -> Result<(), String>;
type ProtoDecode = fn(&[u8]) -> Result<Value, String>;
type ProtoEncode = fn(&dyn Any, &mut Vec<u8>);

struct Entry {
    name: Arc<str>,
    id: u16,
    type_name: &'static str,
    /// `{"Name":`, escaped once.
    json_head: Vec<u8>,
    json_decode: JsonDecode,
    json_encode: JsonEncode,
    proto_decode: ProtoDecode,
    proto_encode: ProtoEncode,
}

/// The message types a client sends and receives, registered like the server's
/// `longlink::Processor`: a JSON name (the bare Rust type name unless given) and a protobuf
/// id (registration order from 0 unless given). One registry serves both encodings; share it
/// between many connections as an `Arc<Messages>`.
///
/// Unlike the server's processor there is no direction: every registered type can be both
/// sent and received.
///
/// ```
/// use longlink_client::{Encoding, Messages};
///
/// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
/// struct Hello {
///     #[prost(string, tag = "1")]
///     name: String,
/// }
///
/// let mut messages = Messages::new();
/// messages.register::<Hello>()?;
/// let payload = messages.encode(&Hello { name: "ann".into() }, Encoding::Json, false)?;
/// assert_eq!(payload, br#"{"Hello":{"name":"ann"}}"#);
/// let msg = messages.decode(&payload, Encoding::Json, false)?;
/// assert_eq!(msg.downcast::<Hello>().unwrap().name, "ann");
/// # Ok::<(), longlink_client::Error>(())
/// ```
#[derive(Default)]
pub struct Messages {
    entries: Vec<Entry>,
    by_type: HashMap<TypeId, usize>,
    by_name: HashMap<Arc<str>, usize>,
    by_id: HashMap<u16, usize>,
}

impl fmt::Debug for Messages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (&*e.name, e.id)))
            .finish()
    }
}

/// The bare type name, as the server derives it: no module path, no generics.
fn bare_name<T>() -> &'static str {
    let full = type_name::<T>();
    let head = full.split('<').next().unwrap_or(full);
    head.rsplit("::").next().unwrap_or(head)
}

fn json_decode<T: DeserializeOwned + Send + 'static>(body: &str) -> Result<Value, String> {
    serde_json::from_str::<T>(body)
        .map(|v| Box::new(v) as Value)
        .map_err(|e| e.to_string())
}

fn json_encode<T: Serialize + 'static>(msg: &dyn Any, out: &mut Vec<u8>) -> Result<(), String> {
    let msg = msg.downcast_ref::<T>().ok_or("wrong type")?;
    serde_json::to_writer(out, msg).map_err(|e| e.to_string())
}

fn proto_decode<T: prost::Message + Default + Send + 'static>(
    body: &[u8],
) -> Result<Value, String> {
    T::decode(body)
        .map(|v| Box::new(v) as Value)
        .map_err(|e| e.to_string())
}

fn proto_encode<T: prost::Message + 'static>(msg: &dyn Any, out: &mut Vec<u8>) {
    if let Some(msg) = msg.downcast_ref::<T>() {
        out.reserve(msg.encoded_len());
        msg.encode_raw(out);
    }
}

impl Messages {
    /// An empty registry.
    ///
    /// ```
    /// let messages = longlink_client::Messages::new();
    /// assert_eq!(messages.len(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `T` under its bare type name, with the next id in registration order (the
    /// number of types registered before it).
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// let mut messages = longlink_client::Messages::new();
    /// messages.register::<Ping>()?;
    /// assert_eq!(messages.id_of::<Ping>(), Some(0));
    /// assert_eq!(messages.name_of::<Ping>(), Some("Ping"));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn register<T>(&mut self) -> Result<&mut Self>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + 'static,
    {
        let id = u16::try_from(self.entries.len()).map_err(|_| Error::TooMany)?;
        self.register_with::<T>(bare_name::<T>(), id)
    }

    /// Registers `T` under an explicit name and protobuf id (as the server's
    /// `MessageOptions::new().name(..).id(..)`).
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct C2sUserHeartBeat { #[prost(int64, tag = "1")] ptime: i64 }
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct S2cKick { #[prost(string, tag = "1")] reason: String }
    /// let mut messages = longlink_client::Messages::new();
    /// messages
    ///     .register_with::<C2sUserHeartBeat>("C2S_UserHeartBeat", 0)?
    ///     .register_with::<S2cKick>("S2C_Kick", 7)?;
    /// assert_eq!(messages.id_of::<S2cKick>(), Some(7));
    /// assert!(messages.register_with::<S2cKick>("Other", 8).is_err()); // the type again
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn register_with<T>(&mut self, name: impl Into<String>, id: u16) -> Result<&mut Self>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + 'static,
    {
        let name: String = name.into();
        if self.by_type.contains_key(&TypeId::of::<T>()) {
            return Err(Error::DuplicateType(type_name::<T>()));
        }
        if self.by_name.contains_key(name.as_str()) {
            return Err(Error::DuplicateName(name));
        }
        if id == u16::MAX {
            return Err(Error::TooMany);
        }
        if let Some(&other) = self.by_id.get(&id) {
            return Err(Error::DuplicateId {
                id,
                taken_by: self.entries[other].name.to_string(),
                name,
            });
        }
        let mut json_head = Vec::with_capacity(name.len() + 4);
        json_head.push(b'{');
        serde_json::to_writer(&mut json_head, &name).map_err(|e| Error::Encode {
            name: name.clone(),
            reason: e.to_string(),
        })?;
        json_head.push(b':');
        let name: Arc<str> = name.into();
        let index = self.entries.len();
        self.entries.push(Entry {
            name: name.clone(),
            id,
            type_name: type_name::<T>(),
            json_head,
            json_decode: json_decode::<T>,
            json_encode: json_encode::<T>,
            proto_decode: proto_decode::<T>,
            proto_encode: proto_encode::<T>,
        });
        self.by_type.insert(TypeId::of::<T>(), index);
        self.by_name.insert(name, index);
        self.by_id.insert(id, index);
        Ok(self)
    }

    /// How many types are registered.
    ///
    /// ```
    /// assert!(longlink_client::Messages::new().is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no type is registered.
    ///
    /// ```
    /// assert!(longlink_client::Messages::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name `T` is registered under.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// let mut messages = longlink_client::Messages::new();
    /// messages.register_with::<Ping>("P", 3)?;
    /// assert_eq!(messages.name_of::<Ping>(), Some("P"));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn name_of<T: 'static>(&self) -> Option<&str> {
        self.entry_of::<T>().map(|e| &*e.name)
    }

    /// The protobuf id `T` is registered under.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// let mut messages = longlink_client::Messages::new();
    /// messages.register_with::<Ping>("P", 3)?;
    /// assert_eq!(messages.id_of::<Ping>(), Some(3));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn id_of<T: 'static>(&self) -> Option<u16> {
        self.entry_of::<T>().map(|e| e.id)
    }

    fn entry_of<T: 'static>(&self) -> Option<&Entry> {
        self.by_type
            .get(&TypeId::of::<T>())
            .map(|&i| &self.entries[i])
    }

    /// Encodes a registered message into one payload (no TCP length prefix): `{"Name":{..}}`
    /// for JSON, `| id: u16 | body |` for protobuf, the id big-endian unless
    /// `id_little_endian`.
    ///
    /// ```
    /// use longlink_client::{Encoding, Messages};
    ///
    /// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// struct Int32Value {
    ///     #[prost(int32, tag = "1")]
    ///     value: i32,
    /// }
    ///
    /// let mut messages = Messages::new();
    /// messages.register_with::<Int32Value>("Int32Value", 1)?;
    /// let v = Int32Value { value: 150 };
    /// assert_eq!(messages.encode(&v, Encoding::Protobuf, false)?, [0x00, 0x01, 0x08, 0x96, 0x01]);
    /// assert_eq!(messages.encode(&v, Encoding::Protobuf, true)?, [0x01, 0x00, 0x08, 0x96, 0x01]);
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn encode<T: 'static>(
        &self,
        msg: &T,
        encoding: Encoding,
        id_little_endian: bool,
    ) -> Result<Vec<u8>> {
        let entry = self
            .entry_of::<T>()
            .ok_or(Error::NotRegistered(type_name::<T>()))?;
        let mut out = Vec::with_capacity(64);
        match encoding {
            Encoding::Json => {
                out.extend_from_slice(&entry.json_head);
                (entry.json_encode)(msg, &mut out).map_err(|reason| Error::Encode {
                    name: entry.name.to_string(),
                    reason,
                })?;
                out.push(b'}');
            }
            Encoding::Protobuf => {
                let id = if id_little_endian {
                    entry.id.to_le_bytes()
                } else {
                    entry.id.to_be_bytes()
                };
                out.extend_from_slice(&id);
                (entry.proto_encode)(msg, &mut out);
            }
        }
        Ok(out)
    }

    /// Decodes one payload into the registered type it names. An unknown name or id, or a
    /// body that does not decode, is an error.
    ///
    /// ```
    /// use longlink_client::{Encoding, Error, Messages};
    ///
    /// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// struct Hello {
    ///     #[prost(string, tag = "1")]
    ///     name: String,
    /// }
    ///
    /// let mut messages = Messages::new();
    /// messages.register::<Hello>()?;
    /// let msg = messages.decode(br#"{"Hello":{"name":"x"}}"#, Encoding::Json, false)?;
    /// assert_eq!((msg.name(), msg.id()), ("Hello", 0));
    /// assert!(matches!(
    ///     messages.decode(br#"{"Bye":{}}"#, Encoding::Json, false),
    ///     Err(Error::UnknownName(_))
    /// ));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn decode(
        &self,
        payload: &[u8],
        encoding: Encoding,
        id_little_endian: bool,
    ) -> Result<Message> {
        match encoding {
            Encoding::Json => {
                let map: BTreeMap<String, &RawValue> =
                    serde_json::from_slice(payload).map_err(|e| Error::Envelope(e.to_string()))?;
                if map.len() != 1 {
                    return Err(Error::Envelope(format!(
                        "the object has {} keys, not exactly one",
                        map.len()
                    )));
                }
                let (name, body) = map.into_iter().next().expect("one key");
                let &index = self
                    .by_name
                    .get(name.as_str())
                    .ok_or(Error::UnknownName(name))?;
                let entry = &self.entries[index];
                let value = (entry.json_decode)(body.get()).map_err(|reason| Error::Decode {
                    name: entry.name.to_string(),
                    reason,
                })?;
                Ok(entry.message(value))
            }
            Encoding::Protobuf => {
                if payload.len() < 2 {
                    return Err(Error::TooShort(payload.len()));
                }
                let b = [payload[0], payload[1]];
                let id = if id_little_endian {
                    u16::from_le_bytes(b)
                } else {
                    u16::from_be_bytes(b)
                };
                let &index = self.by_id.get(&id).ok_or(Error::UnknownId(id))?;
                let entry = &self.entries[index];
                let value =
                    (entry.proto_decode)(&payload[2..]).map_err(|reason| Error::Decode {
                        name: entry.name.to_string(),
                        reason,
                    })?;
                Ok(entry.message(value))
            }
        }
    }
}

impl Entry {
    fn message(&self, value: Value) -> Message {
        Message {
            name: self.name.clone(),
            id: self.id,
            type_name: self.type_name,
            value,
        }
    }
}

/// One received message: its registered name and id, and the decoded value, to be taken out
/// with [`downcast`](Message::downcast) or looked at with [`downcast_ref`](Message::downcast_ref).
///
/// ```
/// use longlink_client::{Encoding, Messages};
///
/// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
/// struct Hello {
///     #[prost(string, tag = "1")]
///     name: String,
/// }
///
/// let mut messages = Messages::new();
/// messages.register::<Hello>()?;
/// let msg = messages.decode(&[0, 0, 0x0a, 1, b'x'], Encoding::Protobuf, false)?;
/// assert!(msg.is::<Hello>());
/// assert_eq!(msg.downcast_ref::<Hello>().unwrap().name, "x");
/// let hello: Hello = msg.downcast().unwrap();
/// assert_eq!(hello.name, "x");
/// # Ok::<(), longlink_client::Error>(())
/// ```
pub struct Message {
    name: Arc<str>,
    id: u16,
    type_name: &'static str,
    value: Value,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("name", &&*self.name)
            .field("id", &self.id)
            .field("type", &self.type_name)
            .finish_non_exhaustive()
    }
}

impl Message {
    /// The registered name (the JSON envelope key).
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register::<Ping>()?;
    /// let msg = messages.decode(br#"{"Ping":{}}"#, longlink_client::Encoding::Json, false)?;
    /// assert_eq!(msg.name(), "Ping");
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registered protobuf id.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register_with::<Ping>("Ping", 5)?;
    /// let msg = messages.decode(&[0, 5], longlink_client::Encoding::Protobuf, false)?;
    /// assert_eq!(msg.id(), 5);
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The Rust type's full name (`std::any::type_name`).
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register::<Ping>()?;
    /// let msg = messages.decode(br#"{"Ping":{}}"#, longlink_client::Encoding::Json, false)?;
    /// assert!(msg.type_name().ends_with("Ping"));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// Whether the message is a `T`.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register::<Ping>()?;
    /// let msg = messages.decode(br#"{"Ping":{}}"#, longlink_client::Encoding::Json, false)?;
    /// assert!(msg.is::<Ping>() && !msg.is::<String>());
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn is<T: Any>(&self) -> bool {
        self.value.is::<T>()
    }

    /// A reference to the value if it is a `T`.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping { #[prost(int32, tag = "1")] n: i32 }
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register::<Ping>()?;
    /// let msg = messages.decode(br#"{"Ping":{"n":4}}"#, longlink_client::Encoding::Json, false)?;
    /// assert_eq!(msg.downcast_ref::<Ping>().map(|p| p.n), Some(4));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.value.downcast_ref::<T>()
    }

    /// The value if it is a `T`; otherwise the message back.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping { #[prost(int32, tag = "1")] n: i32 }
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register::<Ping>()?;
    /// let msg = messages.decode(br#"{"Ping":{"n":4}}"#, longlink_client::Encoding::Json, false)?;
    /// let msg = msg.downcast::<String>().unwrap_err(); // not a String: handed back
    /// assert_eq!(msg.downcast::<Ping>().unwrap().n, 4);
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn downcast<T: Any>(self) -> Result<T, Message> {
        match self.value.downcast::<T>() {
            Ok(v) => Ok(*v),
            Err(value) => Err(Message { value, ..self }),
        }
    }
}
