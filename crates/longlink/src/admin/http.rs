//! The admin listener's HTTP, with `axum`: `GET /metrics` (Prometheus text), `GET /healthz`
//! (`200 ok` while the app serves, `503 draining` once it stops), the live page `GET /` and
//! its `GET /stats.json` ([`stats`](super::stats)), and, when `[admin] api_key` is set, the
//! server API under `/api/v1` ([`api::routes`](super::api::routes)).
//!
//! The page and `stats.json` are open, like `/metrics`: read-only figures, no user data,
//! nothing they can change. What acts or reveals more (the API, the heap profile) asks for
//! the key.
//!
//! Slow or stalled clients cannot starve it: every connection is served in its own task and
//! must send its request head within [`HEAD_TIMEOUT`] (5 s), a request takes at most
//! [`TIMEOUT`] (10 s) and a connection lives at most [`LIFETIME`] (30 s); of more than
//! [`MAX_CONNECTIONS`] (256) open at once, the oldest is closed, so they cannot take every
//! file descriptor either, and `/healthz` answers at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Shared;

/// How long one request may take, reading included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may take to send its request head (line and headers).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Most admin connections open at once; a new one beyond them closes the oldest (most
/// likely a stalled one: a request takes milliseconds).
const MAX_CONNECTIONS: usize = 256;
/// Longest a connection stays open: the head, the request, and writing the answer.
const LIFETIME: Duration = Duration::from_secs(30);
/// How long a request in progress may still take once its connection is being closed.
const GRACE: Duration = Duration::from_secs(1);

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    shared.sample_mailboxes();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render().unwrap_or_default(),
    )
        .into_response()
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.healthy() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    }
}

/// The live page (`admin/stats/page.html`): self-contained, it loads nothing but
/// `stats.json`, and its policy forbids anything else.
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src data:",
            ),
        ],
        include_str!("stats/page.html"),
    )
        .into_response()
}

async fn stats_json(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(shared.stats_json().await),
    )
        .into_response()
}

/// 404: JSON with its `code` under the server API's `/api/`, text elsewhere.
async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return super::api::ApiError::new(404, "not_found", format!("no {}", uri.path()))
            .into_response();
    }
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Ends a request that takes longer than [`TIMEOUT`], and answers one request per
/// connection (`Connection: close`), as the admin listener always has: no idle connection
/// holds a place.
async fn bounded(req: Request, next: Next) -> Response {
    let mut answer = match tokio::time::timeout(TIMEOUT, next.run(req)).await {
        Ok(answer) => answer,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "timed out\n").into_response(),
    };
    answer.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    answer
}

/// The admin routes: metrics and health, and the server API when a key is set.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/", get(page))
        .route("/stats.json", get(stats_json))
        .fallback(not_found)
        .with_state(Arc::clone(&shared));
    if let Some(key) = &shared.api_key {
        router = router
            .merge(super::api::routes::router(Arc::clone(&shared.api), key))
            .merge(super::debug::router(key));
    }
    router.layer(middleware::from_fn(bounded))
}

/// Serves until `token` is cancelled: each connection in its own task, with at most
/// [`HEAD_TIMEOUT`] to send its request head and at most [`MAX_CONNECTIONS`] open (a new one
/// beyond them closes the oldest), so slow or stalled clients cannot keep `/healthz` from
/// answering.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>, token: CancellationToken) {
    let app = router(shared);
    let tracker = TaskTracker::new();
    let open = Arc::new(Open::default());
    while let Some((stream, remote)) = super::server::accept(&listener, &token, "admin http").await
    {
        let place = Open::take(&open, &token);
        // The router takes hyper's body as it is.
        let service = TowerToHyperService::new(app.clone());
        tracker.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .keep_alive(false);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let served = tokio::select! {
                served = conn.as_mut() => served,
                // A client that takes its answer this slowly (or never reads it) goes.
                _ = tokio::time::sleep(LIFETIME) => Ok(()),
                _ = place.close.cancelled() => {
                    // Stopping, or closed for a newer connection: a request in progress
                    // may finish (briefly); a connection still sending its head closes.
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(GRACE, conn).await.unwrap_or(Ok(()))
                }
            };
            if let Err(e) = served {
                tracing::debug!(%remote, error = %e, "admin http connection ended");
            }
            drop(place);
        });
    }
    tracker.close();
    tracker.wait().await;
}

/// The open admin connections, oldest first, each with what closes it.
#[derive(Default)]
struct Open {
    list: std::sync::Mutex<(u64, VecDeque<(u64, CancellationToken)>)>,
}

/// A connection's place under [`MAX_CONNECTIONS`]: dropping it gives the place back.
struct Place {
    id: u64,
    open: Arc<Open>,
    close: CancellationToken,
}

impl Open {
    /// A place for a new connection; at [`MAX_CONNECTIONS`], the oldest is closed for it.
    fn take(open: &Arc<Open>, token: &CancellationToken) -> Place {
        let mut list = open.list.lock().unwrap_or_else(|e| e.into_inner());
        let (next, conns) = &mut *list;
        if conns.len() >= MAX_CONNECTIONS
            && let Some((_, oldest)) = conns.pop_front()
        {
            tracing::debug!("admin http: {MAX_CONNECTIONS} connections open, closing the oldest");
            oldest.cancel();
        }
        *next += 1;
        let close = token.child_token();
        conns.push_back((*next, close.clone()));
        Place {
            id: *next,
            open: Arc::clone(open),
            close,
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut list = self.open.list.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = list.1.iter().position(|(id, _)| *id == self.id) {
            list.1.remove(i);
        }
    }
}
