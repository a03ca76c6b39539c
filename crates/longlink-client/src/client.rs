//! [`Client`]: one connection to a server, sending and receiving typed messages.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::codec::Codec;
use crate::{ClientConfig, ClientReader, ClientWriter, Message, Messages, Result, io};

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
    /// The receiving half (the resumable client takes it apart).
    pub(crate) reader: ClientReader,
    /// The sending half.
    pub(crate) writer: ClientWriter,
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
    /// for [`Transport::Ws`](crate::Transport::Ws), all within `config.connect_timeout`.
    /// `messages` may be a [`Messages`] or an `Arc<Messages>` shared by many clients.
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
    /// the connection usable; [`Error::is_closed`](crate::Error::is_closed) tells the ones that
    /// do not. Cancel safe: wrap it in `tokio::time::timeout` freely.
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

    /// The next message, which must be a `T` (otherwise
    /// [`Error::Unexpected`](crate::Error::Unexpected), and that message is gone).
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
