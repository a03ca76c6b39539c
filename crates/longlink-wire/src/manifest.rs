//! The message manifest: every registered message with its JSON name, protobuf id, direction
//! and fields, fully described (nested messages, repeated fields, enums, maps, `oneof`), as one
//! JSON document that clients generate code from (`longlink-codegen` in the TypeScript
//! package `longlink-client`) or read at run time.
//!
//! The ids, names and directions come from the registry (what the server really registered);
//! the fields from the application's compiled `.proto` files (a [`FileDescriptorSet`], e.g.
//! from `protox::compile` or `prost_build`'s `file_descriptor_set_path`), matched by message
//! name; the `LL_` messages' from [`protocol_descriptors`]. The document is stable: messages
//! ordered by id, fields by number, types by name, no timestamps.
//!
//! ```json
//! { "format": "longlink-manifest/2",
//!   "messages": [
//!     { "name": "C2S_UserHeartBeat", "id": 0, "direction": "incoming",
//!       "proto": "chat.C2S_UserHeartBeat",
//!       "fields": [ { "name": "ptime", "number": 1, "type": "int64", "repeated": false } ] },
//!     { "name": "S2C_Board", "id": 9, "direction": "outgoing", "proto": "game.S2C_Board",
//!       "fields": [
//!         { "name": "cells", "number": 1, "type": "message", "type_name": ".game.Cell", "repeated": true },
//!         { "name": "scores", "number": 2, "type": "map", "key_type": "string",
//!           "value_type": "int32", "repeated": false },
//!         { "name": "text", "number": 3, "type": "string", "repeated": false, "oneof": "payload" },
//!         { "name": "color", "number": 4, "type": "enum", "type_name": ".game.Color", "repeated": false } ] } ],
//!   "types": [
//!     { "name": ".game.Cell", "kind": "message", "fields": [ ... ] },
//!     { "name": ".game.Color", "kind": "enum", "values": [ { "name": "RED", "number": 0 } ] } ] }
//! ```
//!
//! A field's `type` is a protobuf scalar (`"int32"`, `"uint64"`, `"sint64"`, `"fixed32"`,
//! `"double"`, `"bool"`, `"string"`, `"bytes"`, ...), `"message"` or `"enum"` (with
//! `type_name`, a full name listed in `types`), or `"map"` (with `key_type`, `value_type`
//! and, for a message or enum value, `type_name`). `oneof` names the `oneof` a field belongs
//! to; `optional` marks a proto3 `optional` field. `types` lists every message and enum a
//! registered message reaches, directly or through others.
//!
//! ```
//! use longlink_wire::manifest::{self, Manifest};
//! use longlink_wire::{Registry, resume};
//!
//! let mut registry = Registry::new();
//! resume::register(&mut registry)?;
//! let doc = Manifest::build(registry.messages(), &Default::default());
//! assert_eq!(doc.format, manifest::FORMAT);
//! let ack = doc.messages.iter().find(|m| m.name == "LL_Ack").unwrap();
//! assert_eq!((ack.id, ack.fields[0].name.as_str(), ack.fields[0].kind.as_str()), (65535, "seq", "uint64"));
//! assert!(doc.to_json().contains(r#""format": "longlink-manifest/2""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod build;
mod protocol;

use serde::{Deserialize, Serialize};

pub use prost_types::FileDescriptorSet;
pub use protocol::protocol_descriptors;

/// The manifest's `format` value; bumped on an incompatible change of the document
/// (`/2` added `types`, maps, `oneof` and `optional`).
pub const FORMAT: &str = "longlink-manifest/2";

/// The whole document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Every registered message, by id.
    pub messages: Vec<MessageEntry>,
    /// Every message and enum type the registered messages reach, by full name.
    #[serde(default)]
    pub types: Vec<TypeEntry>,
}

/// One registered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEntry {
    /// The JSON envelope key (`{"C2S_UserLogin": {..}}`).
    pub name: String,
    /// The protobuf id (`| id: u16 BE | body |`).
    pub id: u16,
    /// `"incoming"` (clients may send it) or `"outgoing"` (server to client only).
    pub direction: String,
    /// How the server sends it: `"reliable"`, `"volatile"` (not numbered by a resumable
    /// session: clients do not count it) or `"latest"` (numbered, as reliable). A manifest
    /// without it means `"reliable"`.
    #[serde(default = "reliable")]
    pub delivery: String,
    /// The full protobuf message name (`chat.C2S_UserLogin`), when a descriptor was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    /// Its fields by number; empty when no descriptor was found.
    pub fields: Vec<FieldEntry>,
}

fn reliable() -> String {
    "reliable".to_owned()
}

/// One field of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldEntry {
    /// The field name, which is also its JSON key.
    pub name: String,
    /// The protobuf field number.
    pub number: i32,
    /// A protobuf scalar type (`"int64"`, `"string"`, ...), `"message"`, `"enum"` or `"map"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The message or enum type of a `"message"` / `"enum"` field, or of a map's value
    /// (`.chat.Foo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// A `repeated` field (a map is not).
    pub repeated: bool,
    /// A map's key type (a scalar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    /// A map's value type (a scalar, `"message"` or `"enum"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_type: Option<String>,
    /// The `oneof` this field belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oneof: Option<String>,
    /// A proto3 `optional` field (its presence is tracked).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// A message or enum type that registered messages use, by its full name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeEntry {
    /// The full name with a leading dot (`.chat.Foo`, `.chat.Outer.Inner`).
    pub name: String,
    /// `"message"` or `"enum"`.
    pub kind: String,
    /// A message's fields by number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldEntry>,
    /// An enum's values, in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<EnumValue>,
}

/// One value of an enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumValue {
    /// Its name (`RED`).
    pub name: String,
    /// Its number.
    pub number: i32,
}

impl Manifest {
    /// The document as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).expect("a manifest serializes");
        out.push('\n');
        out
    }
}
