//! The message manifest: every registered message with its JSON name, protobuf id, direction
//! and fields, as one JSON document for client teams to generate code from (and for the
//! browser client `web/longlink.js`, which encodes protobuf from it).
//!
//! `longlink-chat manifest` prints it; the server also serves it at `/manifest.json` on the
//! WebSocket port. It is stable: messages ordered by id, fields by number, no timestamps.
//!
//! ```json
//! { "format": "longlink-manifest/1",
//!   "messages": [
//!     { "name": "C2S_UserHeartBeat", "id": 0, "direction": "incoming", "delivery": "reliable",
//!       "proto": "chat.C2S_UserHeartBeat",
//!       "fields": [ { "name": "ptime", "number": 1, "type": "int64", "repeated": false } ] },
//!     ...
//! ```
//!
//! The ids, names and directions come from the [`Processor`] (what the server really
//! registered); the fields from the compiled `proto/chat.proto` (build.rs writes its
//! `FileDescriptorSet` to `OUT_DIR`), matched by message name. [`document`] works for any
//! processor and descriptor set.

use longlink::processor::{Direction, MessageInfo};
use longlink::{Encoding, Processor};
use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use serde::{Deserialize, Serialize};

/// The compiled `proto/chat.proto`, encoded.
const CHAT_DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chat.fds"));

/// The manifest's `format` value; bumped on an incompatible change of the document.
pub const FORMAT: &str = "longlink-manifest/1";

/// The whole document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Every registered message, by id.
    pub messages: Vec<MessageEntry>,
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
    /// session: clients do not count it) or `"latest"` (numbered, as reliable).
    pub delivery: String,
    /// The full protobuf message name (`chat.C2S_UserLogin`), when a descriptor was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    /// Its fields by number; empty when no descriptor was found.
    pub fields: Vec<FieldEntry>,
}

/// One field of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldEntry {
    /// The field name, which is also its JSON key.
    pub name: String,
    /// The protobuf field number.
    pub number: i32,
    /// The protobuf scalar type (`"int64"`, `"uint64"`, `"string"`, `"int32"`, `"uint32"`,
    /// `"bool"`, `"bytes"`, ...), or `"message"` / `"enum"` with [`FieldEntry::type_name`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The message or enum type of a `"message"` / `"enum"` field (`.chat.Foo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// A `repeated` field.
    pub repeated: bool,
}

/// The chat server's manifest: every chat message ([`crate::msg::register_all`]) with the
/// fields of `proto/chat.proto`, and the session-resume messages (ids 65530 to 65535,
/// `proto/resume.proto`), which the gate registers with `resume_window` on (the default).
pub fn chat() -> Manifest {
    let mut p = Processor::new(Encoding::Json);
    crate::msg::register_all(&mut p).expect("the chat messages register");
    p.register_resume().expect("the resume messages register");
    document(&p, Some(&chat_descriptors()))
}

/// The compiled `proto/chat.proto`.
pub fn chat_descriptors() -> FileDescriptorSet {
    FileDescriptorSet::decode(CHAT_DESCRIPTORS).expect("build.rs wrote a valid descriptor set")
}

/// The manifest of `processor`'s messages; fields from `descriptors`, matched by message name
/// (a message with no descriptor gets no fields).
pub fn document(processor: &Processor, descriptors: Option<&FileDescriptorSet>) -> Manifest {
    let mut infos: Vec<&MessageInfo> = processor.messages().collect();
    infos.sort_by_key(|info| info.id);
    let messages = infos
        .into_iter()
        .map(|info| {
            let found = descriptors.and_then(|set| find(set, &info.name));
            let mut fields: Vec<FieldEntry> = found
                .map(|(_, message)| message.field.iter().map(field).collect())
                .unwrap_or_default();
            fields.sort_by_key(|f| f.number);
            MessageEntry {
                name: info.name.clone(),
                id: info.id,
                direction: match info.direction {
                    Direction::Incoming => "incoming",
                    Direction::Outgoing => "outgoing",
                }
                .to_owned(),
                delivery: info.delivery.as_str().to_owned(),
                proto: found.map(|(package, message)| match package {
                    "" => message.name().to_owned(),
                    package => format!("{package}.{}", message.name()),
                }),
                fields,
            }
        })
        .collect();
    Manifest {
        format: FORMAT.to_owned(),
        messages,
    }
}

/// The document as pretty JSON with a final newline (what `longlink-chat manifest` prints).
pub fn to_json(manifest: &Manifest) -> String {
    let mut out = serde_json::to_string_pretty(manifest).expect("a manifest serializes");
    out.push('\n');
    out
}

/// The top-level message called `name` in any file of `set`, with its file's package.
fn find<'a>(set: &'a FileDescriptorSet, name: &str) -> Option<(&'a str, &'a DescriptorProto)> {
    set.file.iter().find_map(|file| {
        file.message_type
            .iter()
            .find(|m| m.name() == name)
            .map(|m| (file.package(), m))
    })
}

fn field(f: &prost_types::FieldDescriptorProto) -> FieldEntry {
    let kind = match f.r#type() {
        Type::Message | Type::Group => "message".to_owned(),
        Type::Enum => "enum".to_owned(),
        // "TYPE_INT64" -> "int64"
        scalar => scalar
            .as_str_name()
            .trim_start_matches("TYPE_")
            .to_ascii_lowercase(),
    };
    FieldEntry {
        name: f.name().to_owned(),
        number: f.number(),
        type_name: f.type_name.clone().filter(|t| !t.is_empty()),
        kind,
        repeated: f.label() == Label::Repeated,
    }
}
