//! Helpers for longlink's black-box tests (`crates/longlink/tests`, `examples/chat/tests`,
//! `tools/loadgen/tests`), each written once.
//!
//! Nothing here uses `longlink`, `longlink-wire` or `longlink-client`: the framing, the
//! envelopes and the upgrade request are written from the wire specification, so that a bug
//! in the library's codec cannot hide itself in the tests that check it.
//!
//! - [`bounded`], [`wait_for`], [`stops_within`], [`STEP`]: bounds on a test body, on one
//!   wait, on a server's stop;
//! - [`free_port`], [`free_addr`], [`connect_from`]: loopback sockets;
//! - [`NatsServer`]: a real `nats-server` on a free port ([`nats_server_binary`]: its binary);
//! - [`frame`]: the length prefix; [`envelope`]: leaf's JSON and protobuf envelopes;
//! - [`ws`]: a WebSocket client (tungstenite) and the raw upgrade request;
//! - [`wsdiff`]: a differential check of a server's WebSocket reading against tungstenite's;
//! - [`http`], [`prometheus`], [`console`]: the admin listeners seen from outside;
//! - [`Proxy`] ([`proxy`]): a loopback TCP proxy that cuts (at a byte count, too), stalls and
//!   counts the connections it forwards, and moves to a new target, for the tests of
//!   session resume and the cluster soak.

mod bounds;
pub mod console;
pub mod envelope;
pub mod frame;
pub mod http;
mod nats;
pub mod prometheus;
pub mod proxy;
pub mod ws;
pub mod wsdiff;

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

pub use bounds::{STEP, bounded, stops_within, wait_for};
pub use console::Console;
pub use frame::Framing;
pub use nats::{NatsServer, find_binary as nats_server_binary};
pub use proxy::Proxy;

/// A loopback port free right now (bound, then released).
pub fn free_port() -> u16 {
    free_addr().port()
}

/// `127.0.0.1:<a port free right now>`.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// Connects to `to` from `local` (port 0), e.g. from 127.0.0.2 to count as another address.
pub async fn connect_from(local: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match local {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(to).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connect_from_another_loopback_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = listener.local_addr().unwrap();
        let from: IpAddr = "127.0.0.2".parse().unwrap();
        let _client = connect_from(from, to)
            .await
            .expect("connect from 127.0.0.2");
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), from);
    }
}
