//! Handshakes before a connection is served: the PROXY header (`proxy_protocol`), TLS (both
//! listeners, when configured) and the WebSocket upgrade ([`ws_handshake`](super::ws_handshake)),
//! each bounded by `http_timeout` from the accept and abandoned when the gate stops or a
//! newer handshake takes the place (`handshake_share`). Here: the bounds, the TCP
//! listener's handshakes, and the hand-over of a connection through its handshake to its
//! task.
//!
//! Until the client's first bytes arrive, a handshake's task holds only the socket, its
//! places and its deadline: the buffers, the TLS state and the request parser are made (and
//! boxed) once there is something to read, so a socket that connects and says nothing costs
//! little.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use ::http::Extensions;
use tokio::net::tcp::OwnedWriteHalf;

use super::admission::{HandshakePlace, Slot};
use super::conn;
use super::shared::Shared;
use super::transport::proxy::{self, Prefixed};
use super::transport::{FrameReader, FrameWriter, Halves, StreamWriter, TcpReader, TlsStream};
use crate::agent::{Agent, Transport};
use crate::metrics::{Reject, reject};

/// An upgraded connection, ready to serve (`None`: the handshake failed or was ended).
pub(super) type Ready<R, W> = Option<Upgraded<R, W>>;

/// A connection through its handshake: its agent, its transport's two halves, and its place
/// (counted, by now, for its real address).
pub(super) struct Upgraded<R, W> {
    pub(super) shared: Arc<Shared>,
    pub(super) agent: Agent,
    pub(super) reader: R,
    pub(super) writer: W,
    pub(super) slot: Slot,
}

/// What ends a handshake early: its deadline (`http_timeout` after the accept), and a token
/// cancelled when the gate stops or the handshake is pushed out.
pub(super) struct Bounds {
    deadline: Instant,
    stop: CancellationToken,
}

impl Bounds {
    /// Starts the clock: `http_timeout` from now.
    pub(super) fn new(http_timeout: Duration, stop: CancellationToken) -> Bounds {
        Bounds {
            deadline: Instant::now() + http_timeout,
            stop,
        }
    }

    /// Runs `f` within the bounds; `None` if they end it first.
    pub(super) async fn run<T>(
        &self,
        remote: SocketAddr,
        what: &str,
        f: impl Future<Output = Option<T>>,
    ) -> Option<T> {
        tokio::select! {
            done = tokio::time::timeout_at(self.deadline, f) => match done {
                Ok(done) => done,
                Err(_) => {
                    tracing::debug!(%remote, "{what} handshake timed out");
                    reject(Reject::Handshake);
                    None
                }
            },
            _ = self.stop.cancelled() => None,
        }
    }

    /// Waits until the client has sent something (or left), holding no buffer. A peek, not
    /// `readable()`: a new socket is reported readable before any byte has come.
    pub(super) async fn first_bytes(
        &self,
        stream: &TcpStream,
        remote: SocketAddr,
        what: &str,
    ) -> bool {
        let peek = async {
            let mut byte = [0u8; 1];
            stream.peek(&mut byte).await.ok()
        };
        self.run(remote, what, peek).await.is_some()
    }
}

/// Runs a handshake, then [`serve`]s the connection.
pub(super) async fn handshake_then_serve<R, W>(
    handshake: impl Future<Output = Ready<R, W>>,
    place: HandshakePlace,
) where
    R: FrameReader + 'static,
    W: FrameWriter,
{
    serve(handshake.await, place);
}

/// Gives the handshake place back, then serves an upgraded connection in a task of its own:
/// the handshake's larger state is freed.
pub(super) fn serve<R, W>(ready: Ready<R, W>, place: HandshakePlace)
where
    R: FrameReader + 'static,
    W: FrameWriter,
{
    drop(place);
    if let Some(Upgraded {
        shared,
        agent,
        reader,
        writer,
        slot,
    }) = ready
    {
        conn::spawn(shared, agent, reader, writer, slot);
    }
}

