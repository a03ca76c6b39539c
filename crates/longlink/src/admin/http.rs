//! The admin listener's HTTP, with `axum`: `GET /metrics` (Prometheus text), `GET /healthz`
//! (`200 ok` while the app serves, `503 draining` once it stops), and, when `[admin] api_key`
//! is set, the server API under `/api/v1` ([`api::routes`](super::api::routes)).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Shared;

/// How long one request may take, reading included.
const TIMEOUT: Duration = Duration::from_secs(10);

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

async fn not_found() -> Response {
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
        .fallback(not_found)
        .with_state(Arc::clone(&shared));
    if let Some(key) = &shared.api_key {
        router = router.merge(super::api::routes::router(Arc::clone(&shared.api), key));
    }
    router.layer(middleware::from_fn(bounded))
}

/// Serves until `token` is cancelled.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>, token: CancellationToken) {
    let served = axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "admin http stopped");
    }
}
