//! [`ClientReader`]: the reading half of a connection.

use std::any::{Any, type_name};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::io;
use crate::message::Message;
use crate::messages::Messages;

/// The reading half of a [`Client`](crate::Client), from [`Client::split`](crate::Client::split).
///
/// ```no_run
/// # async fn run(client: longlink_client::Client) -> longlink_client::Result<()> {
/// let (mut reader, _writer) = client.split();
/// let msg = reader.recv().await?;
/// # Ok(()) }
/// ```
pub struct ClientReader {
    /// The socket's reading half, framed.
    pub(crate) io: io::ReadIo,
    /// The registry and the settings to decode with.
    pub(crate) codec: Codec,
    /// This end's address.
    pub(crate) local: SocketAddr,
    /// The server's address.
    pub(crate) peer: SocketAddr,
}

impl std::fmt::Debug for ClientReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientReader")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl ClientReader {
    /// The next message, decoded; see [`Client::recv`](crate::Client::recv). Cancel safe.
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

    /// The next message, which must be a `T`; see [`Client::recv_as`](crate::Client::recv_as).
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

    /// The next payload as it came; see [`Client::recv_raw`](crate::Client::recv_raw). Cancel safe.
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
