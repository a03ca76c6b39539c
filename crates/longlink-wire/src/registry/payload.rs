//! Payloads in and out: encoding a registered message, opening a payload to find its
//! message, decoding its body.

use std::any::{Any, type_name};

use super::{Body, DecodeError, Direction, EncodeError, Opened, Registry, json, protobuf};
use crate::kind::Encoding;

impl Registry {
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
        self.encode_value(index, msg, encoding, id_little_endian, out)?;
        Ok(index)
    }

    /// Like [`encode`](Self::encode), for a value whose type is known only by its index (a
    /// value [`decode`](Self::decode) gave, to encode again in another encoding). A value of
    /// another type than the index's is `NotRegistered`.
    ///
    /// ```
    /// use longlink_wire::{Encoding, MessageOptions, Registry};
    ///
    /// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// struct Int32Value { #[prost(int32, tag = "1")] value: i32 }
    ///
    /// let mut registry = Registry::new();
    /// registry.register::<Int32Value>(MessageOptions::new().id(1))?;
    /// // JSON in, protobuf out.
    /// let (index, value) = registry.decode(br#"{"Int32Value":{"value":150}}"#, Encoding::Json, false)?;
    /// let mut out = Vec::new();
    /// registry.encode_value(index, &*value, Encoding::Protobuf, false, &mut out)?;
    /// assert_eq!(out, [0x00, 0x01, 0x08, 0x96, 0x01]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode_value(
        &self,
        index: usize,
        msg: &dyn Any,
        encoding: Encoding,
        id_little_endian: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let entry = &self.entries[index];
        if self.by_type.get(&msg.type_id()) != Some(&index) {
            return Err(EncodeError::NotRegistered(entry.info.type_name));
        }
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
        Ok(())
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
                (codec.decode)(&entry.info.name, json::Utf8Body::from_str(raw.get()))
            }
            Body::Protobuf(bytes) => {
                let codec = entry.protobuf.ok_or_else(|| wrong(Encoding::Protobuf))?;
                (codec.decode)(&entry.info.name, bytes)
            }
        }
    }

    /// [`decode`](Self::decode) of a JSON payload in one pass, where one pass gives the same
    /// answer: a payload in the plain form `{"Name":body}` (no escapes in the name) whose
    /// body decodes. `None` for every other payload, errors included: then
    /// [`open`](Self::open) and [`decode_body`](Self::decode_body) decide, and say why. The
    /// two-pass path reads the body twice (the envelope's raw value, then the type); this
    /// one once, for half the instructions of a small message.
    ///
    /// ```
    /// use longlink_wire::{Encoding, MessageOptions, Registry};
    ///
    /// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// struct Int32Value { #[prost(int32, tag = "1")] value: i32 }
    ///
    /// let mut registry = Registry::new();
    /// registry.register::<Int32Value>(MessageOptions::new())?;
    /// let (index, value) = registry.decode_plain_json(br#"{"Int32Value":{"value":150}}"#).unwrap();
    /// assert_eq!((index, value.downcast_ref()), (0, Some(&Int32Value { value: 150 })));
    /// // An escaped name, a second key, a bad body: the two passes' to judge.
    /// assert!(registry.decode_plain_json(br#"{"Int32\u0056alue":{"value":1}}"#).is_none());
    /// assert!(registry.decode_plain_json(br#"{"Int32Value":{},"B":1}"#).is_none());
    /// assert!(registry.decode_plain_json(br#"{"Int32Value":{"value":"x"}}"#).is_none());
    /// assert!(registry.decode(br#"{"Int32\u0056alue":{"value":1}}"#, Encoding::Json, false).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decode_plain_json(&self, payload: &[u8]) -> Option<(usize, Box<dyn Any + Send>)> {
        let (name, body) = json::split_plain(payload)?;
        let index = self.index_of_name_bytes(name)?;
        let entry = &self.entries[index];
        let codec = entry.json.filter(|_| entry.info.supports(Encoding::Json))?;
        let value = (codec.decode)(&entry.info.name, json::Utf8Body::new(body)?).ok()?;
        Some((index, value))
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
        if encoding == Encoding::Json {
            if let Some(decoded) = self.decode_plain_json(payload) {
                return Ok(decoded);
            }
        }
        let opened = self.open(payload, encoding, id_little_endian)?;
        Ok((opened.index, self.decode_body(&opened)?))
    }
}
