//! `/debug/pprof/heap` on the admin listener, behind the API key (routes only when
//! `[admin] api_key` is set): the heap profile of [`heap`](super::heap), or, in a server built
//! without longlink's `heap-profiler` feature, `501` with the code `heap_profiler_unavailable`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /debug/pprof/heap/start` | `{"started": "<what the profiler said>"}` |
//! | `GET /debug/pprof/heap` | the profile: pprof's protobuf, gzip-compressed (`409 heap_profile_inactive` while sampling is off) |
//! | `POST /debug/pprof/heap/stop` | `{"stopped": "<what the profiler said>"}` |

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::api::ApiError;

#[cfg(feature = "heap-profiler")]
async fn heap() -> Response {
    use axum::http::header;
    match super::heap::dump().await {
        Ok(profile) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"heap.pb.gz\"",
                ),
            ],
            profile,
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(feature = "heap-profiler")]
async fn start() -> Response {
    match super::heap::start().await {
        Ok(said) => axum::Json(serde_json::json!({ "started": said })).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(feature = "heap-profiler")]
async fn stop() -> Response {
    match super::heap::stop().await {
        Ok(said) => axum::Json(serde_json::json!({ "stopped": said })).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The answer of every heap route in a server without the profiler.
#[cfg(not(feature = "heap-profiler"))]
async fn unavailable() -> Response {
    ApiError::new(
        501,
        "heap_profiler_unavailable",
        "this server is built without longlink's `heap-profiler` feature",
    )
    .into_response()
}
#[cfg(not(feature = "heap-profiler"))]
use unavailable as heap;
#[cfg(not(feature = "heap-profiler"))]
use unavailable as start;
#[cfg(not(feature = "heap-profiler"))]
use unavailable as stop;

/// The `/debug/pprof` routes, guarded by `key`.
pub(super) fn router(key: &str) -> Router {
    let key: Arc<str> = key.into();
    Router::new()
        .route("/debug/pprof/heap", get(heap))
        .route("/debug/pprof/heap/start", post(start))
        .route("/debug/pprof/heap/stop", post(stop))
        .route_layer(middleware::from_fn_with_state(
            key,
            super::api::routes::authorize,
        ))
}
