//! A Rust client for longlink servers (and leaf servers): TCP with a length prefix or
//! WebSocket, optional TLS, JSON or protobuf payloads, typed messages.
//!
//! Register the message types (the same names and ids as the server), connect, then send and
//! receive typed values:
//!
//! ```no_run
//! use longlink_client::{Client, ClientConfig, Encoding, Messages};
//!
//! #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
//! struct C2sUserHeartBeat {
//!     #[prost(int64, tag = "1")]
//!     ptime: i64,
//! }
//!
//! # async fn run() -> longlink_client::Result<()> {
//! let mut messages = Messages::new();
//! messages.register_with::<C2sUserHeartBeat>("C2S_UserHeartBeat", 0)?;
//!
//! let config = ClientConfig::ws("127.0.0.1:3653").with_encoding(Encoding::Json);
//! let mut client = Client::connect(config, messages).await?;
//! client.send(&C2sUserHeartBeat { ptime: 0 }).await?;
//! let answer: C2sUserHeartBeat = client.recv_as().await?;
//! println!("server time {}", answer.ptime);
//! client.close().await?;
//! # Ok(()) }
//! ```
//!
//! The wire formats are the server's: TCP frames are `| len | payload |` with a 1, 2 or
//! 4-byte length (`len_msg_len`, big-endian unless `little_endian`); a WebSocket message is
//! one payload; JSON payloads are `{"Name":{...}}`; protobuf payloads are
//! `| id: u16 | body |`. [`Client::split`] gives a reader and a writer that work from two
//! tasks, for pushes that arrive while the client is sending.
//!
//! [`ResumableClient`] reconnects by itself and resumes its session on a server with
//! `resume_window` on: the application reads one stream of [`Event`]s, every server message
//! once and in order across drops, and is told when the session was resumed or lost.

mod backoff;
mod config;
mod error;
mod io;
mod message;
mod messages;
mod reader;
mod resume;
mod writer;

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

pub use config::{ClientConfig, TlsConfig};
pub use error::{Error, Result};
/// The payload encoding; it must match the server's `encoding` setting.
///
/// ```
/// use longlink_client::Encoding;
///
/// assert_eq!(Encoding::default(), Encoding::Json);
/// assert_eq!("protobuf".parse::<Encoding>().unwrap(), Encoding::Protobuf);
/// assert_eq!(Encoding::Protobuf.to_string(), "protobuf");
/// ```
pub use longlink_wire::Encoding;
/// How the client reaches the server.
///
/// ```
/// use longlink_client::Transport;
///
/// assert_eq!(Transport::default(), Transport::Tcp);
/// assert_eq!("ws".parse::<Transport>().unwrap(), Transport::Ws);
/// ```
pub use longlink_wire::Transport;
/// The errors that [`Error::Registry`], [`Error::Encode`] and [`Error::Decode`] carry, and
/// the one a transport or encoding name that is not known gives.
pub use longlink_wire::{DecodeError, EncodeError, ParseKindError, RegistryError};
pub use message::Message;
pub use messages::Messages;
pub use reader::ClientReader;
pub use resume::{Event, ResumableClient, ResumableSender, ResumeOptions};
/// The rustls version the client uses, to build a [`TlsConfig::from_rustls`] configuration.
pub use tokio_rustls::rustls;
pub use writer::ClientWriter;

/// What both halves need to encode or decode.
#[derive(Clone)]
struct Codec {
    /// The registry, shared by both halves (and maybe by other clients).
    messages: Arc<Messages>,
    /// JSON or protobuf, as the server.
    encoding: Encoding,
    /// Protobuf id byte order, as the server.
    id_little_endian: bool,
    /// TCP or WebSocket: an empty payload is allowed over WebSocket only.
    transport: Transport,
    /// The largest payload sent or received.
    max_payload: usize,
}

/// One connection to a server.
///
/// ```no_run
/// use longlink_client::{Client, ClientConfig, Messages};
///
/// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
/// # struct Hello { #[prost(string, tag = "1")] name: String }
/// # async fn run() -> longlink_client::Result<()> {
/// let mut messages = Messages::new();
/// messages.register::<Hello>()?;
/// let mut client = Client::connect(ClientConfig::tcp("127.0.0.1:3563"), messages).await?;
/// client.send(&Hello { name: "ann".into() }).await?;
/// let msg = client.recv().await?;
/// if let Some(hello) = msg.downcast_ref::<Hello>() {
///     println!("{}", hello.name);
/// }
/// # Ok(()) }
/// ```
pub struct Client {
    reader: ClientReader,
    writer: ClientWriter,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.reader.codec.transport)
            .field("encoding", &self.reader.codec.encoding)
            .field("local", &self.reader.local)
            .field("peer", &self.reader.peer)
            .finish()
    }
}

