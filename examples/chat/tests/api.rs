//! The server API (`[admin] api_key`) over HTTP, black-box: each endpoint's answer and its
//! effect on real connections (JSON and protobuf gates), the key, bad requests, and the
//! console's `kick <uid> [reason]` and `cpuprof`.

mod common;

use std::net::SocketAddr;

use common::*;
use longlink_testkit::Console;
use longlink_testkit::http::{HttpReply, http_get, http_request};
use serde_json::{Value, json};

const KEY: &str = "test-api-key";

async fn with_api(enc: Enc) -> TestServer {
    TestServer::start_with(enc, |c| {
        c.admin.api_key = KEY.into();
        c.admin.console_addr = "127.0.0.1:0".into();
    })
    .await
}

async fn call(
    admin: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> HttpReply {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    http_request(admin, method, path, &headers, body.as_bytes()).await
}

/// A request with the key; the answer must be `status`, and its JSON body is returned.
async fn api(admin: SocketAddr, method: &str, path: &str, body: Value, status: u16) -> Value {
    let reply = call(admin, method, path, Some(KEY), &body.to_string()).await;
    assert_eq!(reply.status, status, "{method} {path} {body}: {reply:?}");
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{reply:?}: not JSON: {e}"))
}

fn message(text: &str) -> Value {
    json!({"S2C_Message": {"room_id": 0, "from_uid": 0, "to_uid": 0, "text": text, "ts": now_unix()}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_broadcast_kick_online_and_stats_reach_real_connections() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = with_api(enc).await;
            let admin = server.admin.expect("admin listener");
            let mut ann = server.login(Transport::Tcp, 700).await;
            let mut bob = server.login(Transport::Ws, 701).await;
            assert_eq!(ann.watch(7).await, 1);

            // Push to one uid, in the gate's encoding whatever the API was given.
            let answer = api(
                admin,
                "POST",
                "/api/v1/push",
                json!({"uid": 700, "message": message("your order shipped")}),
                200,
            )
            .await;
            assert_eq!(answer, json!({"delivered": true}), "{enc:?}");
            assert_eq!(ann.expect_message().await.text, "your order shipped");
            bob.expect_quiet().await;
            let answer = api(
                admin,
                "POST",
                "/api/v1/push",
                json!({"uid": 999, "message": message("nobody")}),
                200,
            )
            .await;
            assert_eq!(answer, json!({"delivered": false}));

            // A room (the chat's named groups "room.<id>"), then everyone.
            let answer = api(
                admin,
                "POST",
                "/api/v1/broadcast",
                json!({"group": "room", "key": 7, "message": message("room 7 only")}),
                200,
            )
            .await;
            assert_eq!(answer, json!({"sent": 1}));
            assert_eq!(ann.expect_message().await.text, "room 7 only");
            bob.expect_quiet().await;
            let answer = api(
                admin,
                "POST",
                "/api/v1/broadcast",
                json!({"message": message("everyone")}),
                200,
            )
            .await;
            assert_eq!(answer, json!({"sent": 2}));
            assert_eq!(ann.expect_message().await.text, "everyone");
            assert_eq!(bob.expect_message().await.text, "everyone");

            // Presence and numbers.
            let answer = api(admin, "GET", "/api/v1/online/700", json!({}), 200).await;
            assert_eq!(answer, json!({"uid": 700, "online": true, "node": "local"}));
            let answer = api(admin, "GET", "/api/v1/online/999", json!({}), 200).await;
            assert_eq!(answer, json!({"uid": 999, "online": false, "node": null}));
            let stats = api(admin, "GET", "/api/v1/stats", json!({}), 200).await;
            assert_eq!(
                (&stats["connections"], &stats["sessions"], &stats["groups"]),
                (&json!(2), &json!(2), &json!(1)),
                "{stats}"
            );
            assert_eq!(stats["nodes"].as_array().map(Vec::len), Some(1), "{stats}");

            // A kick is the application's goodbye (the chat's S2C_Kick with the reason), then
            // the close.
            let answer = api(
                admin,
                "POST",
                "/api/v1/kick",
                json!({"uid": 701, "reason": "banned"}),
                200,
            )
            .await;
            assert_eq!(answer, json!({"kicked": true}));
            match bob.recv().await {
                Reply::Kick(k) => assert_eq!(k.reason, "banned"),
                other => panic!("expected S2C_Kick, got {other:?}"),
            }
            bob.expect_closed().await;
            let answer = api(admin, "POST", "/api/v1/kick", json!({"uid": 701}), 200).await;
            assert_eq!(answer, json!({"kicked": false}));
            ann.heartbeat().await;
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_required_and_without_one_there_is_no_api() {
    bounded(TEST_TIMEOUT, async {
        let server = with_api(Enc::Json).await;
        let admin = server.admin.unwrap();
        for key in [None, Some("wrong"), Some("test-api-key-and-more"), Some("")] {
            let reply = call(admin, "GET", "/api/v1/stats", key, "").await;
            assert_eq!(reply.status, 401, "{key:?}: {reply:?}");
            assert!(reply.body.contains("Authorization"), "{reply:?}");
            let reply = call(
                admin,
                "POST",
                "/api/v1/push",
                key,
                &json!({"uid": 1, "message": message("x")}).to_string(),
            )
            .await;
            assert_eq!(reply.status, 401, "{key:?}: {reply:?}");
        }
        // /metrics and /healthz keep their paths and answers, with no key.
        assert_eq!(http_get(admin, "/healthz").await.body, "ok\n");
        assert!(
            http_get(admin, "/metrics")
                .await
                .body
                .contains("longlink_connections_open")
        );
        server.shutdown().await;

        let plain = TestServer::start(Enc::Json).await;
        let admin = plain.admin.unwrap();
        let reply = call(admin, "GET", "/api/v1/stats", Some(KEY), "").await;
        assert_eq!(reply.status, 404, "no api_key, no API: {reply:?}");
        assert_eq!(http_get(admin, "/healthz").await.status, 200);
        plain.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_400_with_the_reason() {
    bounded(TEST_TIMEOUT, async {
        let server = with_api(Enc::Protobuf).await;
        let admin = server.admin.unwrap();
        let mut ann = server.login(Transport::Tcp, 800).await;
        let cases: Vec<(Value, &str)> = vec![
            (json!({"uid": 800, "message": {"S2C_Nope": {}}}), "S2C_Nope"),
            (
                json!({"uid": 800, "message": {"S2C_Message": {"text": 5}}}),
                "S2C_Message",
            ),
            (
                json!({"uid": 800, "message": {"S2C_Message": {}, "S2C_Kick": {}}}),
                "one key",
            ),
            (json!({"uid": "ann", "message": message("x")}), "uid"),
            (json!({"message": message("x")}), "uid"),
            (
                json!({"uid": 800, "message": message("x"), "extra": 1}),
                "extra",
            ),
        ];
        for (body, needle) in cases {
            let answer = api(admin, "POST", "/api/v1/push", body.clone(), 400).await;
            let reason = answer["error"].as_str().unwrap_or_default();
            assert!(reason.contains(needle), "{body}: {reason}");
        }
        for raw in [
            "not json",
            "{\"uid\": 800,",
            "",
            "{\"uid\": 800, \"message\": {\"S2C_Kick\": {}}} and more",
        ] {
            let reply = call(admin, "POST", "/api/v1/push", Some(KEY), raw).await;
            assert_eq!(reply.status, 400, "{raw:?}: {reply:?}");
        }
        let big = json!({"uid": 800, "message": message(&"x".repeat(70 * 1024))}).to_string();
        let reply = call(admin, "POST", "/api/v1/push", Some(KEY), &big).await;
        assert_eq!(reply.status, 400, "oversized: {}", reply.head);
        assert!(reply.body.contains("bytes"), "{reply:?}");
        let answer = api(
            admin,
            "POST",
            "/api/v1/broadcast",
            json!({"group": "room", "message": message("x")}),
            400,
        )
        .await;
        assert!(
            answer["error"].as_str().unwrap_or_default().contains("key"),
            "{answer}"
        );
        let reply = call(admin, "GET", "/api/v1/online/ann", Some(KEY), "").await;
        assert_eq!(reply.status, 400, "{reply:?}");
        // Nothing of it reached the client, which is still served.
        ann.expect_quiet().await;
        server.shutdown().await;
    })
    .await;
}

/// The gate's own protocol messages (`LL_*`: session resume) are the gate's to send: the API
/// refuses them as payloads, to a uid or a group or everyone, with 400 naming the message,
/// in either encoding (issue 21). Nothing reaches the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ll_protocol_messages_are_refused_as_payloads_with_400() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = with_api(enc).await;
            let admin = server.admin.unwrap();
            let mut ann = server.login(Transport::Tcp, 810).await;
            assert_eq!(ann.watch(8).await, 1);
            let protocol = [
                ("LL_Ack", json!({"seq": 1})),
                ("LL_Session", json!({"token": "t", "window_s": 30})),
                ("LL_Resumed", json!({"token": "t", "last_seq": 0})),
                ("LL_ResumeRefused", json!({"reason": "unknown"})),
            ];
            for (name, body) in protocol {
                let message = json!({ name: body });
                for (path, request) in [
                    ("/api/v1/push", json!({"uid": 810, "message": message})),
                    ("/api/v1/broadcast", json!({"message": message})),
                    (
                        "/api/v1/broadcast",
                        json!({"group": "room", "key": 8, "message": message}),
                    ),
                ] {
                    let answer = api(admin, "POST", path, request.clone(), 400).await;
                    let reason = answer["error"].as_str().unwrap_or_default();
                    assert!(
                        reason.contains(name) && reason.contains("protocol"),
                        "{path} {request}: {reason}"
                    );
                }
            }
            // The name spelled with a JSON escape is the same name.
            let escaped = r#"{"uid": 810, "message": {"LL_Ack": {"seq": 1}}}"#;
            let reply = call(admin, "POST", "/api/v1/push", Some(KEY), escaped).await;
            assert_eq!(reply.status, 400, "{reply:?}");
            ann.expect_quiet().await;
            // An application message still goes through.
            api(
                admin,
                "POST",
                "/api/v1/push",
                json!({"uid": 810, "message": message("still here")}),
                200,
            )
            .await;
            assert_eq!(ann.expect_message().await.text, "still here");
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_kicks_with_a_reason_and_profiles_the_cpu() {
    bounded(TEST_TIMEOUT, async {
        let dir = std::env::temp_dir().join(format!("longlink-cpuprof-{}", std::process::id()));
        let profiles = dir.display().to_string();
        let server = TestServer::start_with(Enc::Json, move |c| {
            c.admin.console_addr = "127.0.0.1:0".into();
            c.admin.profile_dir = profiles;
        })
        .await;
        let mut console = Console::connect(server.console.unwrap()).await;
        let help = console.run("help").await;
        assert!(
            help.contains("kick <uid> [reason]") && help.contains("cpuprof start|stop"),
            "{help}"
        );

        let mut ann = server.login(Transport::Tcp, 900).await;
        assert_eq!(
            console.run("kick 900 too many messages").await,
            "kicked 1\n"
        );
        match ann.recv().await {
            Reply::Kick(k) => assert_eq!(k.reason, "too many messages"),
            other => panic!("expected S2C_Kick, got {other:?}"),
        }
        ann.expect_closed().await;

        assert!(console.run("cpuprof start").await.contains("profil"));
        assert!(console.run("cpuprof start").await.starts_with("error"));
        // Some work to sample.
        let mut c = server.login(Transport::Ws, 901).await;
        for _ in 0..200 {
            c.heartbeat().await;
        }
        let wrote = console.run("cpuprof stop").await;
        let files: Vec<&str> = wrote
            .lines()
            .filter_map(|l| l.strip_prefix("wrote "))
            .collect();
        assert_eq!(files.len(), 2, "{wrote}");
        let svg = files.iter().find(|f| f.ends_with(".svg")).expect("an svg");
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(text.contains("<svg"), "not an SVG: {svg}");
        let pprof = files.iter().find(|f| !f.ends_with(".svg")).unwrap();
        assert!(std::fs::metadata(pprof).unwrap().len() > 0);
        assert!(console.run("cpuprof stop").await.starts_with("error"));
        assert_eq!(console.run("cpuprof").await, "usage: cpuprof start|stop\n");
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

/// A kicked client that keeps sending leaves its room's `online` count at once, though the
/// gate discards its input for up to `close_timeout` (5 s) before the socket goes (issue 14,
/// item 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_client_that_keeps_sending_leaves_the_room_count_at_once() {
    use longlink_chat::msg::{C2sUpdateWatchRoom, C2sUserHeartBeat};
    bounded(TEST_TIMEOUT, async {
        let server = with_api(Enc::Json).await;
        let admin = server.admin.expect("admin listener");
        let mut ann = server.login(Transport::Tcp, 710).await;
        let bob = server.login(Transport::Tcp, 711).await;
        assert_eq!(ann.watch(9).await, 1);
        let (mut tx, _rx) = bob.into_split();
        tx.send(encode(Enc::Json, &C2sUpdateWatchRoom { room_id: 9 }))
            .await
            .expect("bob watches");
        ann.watch_until(9, 2).await;
        // Bob sends heartbeats every 10 ms and reads nothing, through the kick and after.
        let sender = tokio::spawn(async move {
            let beat = encode(Enc::Json, &C2sUserHeartBeat { ptime: now_unix() });
            while tx.send(beat.clone()).await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        });
        let answer = api(admin, "POST", "/api/v1/kick", json!({"uid": 711}), 200).await;
        assert_eq!(answer, json!({"kicked": true}));
        let kicked = tokio::time::Instant::now();
        ann.watch_until(9, 1).await;
        let took = kicked.elapsed();
        assert!(
            took < std::time::Duration::from_secs(1),
            "bob left the room's count {took:?} after the kick"
        );
        sender.abort();
        server.shutdown().await;
    })
    .await;
}
