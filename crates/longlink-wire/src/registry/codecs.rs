//! The undecoded [`Body`] of a payload, and each registered type's codecs: plain function
//! pointers, made once per type at registration.

use std::any::{Any, type_name};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::{DecodeError, json, protobuf};

/// The entry a payload names, and its body still undecoded: from [`Registry::open`](crate::Registry::open).
#[derive(Debug, Clone, Copy)]
pub struct Opened<'a> {
    /// The entry's index in the registry (see [`Registry::info`](crate::Registry::info)).
    pub index: usize,
    /// The undecoded body.
    pub body: Body<'a>,
}

/// An undecoded body, as each encoding finds it, borrowed from the payload.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// The value under the envelope's one key.
    Json(&'a RawValue),
    /// The bytes after the 2-byte id (maybe none).
    Protobuf(&'a [u8]),
}

impl<'a> Body<'a> {
    /// The body's bytes as they are in the payload: a JSON value's raw text, or the bytes
    /// after the protobuf id. A subslice of the payload, so `Bytes::slice_ref` takes it.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Hello {}
    /// use longlink_wire::{Encoding, MessageOptions, Registry};
    ///
    /// let mut registry = Registry::new();
    /// registry.register::<Hello>(MessageOptions::new())?;
    /// let opened = registry.open(br#"{"Hello":[1,2]}"#, Encoding::Json, false)?;
    /// assert_eq!(opened.body.as_bytes(), b"[1,2]");
    /// let opened = registry.open(&[0, 0, 0x08, 0x01], Encoding::Protobuf, false)?;
    /// assert_eq!(opened.body.as_bytes(), &[0x08, 0x01]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Body::Json(raw) => raw.get().as_bytes(),
            Body::Protobuf(bytes) => bytes,
        }
    }
}

pub(super) type Value = Box<dyn Any + Send>;

/// A type's JSON codec. The encoder gets the `&dyn Any` of the type the entry was found by,
/// so its downcast cannot fail.
#[derive(Clone, Copy)]
pub(super) struct JsonCodec {
    /// A name (for errors) and a body.
    pub(super) decode: fn(&str, json::Utf8Body<'_>) -> Result<Value, DecodeError>,
    pub(super) encode: fn(&[u8], &dyn Any, &mut Vec<u8>) -> serde_json::Result<()>,
}

/// A type's protobuf codec; the encoder writes the id too.
#[derive(Clone, Copy)]
pub(super) struct ProtoCodec {
    pub(super) decode: fn(&str, &[u8]) -> Result<Value, DecodeError>,
    pub(super) encode: fn(u16, bool, &dyn Any, &mut Vec<u8>),
}

pub(super) fn json_codec<T: Serialize + DeserializeOwned + Send + 'static>() -> JsonCodec {
    fn decode<T: DeserializeOwned + Send + 'static>(
        name: &str,
        body: json::Utf8Body<'_>,
    ) -> Result<Value, DecodeError> {
        Ok(Box::new(json::decode_body::<T>(name, body)?))
    }
    fn encode<T: Serialize + 'static>(
        head: &[u8],
        msg: &dyn Any,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        match msg.downcast_ref::<T>() {
            Some(msg) => json::encode(head, msg, out),
            None => Err(serde::ser::Error::custom("not the registered type")),
        }
    }
    JsonCodec {
        decode: decode::<T>,
        encode: encode::<T>,
    }
}

pub(super) fn proto_codec<T: prost::Message + Default + Send + 'static>() -> ProtoCodec {
    fn decode<T: prost::Message + Default + Send + 'static>(
        name: &str,
        body: &[u8],
    ) -> Result<Value, DecodeError> {
        Ok(Box::new(protobuf::decode_body::<T>(name, body)?))
    }
    fn encode<T: prost::Message + 'static>(
        id: u16,
        little_endian: bool,
        msg: &dyn Any,
        out: &mut Vec<u8>,
    ) {
        if let Some(msg) = msg.downcast_ref::<T>() {
            protobuf::encode(id, little_endian, msg, out);
        }
    }
    ProtoCodec {
        decode: decode::<T>,
        encode: encode::<T>,
    }
}

/// The bare type name, as leaf uses Go's bare type name: no module path, no generics.
pub(super) fn bare_name<T>() -> &'static str {
    let full = type_name::<T>();
    let head = full.split('<').next().unwrap_or(full);
    head.rsplit("::").next().unwrap_or(head)
}