impl Client {
    /// Connects to `config.addr`: TCP, then TLS if configured, then the WebSocket handshake
    /// for [`Transport::Ws`], all within `config.connect_timeout`. `messages` may be a
    /// [`Messages`] or an `Arc<Messages>` shared by many clients.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use longlink_client::{Client, ClientConfig, Messages};
    ///
    /// # async fn run() -> longlink_client::Result<()> {
    /// let shared = Arc::new(Messages::new());
    /// let a = Client::connect(ClientConfig::tcp("127.0.0.1:3563"), shared.clone()).await?;
    /// let b = Client::connect(ClientConfig::ws("127.0.0.1:3653"), shared).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(
        config: ClientConfig,
        messages: impl Into<Arc<Messages>>,
    ) -> Result<Client> {
        let connected = io::connect(&config).await?;
        let codec = Codec {
            messages: messages.into(),
            encoding: config.encoding,
            id_little_endian: config.id_little_endian,
            transport: config.transport,
            max_payload: config.max_payload(),
        };
        Ok(Client {
            reader: ClientReader {
                io: connected.read,
                codec: codec.clone(),
                local: connected.local,
                peer: connected.peer,
            },
            writer: ClientWriter {
                io: connected.write,
                codec,
            },
        })
    }

    /// Encodes and sends a registered message.
    ///
    /// ```no_run
    /// # use longlink_client::{Client, ClientConfig, Messages};
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Hello { #[prost(string, tag = "1")] name: String }
    /// # async fn run(client: &mut Client) -> longlink_client::Result<()> {
    /// client.send(&Hello { name: "ann".into() }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send<T: Any>(&mut self, msg: &T) -> Result<()> {
        self.writer.send(msg).await
    }

    /// Sends one payload as it is (framed for the transport, not encoded).
    ///
    /// ```no_run
    /// # async fn run(client: &mut longlink_client::Client) -> longlink_client::Result<()> {
    /// client.send_raw(&br#"{"C2S_UserHeartBeat":{"ptime":0}}"#[..]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_raw(&mut self, payload: impl Into<Bytes>) -> Result<()> {
        self.writer.send_raw(payload).await
    }

    /// The next message, decoded. An unknown or undecodable message is an error that leaves
    /// the connection usable; [`Error::is_closed`] tells the ones that do not. Cancel safe:
    /// wrap it in `tokio::time::timeout` freely.
    ///
    /// ```no_run
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct S2cKick { #[prost(string, tag = "1")] reason: String }
    /// # async fn run(client: &mut longlink_client::Client) -> longlink_client::Result<()> {
    /// let msg = client.recv().await?;
    /// match msg.downcast::<S2cKick>() {
    ///     Ok(kick) => println!("kicked: {}", kick.reason),
    ///     Err(other) => println!("got {}", other.name()),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn recv(&mut self) -> Result<Message> {
        self.reader.recv().await
    }

    /// The next message, which must be a `T` (otherwise [`Error::Unexpected`], and that
    /// message is gone).
    ///
    /// ```no_run
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct S2cUserLogin { #[prost(int32, tag = "1")] ret: i32 }
    /// # async fn run(client: &mut longlink_client::Client) -> longlink_client::Result<()> {
    /// let login: S2cUserLogin = client.recv_as().await?;
    /// assert_eq!(login.ret, 1);
    /// # Ok(()) }
    /// ```
    pub async fn recv_as<T: Any>(&mut self) -> Result<T> {
        self.reader.recv_as().await
    }

    /// The next payload as it came (without the TCP length prefix), not decoded. Cancel safe.
    ///
    /// ```no_run
    /// # async fn run(client: &mut longlink_client::Client) -> longlink_client::Result<()> {
    /// let payload = client.recv_raw().await?;
    /// println!("{} bytes", payload.len());
    /// # Ok(()) }
    /// ```
    pub async fn recv_raw(&mut self) -> Result<Bytes> {
        self.reader.recv_raw().await
    }

    /// Flushes and closes the sending side (TCP: FIN; WebSocket: a close frame), then drops
    /// the connection.
    ///
    /// ```no_run
    /// # async fn run(client: longlink_client::Client) -> longlink_client::Result<()> {
    /// client.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(mut self) -> Result<()> {
        self.writer.close().await
    }

    /// Splits the client into a reader and a writer that can be used from two tasks.
    ///
    /// ```no_run
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Hello { #[prost(string, tag = "1")] name: String }
    /// # async fn run(client: longlink_client::Client) -> longlink_client::Result<()> {
    /// let (mut reader, mut writer) = client.split();
    /// let pushes = tokio::spawn(async move {
    ///     while let Ok(msg) = reader.recv().await {
    ///         println!("{}", msg.name());
    ///     }
    /// });
    /// writer.send(&Hello { name: "ann".into() }).await?;
    /// # Ok(()) }
    /// ```
    pub fn split(self) -> (ClientReader, ClientWriter) {
        (self.reader, self.writer)
    }

    /// Puts a reader and a writer from [`Client::split`] back together. They need not come
    /// from the same split, but should: nothing checks it.
    ///
    /// ```no_run
    /// # fn run(client: longlink_client::Client) {
    /// let (reader, writer) = client.split();
    /// let client = longlink_client::Client::unsplit(reader, writer);
    /// # }
    /// ```
    pub fn unsplit(reader: ClientReader, writer: ClientWriter) -> Client {
        Client { reader, writer }
    }

    /// The local socket address.
    ///
    /// ```no_run
    /// # fn run(client: &longlink_client::Client) {
    /// println!("from {}", client.local_addr());
    /// # }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.reader.local
    }

    /// The server's socket address.
    ///
    /// ```no_run
    /// # fn run(client: &longlink_client::Client) {
    /// println!("to {}", client.peer_addr());
    /// # }
    /// ```
    pub fn peer_addr(&self) -> SocketAddr {
        self.reader.peer
    }

    /// The registry this client encodes and decodes with.
    ///
    /// ```no_run
    /// # fn run(client: &longlink_client::Client) {
    /// println!("{} message types", client.messages().len());
    /// # }
    /// ```
    pub fn messages(&self) -> &Arc<Messages> {
        &self.reader.codec.messages
    }
}
