//! Handshakes before a connection is served: TLS (both listeners, when configured) and the
//! WebSocket upgrade, each bounded by `http_timeout` and abandoned when the gate stops.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use super::accept::Slot;
use super::stream::{Halves, TlsStream};
use super::{Shared, conn, ws};
use crate::agent::{Agent, Transport};
use crate::metrics::{Reject, reject};

/// An upgraded connection, ready to serve.
type Ready<R, W> = Option<(Arc<Shared>, Agent, R, W)>;

/// Runs a handshake (bounded by `http_timeout`, abandoned at shutdown), then serves the
/// connection in a task of its own: the handshake's larger state is freed.
pub(super) async fn handshake_then_serve<R, W>(
    handshake: impl Future<Output = Ready<R, W>>,
    slot: Slot,
) where
    R: conn::FrameReader + 'static,
    W: conn::FrameWriter,
{
    if let Some((shared, agent, reader, writer)) = handshake.await {
        conn::spawn(shared, agent, reader, writer, slot);
    }
}

/// Bounds a handshake by `http_timeout` and the gate's shutdown.
async fn bounded<T>(
    shared: &Shared,
    remote: SocketAddr,
    what: &str,
    f: impl Future<Output = Option<T>>,
) -> Option<T> {
    tokio::select! {
        done = tokio::time::timeout(shared.http_timeout, f) => match done {
            Ok(done) => done,
            Err(_) => {
                tracing::debug!(%remote, "{what} handshake timed out");
                reject(Reject::Handshake);
                None
            }
        },
        _ = shared.shutdown.cancelled() => None,
    }
}

/// TLS for a TCP connection, then length-prefixed frames over it.
pub(super) async fn tls_tcp(
    shared: Arc<Shared>,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
) -> Ready<
    <TlsStream as Halves>::Reader<longlink_wire::LenCodec>,
    <TlsStream as Halves>::Writer<longlink_wire::LenCodec>,
> {
    let tls = bounded(&shared, remote, "tls", async {
        acceptor
            .accept(stream)
            .await
            .map_err(|e| {
                tracing::debug!(%remote, error = %e, "tls handshake failed");
                reject(Reject::Tls);
            })
            .ok()
    })
    .await?;
    let agent = shared.new_agent(Transport::Tcp, local, remote);
    let (reader, writer) = tls.halves(shared.frames, shared.frames, &[]);
    Some((shared, agent, reader, writer))
}

/// The HTTP upgrade (answering 405, 400, 503 as needed), then WebSocket messages.
async fn ws_upgrade<S: Halves>(
    shared: Arc<Shared>,
    mut stream: S,
    local: SocketAddr,
    remote: SocketAddr,
    admit: bool,
) -> Ready<S::Reader<ws::WsCodec>, S::Writer<ws::WsEncoder>> {
    let max_msg_len = shared.ws_settings.max_msg_len;
    let halves = bounded(&shared, remote, "websocket", async {
        match ws::read_request(&mut stream, admit, shared.on_http.as_deref()).await {
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
    let agent = shared.new_agent(Transport::Ws, local, remote);
    Some((shared, agent, halves.0, halves.1))
}

/// A connection on the WebSocket port: TLS first if configured, then the upgrade. Without a
/// slot (over a limit) the upgrade is answered with 503.
pub(super) async fn ws_handshake(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    slot: Option<Slot>,
) {
    let local = stream.local_addr().unwrap_or(remote);
    let admit = slot.is_some();
    match shared.tls_ws.clone() {
        None => {
            let upgrade = ws_upgrade(Arc::clone(&shared), stream, local, remote, admit);
            match slot {
                Some(slot) => handshake_then_serve(upgrade, slot).await,
                None => drop(upgrade.await),
            }
        }
        // Boxed: a TLS handshake's state (tens of kilobytes) is no part of a plain
        // WebSocket handshake's task.
        Some(acceptor) => {
            Box::pin(async move {
                let Some(tls) = bounded(&shared, remote, "tls", async {
                    acceptor
                        .accept(stream)
                        .await
                        .map_err(|_| {
                            reject(Reject::Tls);
                        })
                        .ok()
                })
                .await
                else {
                    return;
                };
                let upgrade = ws_upgrade(Arc::clone(&shared), tls, local, remote, admit);
                match slot {
                    Some(slot) => handshake_then_serve(upgrade, slot).await,
                    None => drop(upgrade.await),
                }
            })
            .await
        }
    }
}
