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

mod config;
mod error;
mod io;
mod messages;

use std::any::{Any, type_name};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

pub use config::{ClientConfig, Encoding, TlsConfig, Transport};
pub use error::{Error, Result};
pub use messages::{Message, Messages};
/// The rustls version the client uses, to build a [`TlsConfig::from_rustls`] configuration.
pub use tokio_rustls::rustls;

/// What both halves need to encode or decode.
#[derive(Clone)]
struct Codec {
    messages: Arc<Messages>,
    encoding: Encoding,
    id_little_endian: bool,
    transport: Transport,
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

/// The reading half of a [`Client`], from [`Client::split`].
///
/// ```no_run
/// # async fn run(client: longlink_client::Client) -> longlink_client::Result<()> {
/// let (mut reader, _writer) = client.split();
/// let msg = reader.recv().await?;
/// # Ok(()) }
/// ```
pub struct ClientReader {
    io: io::ReadIo,
    codec: Codec,
    local: SocketAddr,
    peer: SocketAddr,
}

impl std::fmt::Debug for ClientReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientReader")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl ClientReader {
    /// The next message, decoded; see [`Client::recv`]. Cancel safe.
    ///
    /// ```no_run
    /// # async fn run(reader: &mut longlink_client::ClientReader) -> longlink_client::Result<()> {
    /// let msg = reader.recv().await?;
    /// println!("{} (id {})", msg.name(), msg.id());
    /// # Ok(()) }
    /// ```
    pub async fn recv(&mut self) -> Result<Message> {
        let payload = self.io.recv().await?;
        self.codec
            .messages
            .decode(&payload, self.codec.encoding, self.codec.id_little_endian)
    }

    /// The next message, which must be a `T`; see [`Client::recv_as`].
    ///
    /// ```no_run
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Hello { #[prost(string, tag = "1")] name: String }
    /// # async fn run(reader: &mut longlink_client::ClientReader) -> longlink_client::Result<()> {
    /// let hello: Hello = reader.recv_as().await?;
    /// # Ok(()) }
    /// ```
    pub async fn recv_as<T: Any>(&mut self) -> Result<T> {
        let msg = self.recv().await?;
        msg.downcast::<T>().map_err(|got| Error::Unexpected {
            expected: self
                .codec
                .messages
                .name_of::<T>()
                .unwrap_or(type_name::<T>())
                .to_owned(),
            got: got.name().to_owned(),
        })
    }

    /// The next payload as it came; see [`Client::recv_raw`]. Cancel safe.
    ///
    /// ```no_run
    /// # async fn run(reader: &mut longlink_client::ClientReader) -> longlink_client::Result<()> {
    /// let payload = reader.recv_raw().await?;
    /// # Ok(()) }
    /// ```
    pub async fn recv_raw(&mut self) -> Result<Bytes> {
        self.io.recv().await
    }

    /// The registry this reader decodes with.
    ///
    /// ```no_run
    /// # fn run(reader: &longlink_client::ClientReader) {
    /// println!("{:?}", reader.messages());
    /// # }
    /// ```
    pub fn messages(&self) -> &Arc<Messages> {
        &self.codec.messages
    }
}

/// The writing half of a [`Client`], from [`Client::split`].
///
/// Over plain TCP, dropping the writer shuts the socket's sending side (a FIN), as tokio's
/// `OwnedWriteHalf` does; keep it while the reader is in use.
///
/// ```no_run
/// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
/// # struct Hello { #[prost(string, tag = "1")] name: String }
/// # async fn run(client: longlink_client::Client) -> longlink_client::Result<()> {
/// let (_reader, mut writer) = client.split();
/// writer.send(&Hello { name: "ann".into() }).await?;
/// writer.close().await?;
/// # Ok(()) }
/// ```
pub struct ClientWriter {
    io: io::WriteIo,
    codec: Codec,
}

impl std::fmt::Debug for ClientWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientWriter")
            .field("transport", &self.codec.transport)
            .finish_non_exhaustive()
    }
}

impl ClientWriter {
    /// Encodes and sends a registered message; see [`Client::send`]. Not cancel safe: a
    /// send cut short may leave half a frame behind.
    ///
    /// ```no_run
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Hello { #[prost(string, tag = "1")] name: String }
    /// # async fn run(writer: &mut longlink_client::ClientWriter) -> longlink_client::Result<()> {
    /// writer.send(&Hello { name: "ann".into() }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send<T: Any>(&mut self, msg: &T) -> Result<()> {
        let payload = self.encode(msg)?;
        self.send_raw(payload).await
    }

    /// Encodes a registered message into the payload [`send`](ClientWriter::send) would
    /// send, to send it many times with [`send_raw`](ClientWriter::send_raw).
    ///
    /// ```no_run
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Hello { #[prost(string, tag = "1")] name: String }
    /// # async fn run(writer: &mut longlink_client::ClientWriter) -> longlink_client::Result<()> {
    /// let payload = writer.encode(&Hello { name: "ann".into() })?;
    /// for _ in 0..3 {
    ///     writer.send_raw(payload.clone()).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn encode<T: Any>(&self, msg: &T) -> Result<Bytes> {
        self.codec
            .messages
            .encode(msg, self.codec.encoding, self.codec.id_little_endian)
            .map(Bytes::from)
    }

    /// Sends one payload as it is; see [`Client::send_raw`]. A payload over the maximum (or
    /// an empty one over TCP) is [`Error::BadLength`] and nothing is sent.
    ///
    /// ```no_run
    /// # async fn run(writer: &mut longlink_client::ClientWriter) -> longlink_client::Result<()> {
    /// writer.send_raw(&b"{\"C2S_UserHeartBeat\":{}}"[..]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_raw(&mut self, payload: impl Into<Bytes>) -> Result<()> {
        let payload = payload.into();
        let min = usize::from(self.codec.transport == Transport::Tcp);
        if payload.len() < min || payload.len() > self.codec.max_payload {
            return Err(Error::BadLength {
                len: payload.len(),
                max: self.codec.max_payload,
            });
        }
        self.io.feed(payload).await?;
        self.io.flush().await
    }

    /// Flushes and closes the sending side; see [`Client::close`].
    ///
    /// ```no_run
    /// # async fn run(mut writer: longlink_client::ClientWriter) -> longlink_client::Result<()> {
    /// writer.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(&mut self) -> Result<()> {
        self.io.close().await
    }
}