/// The PROXY header of a connection from `peer`, when `proxy_protocol` is on: the client's
/// address it gives (else `peer`) and the bytes read past it. `None`: no valid header came
/// within the bounds; the connection is to be closed.
pub(super) async fn proxy_header(
    shared: &Shared,
    stream: &mut TcpStream,
    peer: SocketAddr,
    bounds: &Bounds,
) -> Option<(SocketAddr, Vec<u8>)> {
    if !shared.settings.real_addr.proxy_protocol {
        return Some((peer, Vec::new()));
    }
    let read = async {
        proxy::read_header(stream)
            .await
            .map_err(|e| {
                tracing::debug!(%peer, error = %e, "connection closed");
                reject(Reject::Proxy);
            })
            .ok()
    };
    let header = bounds.run(peer, "proxy protocol", read).await?;
    Some((header.source.unwrap_or(peer), header.rest))
}

/// A TCP connection's handshake, with a PROXY header and no TLS: the real address, then
/// length-prefixed frames.
pub(super) async fn proxied_tcp(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    (local, peer): (SocketAddr, SocketAddr),
    bounds: Bounds,
    mut slot: Slot,
) -> Ready<TcpReader<longlink_wire::LenCodec>, StreamWriter<OwnedWriteHalf, longlink_wire::LenCodec>>
{
    if !bounds.first_bytes(&stream, peer, "proxy protocol").await {
        return None;
    }
    let (remote, rest) = proxy_header(&shared, &mut stream, peer, &bounds).await?;
    if !shared.services.admission.settle(&mut slot, remote.ip()) {
        return None;
    }
    let agent = shared
        .settings
        .new_agent(Transport::Tcp, local, remote, Extensions::new());
    let frames = shared.settings.frames;
    let (reader, writer) = stream.halves(frames, frames, &rest);
    Some(Upgraded {
        shared,
        agent,
        reader,
        writer,
        slot,
    })
}

/// TLS for a TCP connection (after its PROXY header, when `proxy_protocol` is on), then
/// length-prefixed frames over it.
pub(super) async fn tls_tcp(
    shared: Arc<Shared>,
    acceptor: super::transport::tls::TlsAcceptor,
    mut stream: TcpStream,
    (local, peer): (SocketAddr, SocketAddr),
    bounds: Bounds,
    mut slot: Slot,
) -> Ready<
    <TlsStream as Halves>::Reader<longlink_wire::LenCodec>,
    <TlsStream as Halves>::Writer<longlink_wire::LenCodec>,
> {
    if !bounds.first_bytes(&stream, peer, "tls").await {
        return None;
    }
    let (remote, rest) = proxy_header(&shared, &mut stream, peer, &bounds).await?;
    if !shared.services.admission.settle(&mut slot, remote.ip()) {
        return None;
    }
    // Boxed: the TLS state (a few kilobytes) exists from the ClientHello on.
    let stream = Prefixed::new(stream, rest);
    let tls = Box::pin(bounds.run(remote, "tls", tls_accept(acceptor, stream, remote))).await?;
    let agent = shared
        .settings
        .new_agent(Transport::Tcp, local, remote, Extensions::new());
    let (reader, writer) = tls.halves(shared.settings.frames, shared.settings.frames, &[]);
    Some(Upgraded {
        shared,
        agent,
        reader,
        writer,
        slot,
    })
}

/// The TLS handshake itself.
pub(super) async fn tls_accept(
    acceptor: super::transport::tls::TlsAcceptor,
    stream: Prefixed<TcpStream>,
    remote: SocketAddr,
) -> Option<TlsStream> {
    acceptor
        .accept(stream)
        .await
        .map_err(|e| {
            tracing::debug!(%remote, error = %e, "tls handshake failed");
            reject(Reject::Tls);
        })
        .ok()
}
