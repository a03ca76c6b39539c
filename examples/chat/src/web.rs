//! The demo chat page and the browser client, served on the WebSocket port by the gate's
//! [`on_http`](longlink::gate::GateBuilder::on_http) hook: a plain `GET` (no upgrade) of
//!
//! | path | answer |
//! |---|---|
//! | `/`, `/index.html` | the demo page (`web/index.html`) |
//! | `/longlink.js` | the generic browser client (`web/longlink.js`, an ES module) |
//! | `/wire.js` | its wire codec, which it imports (`web/wire.js`) |
//! | `/chat.js` | the page's script (`web/chat.js`) |
//! | `/manifest.json` | the message manifest ([`crate::manifest`]) |
//! | `/server.json` | `{"encoding": "json"}`: the wire encoding the server speaks |
//! | `/dev/token?uid=N` | a login token for uid N, only with `[chat] dev_tokens = true` (else 404) |
//!
//! Any other path gets the gate's usual `400`, and WebSocket upgrades work on every path.
//! The files are embedded in the binary.

use longlink::Encoding;
use longlink::gate::{HttpRequest, HttpResponse};

use crate::ChatConfig;
use crate::token;

/// `web/index.html`.
pub const INDEX_HTML: &str = include_str!("../web/index.html");
/// `web/longlink.js`.
pub const LONGLINK_JS: &str = include_str!("../web/longlink.js");
/// `web/wire.js`.
pub const WIRE_JS: &str = include_str!("../web/wire.js");
/// `web/chat.js`.
pub const CHAT_JS: &str = include_str!("../web/chat.js");

/// How long a `/dev/token` token lives, in seconds.
pub const DEV_TOKEN_TTL: i64 = 86_400;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const JSON: &str = "application/json";

/// The hook for [`GateBuilder::on_http`](longlink::gate::GateBuilder::on_http).
pub fn handler(
    chat: &ChatConfig,
    encoding: Encoding,
) -> impl Fn(&HttpRequest) -> Option<HttpResponse> + Send + Sync + 'static {
    let manifest = crate::manifest::to_json(&crate::manifest::chat());
    let server = format!(
        "{{\"encoding\":\"{}\"}}\n",
        match encoding {
            Encoding::Json => "json",
            Encoding::Protobuf => "protobuf",
        }
    );
    let dev_secret = chat.dev_tokens.then(|| chat.token_secret.clone());
    move |req: &HttpRequest| {
        Some(match req.path.as_str() {
            "/" | "/index.html" => HttpResponse::new(200, HTML, INDEX_HTML),
            "/longlink.js" => HttpResponse::new(200, JS, LONGLINK_JS),
            "/wire.js" => HttpResponse::new(200, JS, WIRE_JS),
            "/chat.js" => HttpResponse::new(200, JS, CHAT_JS),
            "/manifest.json" => HttpResponse::new(200, JSON, manifest.clone()),
            "/server.json" => HttpResponse::new(200, JSON, server.clone()),
            "/dev/token" => dev_token(dev_secret.as_deref(), req),
            _ => return None,
        })
    }
}

/// `/dev/token?uid=N`: a token for N, signed with the configured secret.
fn dev_token(secret: Option<&str>, req: &HttpRequest) -> HttpResponse {
    let Some(secret) = secret else {
        return HttpResponse::text(404, "Not Found (set [chat] dev_tokens = true)\n");
    };
    let uid = req
        .query_param("uid")
        .and_then(|u| u.trim().parse::<u64>().ok());
    match uid {
        Some(uid) if uid > 0 => {
            let claims = token::Claims {
                uid,
                exp: crate::chat::now_unix().saturating_add(DEV_TOKEN_TTL),
            };
            HttpResponse::text(200, token::sign(secret.as_bytes(), &claims))
        }
        _ => HttpResponse::text(400, "uid must be a positive integer\n"),
    }
}
