//! What both ends of a longlink (or leaf) connection share: the framing, the two payload
//! encodings, and the registry of message types. No tasks and no I/O policy: the server
//! (`longlink`) and the client (`longlink-client`) put these under their own sockets.
//!
//! # Layout
//!
//! - [`frame`]: leaf's length prefix for TCP, `| len | payload |`. [`LenCodec`] decodes and
//!   encodes frames on a `BytesMut`, and is a tokio-util `Decoder` / `Encoder` for
//!   `FramedRead` / `FramedWrite`; [`CodecError`] says why a frame was refused.
//! - [`Encoding`] and [`Transport`]: the two settings both ends must agree on (JSON or
//!   protobuf; TCP or WebSocket), with their names for configuration files.
//! - [`registry`]: [`Registry`] maps Rust types to message names and protobuf ids, encodes a
//!   value into a payload and opens a payload into its entry and [`Body`], then decodes it.
//!   Its envelopes are leaf's: JSON `{"Name":{...}}`, protobuf `| id: u16 | body |`.
//! - [`manifest`]: the registered messages fully described (fields, nested types, enums,
//!   maps, `oneof`), as the JSON document clients generate code from.
//! - [`resume`]: the session-resume protocol's seven `LL_` messages (ids 65529 to 65535), how
//!   each side numbers and acknowledges, and [`resume::register`].
//!
//! # A message, end to end
//!
//! ```
//! use bytes::BytesMut;
//! use longlink_wire::{Encoding, LenCodec, MessageOptions, Registry};
//!
//! #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
//! struct Hello {
//!     #[prost(string, tag = "1")]
//!     name: String,
//! }
//!
//! let mut registry = Registry::new();
//! registry.register::<Hello>(MessageOptions::new())?;
//! let codec = LenCodec::default(); // 2-byte big-endian length, 8192-byte limit
//!
//! // Sender: value -> payload -> frame.
//! let mut payload = Vec::new();
//! registry.encode(&Hello { name: "ann".into() }, Encoding::Json, false, &mut payload)?;
//! let mut wire = BytesMut::new();
//! codec.encode(&payload, &mut wire)?;
//! assert_eq!(&wire[..], b"\x00\x18{\"Hello\":{\"name\":\"ann\"}}");
//!
//! // Receiver: frame -> payload -> value.
//! let frame = codec.decode(&mut wire)?.expect("a whole frame");
//! let (index, value) = registry.decode(&frame, Encoding::Json, false)?;
//! assert_eq!(registry.info(index).name, "Hello");
//! assert_eq!(value.downcast::<Hello>().unwrap().name, "ann");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod frame;
mod kind;
pub mod manifest;
pub mod registry;
pub mod resume;

pub use frame::{CodecError, LenCodec, LenCodecBuilder};
pub use kind::{Encoding, ParseKindError, Transport};
pub use registry::{
    Body, DecodeError, Delivery, Direction, EncodeError, MessageInfo, MessageOptions, Opened,
    OverLimit, RateLimit, Registry, RegistryError,
};
