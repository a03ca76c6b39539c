//! The server API over HTTP, with `axum`, under `/api/v1` on the admin listener:
//!
//! | request | answer |
//! |---|---|
//! | `POST /api/v1/push` `{"uid": 42, "message": {"S2C_Message": {..}}}` | `{"delivered": true}` (`false`: not online) |
//! | `POST /api/v1/broadcast` `{"group": "room", "key": 7, "message": {..}}`, or `{"message": {..}}` for everyone | `{"sent": n}` (this node's connections; in a cluster each gate delivers its own, and `n` is 0) |
//! | `POST /api/v1/kick` `{"uid": 42, "reason": "banned"}` | `{"kicked": true}` (the application's goodbye, flushed, then the close) |
//! | `GET /api/v1/online/{uid}` | `{"uid": 42, "online": true, "node": "gate-1"}` |
//! | `GET /api/v1/stats` | `{"connections", "sessions", "groups", "nodes": [..]}` |
//! | `POST /api/v1/batch` `{"push": [{"uids": [..], "message": {..}}], "broadcast": [{"group", "keys": [..], "message"}]}` | `{"delivered", "not_online": [..], "failed": [..], "sent"}` (see `batch`) |
//!
//! Every request needs `Authorization: Bearer <api_key>` (compared in constant time), or it
//! gets `401`. Bodies are read as JSON whatever their `Content-Type`. A bad request gets `400 {"error": reason, "code": code}` (the codes of [`ApiError`](super::ApiError)) (an unknown message name, a body
//! that is not the type's, malformed JSON, a body over 64 KiB, a batch over 1 MiB or 10,000
//! targets); a cluster that does not
//! answer, `503`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::batch::{BATCH_BODY_LIMIT, BatchResult, parse_batch};
use super::{Api, ApiError, BODY_LIMIT, Broadcast, Kick, Push};

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(self.to_json())).into_response()
    }
}

/// A JSON body (whatever its `Content-Type` says: `curl -d` sends a form type), or the
/// reason it is not one: always a 400, an oversized body too.
fn body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    super::parse_body(&bytes(body, BODY_LIMIT)?)
}

/// The body's bytes, or `body_too_large` (over `limit`, or unreadable).
fn bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|_| {
        ApiError::bad_request(
            "body_too_large",
            format!("body: over {limit} bytes, or unreadable"),
        )
    })
}

async fn batch(
    State(api): State<Arc<Api>>,
    req: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchResult>, ApiError> {
    let batch = parse_batch(&bytes(req, BATCH_BODY_LIMIT)?)?;
    Ok(Json(api.batch(&batch).await?))
}

async fn push(
    State(api): State<Arc<Api>>,
    req: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let delivered = api.push(&body::<Push>(req)?).await?;
    Ok(Json(serde_json::json!({ "delivered": delivered })))
}

async fn broadcast(
    State(api): State<Arc<Api>>,
    req: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let sent = api.broadcast(&body::<Broadcast>(req)?).await?;
    Ok(Json(serde_json::json!({ "sent": sent })))
}

async fn kick(
    State(api): State<Arc<Api>>,
    req: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req: Kick = body(req)?;
    let kicked = api.kick(req.uid, &req.reason).await?;
    Ok(Json(serde_json::json!({ "kicked": kicked > 0 })))
}

async fn online(
    State(api): State<Arc<Api>>,
    uid: Result<Path<u64>, axum::extract::rejection::PathRejection>,
) -> Result<Json<super::Online>, ApiError> {
    let Path(uid) =
        uid.map_err(|e| ApiError::bad_request("bad_uid", format!("uid: {}", e.body_text())))?;
    Ok(Json(api.online(uid).await?))
}

async fn stats(State(api): State<Arc<Api>>) -> Json<super::Stats> {
    Json(api.stats().await)
}

/// Whether two byte strings are equal, in a time that depends only on their lengths
/// (`subtle`'s comparison).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Refuses a request without `Authorization: Bearer <key>`.
pub(crate) async fn authorize(
    State(key): State<Arc<str>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.trim().as_bytes(), key.as_bytes()) {
        let mut answer = ApiError::new(
            401,
            "unauthorized",
            "missing or wrong Authorization: Bearer <api_key>",
        )
        .into_response();
        answer.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return answer;
    }
    next.run(req).await
}

/// The `/api/v1` routes, guarded by `key`.
pub(crate) fn router(api: Arc<Api>, key: &str) -> Router {
    let key: Arc<str> = key.into();
    Router::new()
        .route("/api/v1/push", post(push))
        .route("/api/v1/broadcast", post(broadcast))
        .route("/api/v1/kick", post(kick))
        .route("/api/v1/online/{uid}", get(online))
        .route("/api/v1/stats", get(stats))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .route(
            "/api/v1/batch",
            post(batch).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)),
        )
        .route_layer(middleware::from_fn_with_state(key, authorize))
        .with_state(api)
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn keys_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
