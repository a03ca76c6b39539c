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
//! - [`NatsServer`]: a real `nats-server` on a free port;
//! - [`frame`]: the length prefix; [`envelope`]: leaf's JSON and protobuf envelopes;
//! - [`ws`]: a WebSocket client (tungstenite) and the raw upgrade request;
//! - [`wsdiff`]: a differential check of a server's WebSocket reading against tungstenite's;
//! - [`http`], [`prometheus`], [`console`]: the admin listeners seen from outside;
//! - [`Proxy`] ([`proxy`]): a loopback TCP proxy that cuts (at a byte count, too), stalls and
//!   counts the connections it forwards, for the tests of session resume.

pub mod console;
pub mod envelope;
pub mod frame;
pub mod http;
mod nats;
pub mod prometheus;
pub mod proxy;
pub mod ws;
pub mod wsdiff;

use std::fmt::Display;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

pub use console::Console;
pub use frame::Framing;
pub use nats::NatsServer;
pub use proxy::Proxy;

/// Bound on a single wait inside a test: one reply, one close, one condition.
pub const STEP: Duration = Duration::from_secs(5);

/// Runs a test body; panics if it has not finished within `limit`.
pub async fn bounded<F: Future<Output = ()>>(limit: Duration, body: F) {
    tokio::time::timeout(limit, body)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {limit:?}"));
}

/// Polls `cond` every 5 ms until it holds, for at most [`STEP`]; panics naming `what`
/// otherwise.
pub async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + STEP;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits for a server's task (an app's `run()`, spawned) to end, within `limit`, and asserts
/// that it ended well: no timeout, no panic, `Ok`.
pub async fn stops_within<E: Display>(limit: Duration, task: JoinHandle<Result<(), E>>) {
    match tokio::time::timeout(limit, task).await {
        Err(_) => panic!("the server did not stop within {limit:?}"),
        Ok(Err(e)) => panic!("the server's task failed: {e}"),
        Ok(Ok(Err(e))) => panic!("the server stopped with an error: {e}"),
        Ok(Ok(Ok(()))) => {}
    }
}

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
    async fn wait_for_returns_once_the_condition_holds() {
        let mut n = 0;
        wait_for("three polls", || {
            n += 1;
            let done = n >= 3;
            async move { done }
        })
        .await;
        assert_eq!(n, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "test did not finish within")]
    async fn a_body_past_its_limit_panics() {
        bounded(Duration::from_millis(10), std::future::pending()).await;
    }

    #[tokio::test]
    async fn stops_within_accepts_ok_and_names_an_error() {
        stops_within(STEP, tokio::spawn(async { Ok::<(), String>(()) })).await;
        let failed = tokio::spawn(stops_within(
            STEP,
            tokio::spawn(async { Err::<(), _>("boom".to_owned()) }),
        ))
        .await
        .expect_err("an error is a panic");
        assert!(failed.is_panic());
    }

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
