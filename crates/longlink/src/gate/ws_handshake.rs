//! The WebSocket listener's handshake, within `http_timeout`: the PROXY header (when
//! `proxy_protocol` is on), TLS (when configured), the upgrade request (answered 405, 400,
//! 426, 431, 503 as [`ws::read_request`] does); then who the client is (the address a trusted
//! proxy forwarded), its place under `max_conn_per_ip` (`503`), `ws_origins` (`403`) and the
//! application's `on_upgrade` hook (its answer); and only then the `101` and the agent.

use std::net::SocketAddr;
use std::sync::Arc;

use ::http::{Extensions, Request, StatusCode};
use tokio::net::TcpStream;

use super::admission::{HandshakePlace, Refusal, Slot};
use super::handshake::{Bounds, Ready, Upgraded, proxy_header, serve, tls_accept};
use super::shared::Shared;
use super::transport::proxy::Prefixed;
use super::transport::{Halves, ws};
use super::upgrade::{self, UpgradeRequest};
use crate::agent::Transport;
use crate::metrics::{Reject, reject};

/// A connection on the WebSocket port: its PROXY header and TLS first if configured, then
/// the upgrade. Admitted, it holds its slot and a handshake place; else (over a limit) its
/// upgrade is answered with 503, under the refusals' own cap.
pub(super) async fn ws_handshake(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    admitted: Result<(Slot, HandshakePlace), Refusal>,
) {
    let stop = match &admitted {
        Ok((_, place)) => place.token().clone(),
        Err(_) => shared.live.shutdown.clone(),
    };
    let bounds = Bounds::new(shared.settings.http_timeout, stop);
    if !bounds.first_bytes(&stream, peer, "websocket").await {
        return;
    }
    // Boxed: the request's buffer and parser, and a TLS handshake's state, exist from the
    // first bytes on.
    Box::pin(async move {
        let local = stream.local_addr().unwrap_or(peer);
        let Some((remote, read)) = proxy_header(&shared, &mut stream, peer, &bounds).await else {
            return;
        };
        // A refusal's place is held until its 503 is written.
        let (slot, place) = match admitted {
            Ok((slot, place)) => (Some(slot), Ok(place)),
            Err(refusal) => (None, Err(refusal)),
        };
        let from = From {
            addrs: (local, remote),
            peer,
            slot,
        };
        match shared.services.tls_ws.clone() {
            None => {
                let ready = ws_upgrade(Arc::clone(&shared), stream, read, from, &bounds).await;
                if let Ok(place) = place {
                    serve(ready, place);
                }
            }
            // Boxed apart: a TLS handshake's state is no part of a plain upgrade's.
            Some(acceptor) => {
                Box::pin(async move {
                    let tls = tls_accept(acceptor, Prefixed::new(stream, read), remote);
                    let Some(tls) = bounds.run(remote, "tls", tls).await else {
                        return;
                    };
                    let ready = ws_upgrade(Arc::clone(&shared), tls, Vec::new(), from, &bounds);
                    let ready = ready.await;
                    if let Ok(place) = place {
                        serve(ready, place);
                    }
                })
                .await
            }
        }
    })
    .await
}

/// Where an upgrade comes from.
struct From {
    /// The server's end, and the client's address so far (the PROXY header's source, or
    /// the socket's peer).
    addrs: (SocketAddr, SocketAddr),
    /// The socket's peer.
    peer: SocketAddr,
    /// Its place, if admitted (else its upgrade is answered 503).
    slot: Option<Slot>,
}

/// The HTTP upgrade (answering 405, 400, 503 as needed), the checks and the hook, the 101;
/// then WebSocket messages. `read`: bytes already read (past a PROXY header).
async fn ws_upgrade<S: Halves>(
    shared: Arc<Shared>,
    mut stream: S,
    read: Vec<u8>,
    from: From,
    bounds: &Bounds,
) -> Ready<S::Reader<ws::WsCodec>, S::Writer<ws::WsEncoder>> {
    let max_msg_len = shared.settings.ws_agent.max_msg_len;
    let (local, remote) = from.addrs;
    let keep = shared.hooks.on_upgrade.is_some()
        || !shared.settings.ws_origins.is_empty()
        || shared.settings.real_addr.trusted.contains(remote.ip());
    let http = shared.hooks.on_http.as_deref();
    let upgraded = bounds
        .run(remote, "websocket", async {
            let admit = from.slot.is_some();
            let (accept, rest, request) =
                match ws::read_request_after(&mut stream, read, admit, http, keep).await {
                    ws::Handshake::Upgrade {
                        accept,
                        rest,
                        request,
                    } => (accept, rest, request),
                    ws::Handshake::Refused => {
                        tracing::debug!(%remote, "websocket handshake refused");
                        return None;
                    }
                };
            let mut slot = from.slot?;
            let checked = check(&shared, request, (remote, from.peer), &mut slot);
            let (remote, attached) = match checked {
                Ok(checked) => checked,
                Err(answer) => {
                    ws::answer(&mut stream, answer).await;
                    return None;
                }
            };
            let halves = ws::accept(stream, &accept, rest, max_msg_len)
                .await
                .map_err(|_| reject(Reject::Handshake))
                .ok()?;
            Some((halves, remote, attached, slot))
        })
        .await;
    let ((reader, writer), remote, attached, slot) = upgraded?;
    let agent = shared
        .settings
        .new_agent(Transport::Ws, local, remote, attached);
    Some(Upgraded {
        shared,
        agent,
        reader,
        writer,
        slot,
    })
}

/// What a valid upgrade from `remote` (the socket's `peer`) must still pass: the client's
/// address (forwarded by a trusted proxy), its place under `max_conn_per_ip`, `ws_origins`,
/// and the `on_upgrade` hook. Gives the address and the values to attach, or the answer.
fn check(
    shared: &Shared,
    request: Option<Box<Request<()>>>,
    (remote, peer): (SocketAddr, SocketAddr),
    slot: &mut Slot,
) -> Result<(SocketAddr, Extensions), Vec<u8>> {
    let remote = match &request {
        Some(r) => shared
            .settings
            .real_addr
            .trusted
            .client(remote, r.headers()),
        None => remote,
    };
    if !shared.services.admission.settle(slot, remote.ip()) {
        let busy = "too many connections from this address";
        return Err(text(StatusCode::SERVICE_UNAVAILABLE, busy));
    }
    let Some(request) = request else {
        return Ok((remote, Extensions::new()));
    };
    if !upgrade::origin_allowed(&shared.settings.ws_origins, request.headers()) {
        tracing::debug!(%remote, origin = ?request.headers().get("origin"), "websocket origin refused");
        reject(Reject::Origin);
        return Err(text(StatusCode::FORBIDDEN, "origin not allowed"));
    }
    let Some(hook) = &shared.hooks.on_upgrade else {
        return Ok((remote, Extensions::new()));
    };
    let request = UpgradeRequest::new(*request, remote, peer);
    match upgrade::ask(hook, &request) {
        Ok(attached) => Ok((remote, attached)),
        Err(answer) => {
            tracing::debug!(%remote, path = request.path(), "websocket upgrade refused by on_upgrade");
            reject(Reject::Upgrade);
            Err(answer)
        }
    }
}

/// A text answer, as bytes.
fn text(status: StatusCode, body: &'static str) -> Vec<u8> {
    super::http::to_bytes(&super::http::text(status, body))
}
