//! Accepting: one loop per listener. Each accepted socket takes its place under the
//! connection limits ([`Admission`](super::admission::Admission)), then goes on to its
//! handshake or straight to its connection task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::admission::Slot;
use super::conn;
use super::handshake::{Bounds, handshake_then_serve, proxied_tcp, tls_tcp};
use super::shared::Shared;
use super::transport::Halves;
use super::ws_handshake::ws_handshake;
use crate::agent::Transport;
use crate::metrics::{Reject, reject};
use ::http::Extensions;

/// Accepts until the gate stops accepting (its drain or its stop); each connection gets its place, then its task.
pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, transport: Transport) {
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            _ = shared.live.listening.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => {
                backoff = Duration::ZERO;
                pair
            }
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait and retry
                // (leaf: 5 ms doubling up to 1 s).
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                tracing::warn!(error = %e, retry_in = ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let real = &shared.settings.real_addr;
        if real.refuses(remote.ip()) {
            tracing::debug!(%remote, "not a trusted proxy: closed");
            reject(Reject::Proxy);
            continue;
        }
        keep_alive(&stream, &shared);
        // The address counted under max_conn_per_ip: the peer's, unless the real one comes
        // later (a PROXY header, a trusted proxy's forwarded header).
        let ip = (!real.deferred(transport, remote.ip())).then_some(remote.ip());
        let slot = shared.services.admission.try_slot(ip);
        match transport {
            Transport::Tcp => serve_tcp(&shared, stream, remote, slot),
            Transport::Ws => upgrade_ws(&shared, stream, remote, slot),
        }
    }
}

/// The socket's options: no delay, and TCP keepalive where the settings ask for it.
fn keep_alive(stream: &TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    if !shared.settings.tcp_keepalive.is_zero() {
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(shared.settings.tcp_keepalive)
            .with_interval(shared.settings.tcp_keepalive);
        let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive);
    }
}

/// A TCP connection with its place (`slot`): its PROXY header and TLS handshake in a task
/// of its own, or (with neither) its connection task at once. Without a place, the socket is closed.
fn serve_tcp(shared: &Arc<Shared>, stream: TcpStream, remote: SocketAddr, slot: Option<Slot>) {
    let Some(slot) = slot else {
        tracing::debug!(%remote, "too many connections");
        drop(stream);
        return;
    };
    let local = stream.local_addr().unwrap_or(remote);
    let tls = shared.services.tls_tcp.clone();
    if tls.is_some() || shared.settings.real_addr.proxy_protocol {
        let place = shared.services.admission.handshake(&shared.live.shutdown);
        let bounds = Bounds::new(shared.settings.http_timeout, place.token().clone());
        let (shared, addrs) = (Arc::clone(shared), (local, remote));
        let tracker = &shared.live.tracker;
        match tls {
            Some(acceptor) => {
                let handshake = tls_tcp(Arc::clone(&shared), acceptor, stream, addrs, bounds, slot);
                tracker.spawn(handshake_then_serve(handshake, place))
            }
            None => {
                let handshake = proxied_tcp(Arc::clone(&shared), stream, addrs, bounds, slot);
                tracker.spawn(handshake_then_serve(handshake, place))
            }
        };
        return;
    }
    let agent = shared
        .settings
        .new_agent(Transport::Tcp, local, remote, Extensions::new());
    let (reader, writer) = stream.halves(shared.settings.frames, shared.settings.frames, &[]);
    conn::spawn(Arc::clone(shared), agent, reader, writer, slot);
}

/// A WebSocket connection: its upgrade in a task of its own. Over the limit, a client gets a
/// polite 503, but only so many at once: a flood of refused upgrades must not hold sockets
/// open up to http_timeout.
fn upgrade_ws(shared: &Arc<Shared>, stream: TcpStream, remote: SocketAddr, slot: Option<Slot>) {
    let admitted = match slot {
        Some(slot) => Ok((
            slot,
            shared.services.admission.handshake(&shared.live.shutdown),
        )),
        None => match shared.services.admission.refusal() {
            Some(r) => Err(r),
            None => {
                tracing::debug!(%remote, "too many connections");
                return;
            }
        },
    };
    let handshake = ws_handshake(Arc::clone(shared), stream, remote, admitted);
    shared.live.tracker.spawn(handshake);
}
