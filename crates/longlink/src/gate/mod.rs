//! The gate: TCP and WebSocket listeners side by side, sharing one processor, one connection
//! limit and one module for connection events (leaf's `gate.Gate`).
//!
//! ```no_run
//! use longlink::{Agent, Encoding, Gate, GateConfig, Module, Processor};
//!
//! # async fn example() -> Result<(), longlink::gate::GateError> {
//! let lobby = Module::new("lobby", 0usize); // state: players online
//! let config = GateConfig {
//!     tcp_addr: "127.0.0.1:3563".into(),
//!     ws_addr: "127.0.0.1:3653".into(),
//!     ..GateConfig::default()
//! };
//! let gate = Gate::builder(config, Processor::new(Encoding::Json))
//!     .on_new_agent(&lobby.module_ref(), |online: &mut usize, _agent: &Agent| *online += 1)
//!     .on_close_agent(&lobby.module_ref(), |online: &mut usize, _agent: &Agent| *online -= 1)
//!     .bind()
//!     .await?;
//! println!("tcp on {:?}, ws on {:?}", gate.tcp_addr(), gate.ws_addr());
//! # Ok(()) }
//! ```
//!
//! Inside, one file per step of a connection's life, each importing only the ones before it:
//! `waiting` (the sessions that wait for their client, oldest first), `admission` (places
//! under `max_conn_num`, `max_conn_per_ip` and `handshake_share`, kept by waiting sessions
//! too), `transport` (frames over TCP, TLS and WebSocket: readers, writers, their errors; the
//! PROXY protocol header), `forwarded` (`trusted_proxies`, the client a proxy forwarded) and
//! `upgrade` (the `on_upgrade` hook's types, `ws_origins`) at the bottom; `resume` (the
//! resumable sessions of `resume_window`), `sweep` (idle and ping deadlines), `membership`
//! and `link` (what a cluster implements to join in), `live` (the open connections, the
//! clock, the stop); `shared` (what all of them share: settings, hooks, services, live
//! state); `conn` (one task per connection: frames in, the agent's queue out; its `session`
//! side keeps a resumable session); `handshake` (the PROXY header and TLS, within
//! `http_timeout`) and `ws_handshake` (the WebSocket listener's: the upgrade, the client's
//! real address, `ws_origins`, the hook); `listen` (binding the listeners, `reuse_port`) and
//! `accept` (the listeners); [`builder`] (settings, hooks, `bind`), `drain` (a stopping
//! gate's sessions moving to other gates of its cluster) and [`running`] (the drain and
//! stop) on top.

mod accept;
mod admission;
pub mod builder;
pub(crate) mod config;
mod conn;
mod drain;
#[cfg(unix)]
mod fdlimit;
mod forwarded;
pub(crate) mod handover;
mod handshake;
mod http;
pub(crate) mod link;
mod listen;
mod live;
mod manifest;
pub(crate) mod membership;
pub(crate) mod resume;
pub mod running;
pub(crate) mod shared;
mod sweep;
mod transport;
mod upgrade;
mod waiting;
mod ws_handshake;

