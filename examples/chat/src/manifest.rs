//! The chat's message manifest ([`longlink::wire::manifest`]): every registered message with
//! its JSON name, protobuf id, direction and fields, for client teams to generate code from
//! (`longlink-codegen` of the TypeScript package `clients/typescript`) and for the browser
//! client, which encodes protobuf from it.
//!
//! `longlink-chat manifest` prints it; the gate also serves it at `/manifest.json` on the
//! WebSocket port ([`GateBuilder::serve_manifest`](longlink::gate::GateBuilder::serve_manifest)).
//! The fields come from the compiled `proto/chat.proto` (build.rs writes its
//! `FileDescriptorSet` to `OUT_DIR`); the `LL_` messages' from the library.

use longlink::wire::manifest::{FileDescriptorSet, Manifest};
use longlink::{Encoding, Processor};
use prost::Message as _;

/// The compiled `proto/chat.proto`, encoded.
const CHAT_DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chat.fds"));

/// The chat server's manifest: every chat message ([`crate::msg::register_all`]) with the
/// fields of `proto/chat.proto`, and the session-resume messages (ids 65529 to 65535), which
/// the gate registers with `resume_window` on (the default).
pub fn chat() -> Manifest {
    let mut p = Processor::new(Encoding::Json);
    crate::msg::register_all(&mut p).expect("the chat messages register");
    p.register_resume().expect("the resume messages register");
    p.manifest(&chat_descriptors())
}

/// The compiled `proto/chat.proto`.
pub fn chat_descriptors() -> FileDescriptorSet {
    FileDescriptorSet::decode(CHAT_DESCRIPTORS).expect("build.rs wrote a valid descriptor set")
}

/// The document as pretty JSON with a final newline (what `longlink-chat manifest` prints).
pub fn to_json(manifest: &Manifest) -> String {
    manifest.to_json()
}
