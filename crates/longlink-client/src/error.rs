//! The client's one error type.

/// What went wrong. Errors from [`Messages`](crate::Messages) registration, from encoding and
/// from decoding one payload leave the connection usable; [`Error::Closed`], [`Error::Io`],
/// [`Error::WebSocket`] and [`Error::Protocol`] mean it is gone.
///
/// ```
/// use longlink_client::Error;
///
/// let e = Error::Closed { code: Some(1009), reason: "too big".into() };
/// assert!(e.is_closed());
/// assert_eq!(e.to_string(), "connection closed (code 1009): too big");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is out of range, or the TLS material is unusable.
    #[error("invalid client config: {0}")]
    Config(String),
    /// Connecting (TCP, TLS and the WebSocket handshake) took longer than
    /// `connect_timeout`.
    #[error("connecting to {0} timed out")]
    ConnectTimeout(String),
    /// A socket or TLS error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A WebSocket error (handshake or protocol).
    #[error("websocket: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// The server closed the connection: end of stream, or a WebSocket close frame (with its
    /// code, if it had one).
    #[error("connection closed{}: {reason}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Closed {
        /// The WebSocket close code, if any.
        code: Option<u16>,
        /// What is known of why.
        reason: String,
    },
    /// The server broke the framing (a TCP frame of length 0 or over `max_msg_len`).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// An outgoing payload of this length is not allowed (1 to `max_msg_len` bytes; TCP also
    /// caps it at what the length field holds). Nothing was sent.
    #[error("payload of {len} bytes is outside 1..={max}")]
    BadLength {
        /// The payload's length.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// The same message name registered twice.
    #[error("message name {0:?} is registered twice")]
    DuplicateName(String),
    /// The same Rust type registered twice.
    #[error("type {0} is registered twice")]
    DuplicateType(&'static str),
    /// The same protobuf id registered twice.
    #[error("protobuf id {id} is taken by {taken_by}, asked for by {name}")]
    DuplicateId {
        /// The id.
        id: u16,
        /// The name that has it.
        taken_by: String,
        /// The name that asked for it.
        name: String,
    },
    /// More than 65535 message types.
    #[error("too many message types (at most 65535)")]
    TooMany,
    /// Sending a type that was never registered.
    #[error("message type {0} is not registered")]
    NotRegistered(&'static str),
    /// A message that serde_json refused to encode.
    #[error("encoding {name}: {reason}")]
    Encode {
        /// The message name.
        name: String,
        /// What the encoder said.
        reason: String,
    },
    /// A JSON payload that is not an object with exactly one key.
    #[error("invalid json envelope: {0}")]
    Envelope(String),
    /// A protobuf payload shorter than its 2-byte id.
    #[error("protobuf payload too short: {0} bytes")]
    TooShort(usize),
    /// A JSON message name nobody registered.
    #[error("message {0:?} is not registered")]
    UnknownName(String),
    /// A protobuf id nobody registered.
    #[error("message id {0} is not registered")]
    UnknownId(u16),
    /// A registered message whose body does not decode into its type.
    #[error("message {name}: bad body: {reason}")]
    Decode {
        /// The message name.
        name: String,
        /// What the decoder said.
        reason: String,
    },
    /// [`recv_as`](crate::Client::recv_as) got another message than the one asked for.
    #[error("expected {expected}, got {got}")]
    Unexpected {
        /// The message name asked for.
        expected: String,
        /// The message name that came.
        got: String,
    },
}

impl Error {
    /// Whether the connection is closed (by the server, or broken): nothing more can be
    /// read from it.
    ///
    /// ```
    /// use longlink_client::Error;
    ///
    /// assert!(!Error::UnknownId(9).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            Error::Closed { .. } | Error::Io(_) | Error::WebSocket(_) | Error::Protocol(_)
        )
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error as WsError;
        match e {
            WsError::ConnectionClosed | WsError::AlreadyClosed => Error::Closed {
                code: None,
                reason: "websocket closed".into(),
            },
            WsError::Io(e) => Error::Io(e),
            e => Error::WebSocket(Box::new(e)),
        }
    }
}

/// `Result` with the client's [`Error`].
///
/// ```
/// fn f() -> longlink_client::Result<u8> {
///     Ok(1)
/// }
/// assert_eq!(f().unwrap(), 1);
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;
