//! [`ClientWriter`]: the writing half of a connection.

use std::any::Any;

use bytes::Bytes;
use longlink_wire::Transport;

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::io;

/// The writing half of a [`Client`](crate::Client), from [`Client::split`](crate::Client::split).
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
    /// The socket's writing half, framed.
    pub(crate) io: io::WriteIo,
    /// The registry and the settings to encode with.
    pub(crate) codec: Codec,
}

impl std::fmt::Debug for ClientWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientWriter")
            .field("transport", &self.codec.transport)
            .finish_non_exhaustive()
    }
}

impl ClientWriter {
    /// Encodes and sends a registered message; see [`Client::send`](crate::Client::send). Not cancel safe: a
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

    /// Sends one payload as it is; see [`Client::send_raw`](crate::Client::send_raw). A payload over the maximum (or
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

    /// Flushes and closes the sending side; see [`Client::close`](crate::Client::close).
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
