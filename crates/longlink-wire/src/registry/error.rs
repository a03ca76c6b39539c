//! The registry's three errors: registering, encoding, decoding.

use crate::kind::Encoding;

/// A registration mistake, found at start-up.
///
/// ```
/// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
/// # struct Ping {}
/// use longlink_wire::{MessageOptions, Registry, RegistryError};
///
/// let mut registry = Registry::new();
/// registry.register::<Ping>(MessageOptions::new())?;
/// let e = registry.register::<Ping>(MessageOptions::new()).unwrap_err();
/// assert!(matches!(e, RegistryError::DuplicateType(_)));
/// # Ok::<(), RegistryError>(())
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// The same name twice.
    #[error("message name {0:?} is registered twice")]
    DuplicateName(String),
    /// The same Rust type twice.
    #[error("type {0} is registered twice")]
    DuplicateType(&'static str),
    /// The same protobuf id twice.
    #[error("protobuf id {id} is taken by {taken_by} and asked for by {name}")]
    DuplicateId {
        /// The id.
        id: u16,
        /// Who has it.
        taken_by: String,
        /// Who asked for it.
        name: String,
    },
    /// More than 65535 types in registration order (ids 0 to 65534, as leaf gives them;
    /// 65535 can only be pinned).
    #[error("too many message types (at most 65535)")]
    TooMany,
    /// A latest-per-key type whose key function takes another type.
    #[error("the latest-per-key function of {registered} takes {key_of}")]
    KeyType {
        /// The type the key function takes.
        key_of: &'static str,
        /// The type registered.
        registered: &'static str,
    },
}

/// A message that could not be encoded. Nothing is appended.
///
/// ```
/// use longlink_wire::{EncodeError, Encoding, Registry};
///
/// let e = Registry::new().encode(&1u8, Encoding::Json, false, &mut Vec::new()).unwrap_err();
/// assert_eq!(e, EncodeError::NotRegistered("u8"));
/// assert_eq!(e.to_string(), "message u8 not registered");
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    /// The type was never registered with this registry.
    #[error("message {0} not registered")]
    NotRegistered(&'static str),
    /// The type was registered without a codec for this encoding (a JSON-only type sent as
    /// protobuf, or the other way round).
    #[error("message {name} cannot be encoded as {encoding}")]
    WrongEncoding {
        /// The message name.
        name: String,
        /// The encoding asked for.
        encoding: Encoding,
    },
    /// serde_json refused the value.
    #[error("message {name}: json: {reason}")]
    Json {
        /// The message name.
        name: String,
        /// What serde_json said.
        reason: String,
    },
}

/// An incoming payload that could not be turned into a message. A server closes the
/// connection; a client may go on reading.
///
/// ```
/// use longlink_wire::{DecodeError, Encoding, Registry};
///
/// let e = Registry::new().open(&[0x00], Encoding::Protobuf, false).unwrap_err();
/// assert_eq!(e, DecodeError::TooShort(1));
/// assert_eq!(e.to_string(), "protobuf data too short: 1 bytes");
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a one-key JSON object.
    #[error("invalid json data: {0}")]
    Json(String),
    /// A protobuf payload shorter than its 2-byte id.
    #[error("protobuf data too short: {0} bytes")]
    TooShort(usize),
    /// A name nobody registered.
    #[error("message {0:?} not registered")]
    UnknownName(String),
    /// An id nobody registered.
    #[error("message id {0} not registered")]
    UnknownId(u16),
    /// A registered name whose body does not decode into its type.
    #[error("message {name}: bad body: {reason}")]
    BadBody {
        /// The message name.
        name: String,
        /// What the decoder said.
        reason: String,
    },
    /// A registered message whose type has no codec for this encoding.
    #[error("message {name} cannot be decoded as {encoding}")]
    WrongEncoding {
        /// The message name.
        name: String,
        /// The payload's encoding.
        encoding: Encoding,
    },
    /// A client sent a server-to-client message (see
    /// [`Registry::check_incoming`](crate::Registry::check_incoming)).
    #[error("message {0} is outgoing only")]
    Outgoing(String),
}
