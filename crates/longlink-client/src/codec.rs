//! [`Codec`]: what a client's two halves share to encode and decode payloads.

use std::sync::Arc;

use crate::{Encoding, Messages, Transport};

/// What both halves need to encode or decode.
#[derive(Clone)]
pub(crate) struct Codec {
    /// The registry, shared by both halves (and maybe by other clients).
    pub(crate) messages: Arc<Messages>,
    /// JSON or protobuf, as the server.
    pub(crate) encoding: Encoding,
    /// Protobuf id byte order, as the server.
    pub(crate) id_little_endian: bool,
    /// TCP or WebSocket: an empty payload is allowed over WebSocket only.
    pub(crate) transport: Transport,
    /// The largest payload sent or received.
    pub(crate) max_payload: usize,
}
