//! The demo chat page and the browser client, served on the WebSocket port by the gate's
//! [`on_http`](longlink::gate::GateBuilder::on_http) hook: a plain `GET` (no upgrade) of
//!
//! | path | answer |
//! |---|---|
//! | `/`, `/index.html` | the demo page (`web/index.html`) |
//! | `/longlink-client/*.js` | the client, ES modules: the npm package `longlink-client` (`clients/typescript`) as build.rs compiled it |
//! | `/chat.js` | the page's script (`web/chat.js`) |
//! | `/manifest.json` | the message manifest ([`crate::manifest`]), served by the gate ([`GateBuilder::serve_manifest`](longlink::gate::GateBuilder::serve_manifest)) |
//! | `/server.json` | `{"encoding": "json"}`: the wire encoding the server speaks |
//! | `/dev/token?uid=N` | a login token for uid N, only with `[chat] dev_tokens = true` (else 404) |
//!
//! Any other path gets the gate's usual `400`, and WebSocket upgrades work on every path.
//! The files are embedded in the binary.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode};
use longlink::Encoding;
use longlink::gate::query_param;

use crate::ChatConfig;
use crate::token;

/// `web/index.html`.
pub const INDEX_HTML: &str = include_str!("../web/index.html");
include!(concat!(env!("OUT_DIR"), "/web_client.rs"));
/// `web/chat.js`.
pub const CHAT_JS: &str = include_str!("../web/chat.js");

/// How long a `/dev/token` token lives, in seconds.
pub const DEV_TOKEN_TTL: i64 = 86_400;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// An answer with a status, a content type and a body.
fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Bytes> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let content_type = http::HeaderValue::from_static(content_type);
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

/// The hook for [`GateBuilder::on_http`](longlink::gate::GateBuilder::on_http).
pub fn handler(
    chat: &ChatConfig,
    encoding: Encoding,
) -> impl Fn(&Request<()>) -> Option<Response<Bytes>> + Send + Sync + 'static {
    let server = format!(
        "{{\"encoding\":\"{}\"}}\n",
        match encoding {
            Encoding::Json => "json",
            Encoding::Protobuf => "protobuf",
        }
    );
    let dev_secret = chat.dev_tokens.then(|| chat.token_secret.clone());
    let server = Bytes::from(server);
    move |req: &Request<()>| {
        let ok = StatusCode::OK;
        Some(match req.uri().path() {
            "/" | "/index.html" => answer(ok, HTML, INDEX_HTML),
            "/chat.js" => answer(ok, JS, CHAT_JS),
            path if path.starts_with("/longlink-client/") => client_file(path),
            "/server.json" => answer(ok, JSON, server.clone()),
            "/dev/token" => dev_token(dev_secret.as_deref(), req),
            _ => return None,
        })
    }
}

/// `/longlink-client/NAME.js`: a file of the built client; a 503 saying how to build it
/// when build.rs could not.
fn client_file(path: &str) -> Response<Bytes> {
    let name = &path["/longlink-client/".len()..];
    if CLIENT_FILES.is_empty() {
        let body = "the TypeScript client was not built: run `npm ci` in clients/typescript, then rebuild\n";
        return answer(StatusCode::SERVICE_UNAVAILABLE, TEXT, body);
    }
    match CLIENT_FILES.iter().find(|(file, _)| *file == name) {
        Some((_, text)) => answer(StatusCode::OK, JS, *text),
        None => answer(StatusCode::NOT_FOUND, TEXT, "Not Found\n"),
    }
}

/// `/dev/token?uid=N`: a token for N, signed with the configured secret.
fn dev_token(secret: Option<&str>, req: &Request<()>) -> Response<Bytes> {
    let Some(secret) = secret else {
        let body = "Not Found (set [chat] dev_tokens = true)\n";
        return answer(StatusCode::NOT_FOUND, TEXT, body);
    };
    let uid = query_param(req.uri(), "uid").and_then(|u| u.trim().parse::<u64>().ok());
    match uid {
        Some(uid) if uid > 0 => {
            let claims = token::Claims {
                uid,
                exp: crate::chat::now_unix().saturating_add(DEV_TOKEN_TTL),
            };
            answer(
                StatusCode::OK,
                TEXT,
                token::sign(secret.as_bytes(), &claims),
            )
        }
        _ => answer(
            StatusCode::BAD_REQUEST,
            TEXT,
            "uid must be a positive integer\n",
        ),
    }
}
