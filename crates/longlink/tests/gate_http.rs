//! `GateBuilder::on_http`: plain GETs on the WebSocket port answered by the application,
//! while upgrades (any path), other methods and bad requests behave as without the hook.

mod common;

use bytes::Bytes;
use common::*;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{Request, Response};
use longlink::Encoding;
use longlink::gate::query_param;

/// A 200 with a content type and a body.
fn ok(content_type: &str, body: impl Into<Bytes>) -> Option<Response<Bytes>> {
    let page = Response::builder().header(CONTENT_TYPE, content_type);
    Some(page.body(body.into()).unwrap())
}

/// The hook under test: `/` is a page, `/echo` repeats the query, `/boom` panics, anything
/// else is declined.
fn hook(req: &Request<()>) -> Option<Response<Bytes>> {
    match req.uri().path() {
        "/" => ok("text/html; charset=utf-8", "<h1>hi</h1>"),
        "/echo" => ok(
            "text/plain; charset=utf-8",
            format!(
                "{} {} q={} ua={}",
                req.method(),
                req.uri().path(),
                query_param(req.uri(), "q").unwrap_or_default(),
                req.headers()
                    .get(USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
            ),
        ),
        "/boom" => panic!("hook panics"),
        _ => None,
    }
}

#[tokio::test]
async fn the_hook_answers_plain_gets_and_upgrades_still_work() {
    bounded(TEST_TIMEOUT, async {
        let server = start_with(config(Encoding::Json), |gate| gate.on_http(hook)).await;
        let ws = server.ws;

        let page = http_raw(ws, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status_line(&page), "HTTP/1.1 200 OK", "{page}");
        assert!(
            page.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"),
            "{page}"
        );
        assert!(page.contains("\r\nContent-Length: 11\r\n"), "{page}");
        assert!(page.contains("\r\nConnection: close\r\n"), "{page}");
        assert!(page.ends_with("\r\n\r\n<h1>hi</h1>"), "{page}");

        let echo = http_raw(
            ws,
            "GET /echo?q=a%20b&z=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: t/1\r\n\r\n",
        )
        .await;
        assert!(echo.ends_with("\r\n\r\nGET /echo q=a b ua=t/1"), "{echo}");

        // Declined: the gate's own 400, as without a hook.
        let declined = http_raw(ws, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(status_line(&declined).contains(" 400"), "{declined}");
        // A panicking hook is a 500, and the gate goes on.
        let boom = http_raw(ws, "GET /boom HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(status_line(&boom).contains(" 500"), "{boom}");
        // Other methods are still 405, even on a path the hook serves.
        let post = http_raw(
            ws,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(status_line(&post).contains(" 405"), "{post}");
        // An upgrade without `Connection: Upgrade` is still a 400, not the page.
        let half = http_raw(
            ws,
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
        )
        .await;
        assert!(status_line(&half).contains(" 400"), "{half}");
        // Upgrades work on every path, the hook's too.
        for path in ["/", "/echo?q=1", "/other"] {
            let mut c = ws_connect(ws, path)
                .await
                .unwrap_or_else(|e| panic!("upgrade on {path}: {e}"));
            assert_eq!(ws_echo(&mut c, Wire(Encoding::Json), path).await, path);
        }

        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn serve_manifest_answers_manifest_json_before_the_hook() {
    bounded(TEST_TIMEOUT, async {
        let mut with_resume = config(Encoding::Json);
        with_resume.resume_window = std::time::Duration::from_secs(30);
        let server = start_with(with_resume, |gate| {
            gate.on_http(hook)
                .serve_manifest(longlink::wire::manifest::FileDescriptorSet::default())
        })
        .await;
        let answer = http_raw(server.ws, "GET /manifest.json HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
        assert!(
            answer.contains("\r\nContent-Type: application/json\r\n"),
            "{answer}"
        );
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_str(body).expect("a JSON manifest");
        assert_eq!(doc["format"], "longlink-manifest/2");
        let messages = doc["messages"].as_array().unwrap();
        // The application's messages (no descriptors given: names and ids only), then the
        // LL_ ones the gate registered for resume, described by the library.
        assert!(messages.len() > 6, "{doc}");
        let ack = messages
            .iter()
            .find(|m| m["name"] == "LL_Ack")
            .expect("LL_Ack");
        assert_eq!(ack["id"], 65535);
        assert_eq!(ack["fields"][0]["name"], "seq");
        assert_eq!(ack["fields"][0]["type"], "uint64");
        // The hook still answers its paths.
        let page = http_raw(server.ws, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(page.ends_with("<h1>hi</h1>"), "{page}");
        server.shutdown().await;

        // Not asked: /manifest.json is the hook's to answer (here: declined, 400).
        let server = start_with(config(Encoding::Json), |gate| gate.on_http(hook)).await;
        let answer = http_raw(server.ws, "GET /manifest.json HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(status_line(&answer).contains(" 400"), "{answer}");
        server.shutdown().await;
    })
    .await;
}
