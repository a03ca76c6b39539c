//! Handshakes before a connection is served: TLS (both listeners, when configured) and the
//! WebSocket upgrade, each bounded by `http_timeout` from the accept and abandoned when the
//! gate stops or a newer handshake takes the place (`handshake_share`).
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

use super::admission::{HandshakePlace, Refusal, Slot};
use super::conn;
use super::shared::Shared;
use super::transport::{FrameReader, FrameWriter, Halves, TlsStream, ws};
use crate::agent::{Agent, Transport};
use crate::metrics::{Reject, reject};

/// An upgraded connection, ready to serve (`None`: the handshake failed or was ended).
pub(super) type Ready<R, W> = Option<Upgraded<R, W>>;

/// A connection through its handshake: its agent and its transport's two halves.
pub(super) struct Upgraded<R, W> {
    shared: Arc<Shared>,
    agent: Agent,
    reader: R,
    writer: W,
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
    async fn run<T>(
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
    async fn first_bytes(&self, stream: &TcpStream, remote: SocketAddr, what: &str) -> bool {
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
    slot: Slot,
    place: HandshakePlace,
) where
    R: FrameReader + 'static,
    W: FrameWriter,
{
    serve(handshake.await, slot, place);
}

/// Gives the handshake place back, then serves an upgraded connection in a task of its own:
/// the handshake's larger state is freed.
fn serve<R, W>(ready: Ready<R, W>, slot: Slot, place: HandshakePlace)
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
    }) = ready
    {
        conn::spawn(shared, agent, reader, writer, slot);
    }
}

/// TLS for a TCP connection, then length-prefixed frames over it.
pub(super) async fn tls_tcp(
    shared: Arc<Shared>,
    acceptor: super::transport::tls::TlsAcceptor,
    stream: TcpStream,
    (local, remote): (SocketAddr, SocketAddr),
    bounds: Bounds,
) -> Ready<
    <TlsStream as Halves>::Reader<longlink_wire::LenCodec>,
    <TlsStream as Halves>::Writer<longlink_wire::LenCodec>,
> {
    if !bounds.first_bytes(&stream, remote, "tls").await {
        return None;
    }
    // Boxed: the TLS state (a few kilobytes) exists from the ClientHello on.
    let tls = Box::pin(bounds.run(remote, "tls", tls_accept(acceptor, stream, remote))).await?;
    let agent = shared.settings.new_agent(Transport::Tcp, local, remote);
    let (reader, writer) = tls.halves(shared.settings.frames, shared.settings.frames, &[]);
    Some(Upgraded {
        shared,
        agent,
        reader,
        writer,
    })
}

/// The TLS handshake itself.
async fn tls_accept(
    acceptor: super::transport::tls::TlsAcceptor,
    stream: TcpStream,
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

/// The HTTP upgrade (answering 405, 400, 503 as needed), then WebSocket messages.
async fn ws_upgrade<S: Halves>(
    shared: Arc<Shared>,
    mut stream: S,
    (local, remote): (SocketAddr, SocketAddr),
    admit: bool,
    bounds: &Bounds,
) -> Ready<S::Reader<ws::WsCodec>, S::Writer<ws::WsEncoder>> {
    let max_msg_len = shared.settings.ws_agent.max_msg_len;
    let halves = bounds
        .run(remote, "websocket", async {
            match ws::read_request(&mut stream, admit, shared.hooks.on_http.as_deref()).await {
                ws::Handshake::Upgrade { accept, rest } => {
                    ws::accept(stream, &accept, rest, max_msg_len)
                        .await
                        .map_err(|_| {
                            reject(Reject::Handshake);
                        })
                        .ok()
                }
                ws::Handshake::Refused => {
                    tracing::debug!(%remote, "websocket handshake refused");
                    None
                }
            }
        })
        .await?;
    let agent = shared.settings.new_agent(Transport::Ws, local, remote);
    let (reader, writer) = halves;
    Some(Upgraded {
        shared,
        agent,
        reader,
        writer,
    })
}

/// A connection on the WebSocket port: TLS first if configured, then the upgrade. Admitted,
/// it holds its slot and a handshake place; else (over a limit) its upgrade is answered
/// with 503, under the refusals' own cap.
pub(super) async fn ws_handshake(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    admitted: Result<(Slot, HandshakePlace), Refusal>,
) {
    let stop = match &admitted {
        Ok((_, place)) => place.token().clone(),
        Err(_) => shared.live.shutdown.clone(),
    };
    let bounds = Bounds::new(shared.settings.http_timeout, stop);
    if !bounds.first_bytes(&stream, remote, "websocket").await {
        return;
    }
    // Boxed: the request's buffer and parser, and a TLS handshake's state, exist from the
    // first bytes on.
    Box::pin(async move {
        let addrs = (stream.local_addr().unwrap_or(remote), remote);
        let admit = admitted.is_ok();
        match shared.services.tls_ws.clone() {
            None => {
                let ready = ws_upgrade(Arc::clone(&shared), stream, addrs, admit, &bounds).await;
                if let Ok((slot, place)) = admitted {
                    serve(ready, slot, place);
                }
            }
            // Boxed apart: a TLS handshake's state is no part of a plain upgrade's.
            Some(acceptor) => {
                Box::pin(async move {
                    let tls = tls_accept(acceptor, stream, remote);
                    let Some(tls) = bounds.run(remote, "tls", tls).await else {
                        return;
                    };
                    let ready = ws_upgrade(Arc::clone(&shared), tls, addrs, admit, &bounds).await;
                    if let Ok((slot, place)) = admitted {
                        serve(ready, slot, place);
                    }
                })
                .await
            }
        }
    })
    .await
}
