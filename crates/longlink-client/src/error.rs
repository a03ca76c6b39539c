//! The client's one error type.

use longlink_wire::{CodecError, DecodeError, EncodeError, ParseKindError, RegistryError};

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
    /// A [`Messages`](crate::Messages) registration mistake: a name, type or id twice, or
    /// too many types.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A message that could not be encoded: its type is not registered (or not for this
    /// encoding), or serde_json refused it. Nothing was sent.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A payload that could not be decoded: not an envelope, an unknown name or id, or a
    /// body that does not decode into its type. The connection stays usable.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// [`ResumableClient::connect`](crate::ResumableClient::connect) could not start a
    /// resumable session: the server did not answer `LL_SessionStart` in time, or closed the
    /// connection first (is its `resume_window` on?).
    #[error("no resumable session: {0}")]
    Session(String),
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
    /// use longlink_client::{DecodeError, Error};
    ///
    /// assert!(!Error::Decode(DecodeError::UnknownId(9)).is_closed());
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

impl From<ParseKindError> for Error {
    /// A transport or encoding name that is neither of the known ones is a config error.
    ///
    /// ```
    /// use longlink_client::{Error, Transport};
    ///
    /// fn transport(name: &str) -> longlink_client::Result<Transport> {
    ///     Ok(name.parse::<Transport>()?)
    /// }
    /// assert_eq!(transport("ws")?, Transport::Ws);
    /// let e = transport("udp").unwrap_err();
    /// assert!(matches!(&e, Error::Config(m) if m == r#"transport "udp": expected "tcp" or "ws""#));
    /// # Ok::<(), Error>(())
    /// ```
    fn from(e: ParseKindError) -> Self {
        Error::Config(e.to_string())
    }
}

impl Error {
    /// The error for a refused frame (or the stream under it failing) on a TCP connection:
    /// end of stream inside a frame is [`Error::Closed`], a length out of bounds
    /// [`Error::Protocol`].
    pub(crate) fn from_frame(e: CodecError) -> Self {
        match e {
            CodecError::Io(e) => Error::Io(e),
            e @ CodecError::Eof { .. } => Error::Closed {
                code: None,
                reason: e.to_string(),
            },
            e @ (CodecError::TooLong { .. } | CodecError::TooShort { .. }) => {
                Error::Protocol(format!("frame: {e}"))
            }
            e @ CodecError::BadLenMsgLen(_) => Error::Config(e.to_string()),
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
