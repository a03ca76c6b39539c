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
mod client;
mod codec;
mod config;
mod error;
mod io;
mod message;
mod messages;
mod reader;
mod resume;
mod writer;

pub use client::Client;
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
pub use longlink_wire::{
    DecodeError, Delivery, EncodeError, MessageOptions, ParseKindError, RegistryError,
};
pub use message::Message;
pub use messages::Messages;
pub use reader::ClientReader;
pub use resume::{Event, ResumableClient, ResumableSender, ResumeOptions};
/// The rustls version the client uses, to build a [`TlsConfig::from_rustls`] configuration.
pub use tokio_rustls::rustls;
pub use writer::ClientWriter;