/// Entry points for fuzzing the WebSocket path (feature `fuzzing`; not a stable API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::transport::ws;

    /// Feeds `bytes` to the handshake reader as a client would send them, then to a
    /// WebSocket server stream with a `max_msg_len` limit, reading every message. Returns
    /// how many messages were read. Never panics for any input.
    pub async fn ws_bytes(bytes: &[u8], max_msg_len: usize) -> usize {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let _ = client.write_all(bytes).await;
        let _ = client.shutdown().await;
        let rest = match ws::read_request(&mut server, true, None).await {
            ws::Handshake::Upgrade { rest, .. } => rest,
            ws::Handshake::Refused => return 0,
        };
        let mut buf = bytes::BytesMut::from(&rest[..]);
        let _ = server.read_buf(&mut buf).await;
        let mut decoder = ws::frame::WsDecoder::new(max_msg_len);
        let mut n = 0;
        while let Ok(Some(_)) = decoder.decode(&mut buf) {
            n += 1;
        }
        n
    }

    /// What the gate's WebSocket reader (`WsCodec`, as a connection drives
    /// it) makes of a client's frames: `bytes` after the handshake, arriving `read_size`
    /// bytes at a time, with a `max_msg_len` limit.
    pub fn ws_frames(bytes: &[u8], max_msg_len: usize, read_size: usize) -> WsFrames {
        use super::transport::{Decode, Incoming, ReadError};
        let mut codec = ws::WsCodec::new(max_msg_len);
        let mut buf = bytes::BytesMut::new();
        let mut out = WsFrames::default();
        for chunk in bytes.chunks(read_size.max(1)) {
            buf.extend_from_slice(chunk);
            loop {
                match codec.decode(&mut buf) {
                    Ok(None) => break,
                    Ok(Some(Incoming::Payload(message))) => out.messages.push(message.to_vec()),
                    Ok(Some(Incoming::Ping(payload))) => out.pongs.push(payload.to_vec()),
                    Ok(Some(Incoming::Control | Incoming::Partial)) => {}
                    // The peer's close: the connection answers with its close code, 1000.
                    Ok(Some(Incoming::End | Incoming::Final)) => return out,
                    Err(ReadError::WsRefused(code, _)) => {
                        out.close = code;
                        return out;
                    }
                    Err(_) => return out,
                }
            }
        }
        out
    }

    /// What the gate makes of `bytes` at the front of a connection with `proxy_protocol` on:
    /// `Ok(Some((length, source)))` for a whole PROXY header (`source` `None` when it names
    /// no address), `Ok(None)` while more bytes could complete one, `Err` for a refusal.
    /// Never panics for any input.
    pub fn proxy_header(
        bytes: &[u8],
    ) -> Result<Option<(usize, Option<std::net::SocketAddr>)>, String> {
        super::transport::proxy::parse(bytes).map_err(|e| e.to_string())
    }

    /// What [`ws_frames`] saw the reader do.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct WsFrames {
        /// The messages delivered, in order.
        pub messages: Vec<Vec<u8>>,
        /// The payloads of the pongs answered, in order.
        pub pongs: Vec<Vec<u8>>,
        /// The code of the close frame the connection ends with: 1000 after the peer's
        /// close or the end of the input, else the refusal's (1002, 1007, 1009).
        pub close: u16,
    }

    impl Default for WsFrames {
        fn default() -> Self {
            WsFrames {
                messages: Vec::new(),
                pongs: Vec::new(),
                close: 1000,
            }
        }
    }
}

pub use builder::{Gate, GateBuilder};
pub use config::GateConfig;
pub use http::query_param;
pub use running::{GateHandle, RunningGate};
pub(crate) use shared::Shared;
pub use upgrade::{Accept, Refuse, UpgradeRequest};

use std::sync::Arc;

use crate::config::ConfigError;
use crate::processor::ProcessorError;

/// Why a gate could not start.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The processor has a registration mistake (e.g. a message with no destination).
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    /// A TLS certificate or key could not be used.
    #[error("cannot use TLS file {file}: {message}")]
    Tls {
        /// The file named by `cert_file` or `key_file`.
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// The gate could not subscribe to its cluster subjects.
    #[error("cluster: {0}")]
    Cluster(Box<dyn std::error::Error + Send + Sync>),
    /// A listener could not bind.
    #[error("cannot listen on {addr} ({key}): {error}")]
    Bind {
        /// The config key.
        key: &'static str,
        /// The address.
        addr: String,
        /// The OS error.
        error: std::io::Error,
    },
}

/// Why the gate itself is closing a connection; given to the
/// [`on_goodbye`](GateBuilder::on_goodbye) hook so the application can say so first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goodbye {
    /// The gate is stopping.
    Shutdown,
    /// The connection sent nothing for `idle_timeout`.
    Idle,
    /// The connection sent faster than `max_msg_rate`.
    RateLimit,
    /// Its uid logged in on another connection, on another gate of the cluster.
    Displaced,
    /// An operator or another service kicked it (the server API, the console), with this
    /// reason.
    Kicked(Arc<str>),
}

impl Goodbye {
    /// A short reason for a kick message: `"shutdown"`, `"idle"`, `"rate limit"`,
    /// `"logged in elsewhere"`, or the kick's own reason.
    pub fn reason(&self) -> &str {
        match self {
            Goodbye::Shutdown => "shutdown",
            Goodbye::Idle => "idle",
            Goodbye::RateLimit => "rate limit",
            Goodbye::Displaced => "logged in elsewhere",
            Goodbye::Kicked(reason) => reason,
        }
    }
}
