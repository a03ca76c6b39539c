//! The server API's batch (`POST /api/v1/batch`, `<prefix>.api.batch`), black-box: one
//! request pushes to many uids and broadcasts to many rooms, each uid and room once, in one
//! process and across the gates of a cluster (real `nats-server`), over HTTP and NATS; a bad
//! batch is refused whole with its error code, nothing delivered.

mod common;

use std::net::SocketAddr;

use common::node::{Node, login_when_ready};
use common::*;
use longlink_testkit::http::{HttpReply, http_request};
use longlink_testkit::{NatsServer, wait_for};
use serde_json::{Value, json};

const KEY: &str = "batch-api-key";

async fn call(admin: SocketAddr, key: Option<&str>, body: &str) -> HttpReply {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    http_request(admin, "POST", "/api/v1/batch", &headers, body.as_bytes()).await
}

/// A batch over HTTP; the answer must be `status`, and its JSON body is returned.
async fn batch(admin: SocketAddr, body: &Value, status: u16) -> Value {
    let reply = call(admin, Some(KEY), &body.to_string()).await;
    assert_eq!(reply.status, status, "{body}: {reply:?}");
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{reply:?}: not JSON: {e}"))
}

/// A batch on `longlink.api.batch` through a node's own NATS client.
async fn nats_batch(node: &Node, body: &Value) -> Value {
    let cluster = node.cluster.as_ref().expect("in a cluster");
    let answer = cluster
        .nats()
        .request("longlink.api.batch", body.to_string().into())
        .await
        .expect("an answer");
    serde_json::from_slice(&answer.payload).expect("JSON")
}

fn message(text: &str) -> Value {
    json!({"S2C_Message": {"room_id": 0, "from_uid": 0, "to_uid": 0, "text": text, "ts": now_unix()}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reaches_each_uid_and_room_once() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let server = TestServer::start_with(enc, |c| c.admin.api_key = KEY.into()).await;
            let admin = server.admin.expect("admin listener");
            let mut ann = server.login(Transport::Tcp, 900).await;
            let mut bob = server.login(Transport::Ws, 901).await;
            let mut cat = server.login(Transport::Tcp, 902).await;
            assert_eq!(ann.watch(7).await, 1);
            assert_eq!(bob.watch(8).await, 1);
            assert_eq!(cat.watch(9).await, 1);

            let body = json!({
                "push": [
                    {"uids": [900, 901, 900, 999], "message": message("to many")},
                    {"uids": [901], "message": message("to bob")},
                ],
                "broadcast": [{"group": "room", "keys": [7, 8, 7], "message": message("rooms")}],
            });
            let answer = batch(admin, &body, 200).await;
            assert_eq!(
                answer,
                json!({"delivered": 3, "not_online": [999], "failed": [], "sent": 2}),
                "{enc:?}"
            );
            assert_eq!(ann.expect_message().await.text, "to many");
            assert_eq!(ann.expect_message().await.text, "rooms");
            ann.expect_quiet().await;
            assert_eq!(bob.expect_message().await.text, "to many");
            assert_eq!(bob.expect_message().await.text, "to bob");
            assert_eq!(bob.expect_message().await.text, "rooms");
            bob.expect_quiet().await;
            cat.expect_quiet().await;

            let empty = batch(admin, &json!({}), 200).await;
            assert_eq!(
                empty,
                json!({"delivered": 0, "not_online": [], "failed": [], "sent": 0})
            );
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_batch_is_refused_whole_with_its_code() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start_with(Enc::Json, |c| c.admin.api_key = KEY.into()).await;
        let admin = server.admin.expect("admin listener");
        let mut ann = server.login(Transport::Tcp, 910).await;
        assert_eq!(ann.watch(3).await, 1);
        let ok = || json!({"uids": [910], "message": message("never")});
        let too_many: Vec<u64> = (0..10_001).collect();
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"push": [ok(), {"uids": [910], "message": {"S2C_Nope": {}}}]}),
                "bad_message",
                "push[1]",
            ),
            (
                json!({"push": [ok()], "broadcast": [{"group": "room", "keys": [3], "message": {"LL_Ack": {"seq": 1}}}]}),
                "bad_message",
                "broadcast[0]",
            ),
            (
                json!({"push": [{"uids": too_many, "message": message("x")}]}),
                "batch_too_large",
                "10001",
            ),
            (
                json!({"push": [ok()], "broadcast": [{"group": "room", "keys": (0..10_000).collect::<Vec<u64>>(), "message": message("x")}]}),
                "batch_too_large",
                "10001",
            ),
            (json!({"pushes": [ok()]}), "bad_body", "pushes"),
            (
                json!({"broadcast": [{"group": "room", "message": message("x")}]}),
                "bad_body",
                "keys",
            ),
            (
                json!({"push": [{"uids": ["ann"], "message": message("x")}]}),
                "bad_body",
                "uids",
            ),
            (
                json!({"push": [{"uids": [910], "message": message(&"x".repeat(1100 * 1024))}]}),
                "body_too_large",
                "bytes",
            ),
        ];
        for (body, code, needle) in cases {
            let answer = batch(admin, &body, 400).await;
            assert_eq!(answer["code"], json!(code), "{answer}");
            let reason = answer["error"].as_str().unwrap_or_default();
            assert!(reason.contains(needle), "{code}: {reason}");
        }
        for raw in ["not json", "", "{} more"] {
            let reply = call(admin, Some(KEY), raw).await;
            assert_eq!(reply.status, 400, "{raw:?}: {reply:?}");
            assert!(reply.body.contains("\"bad_body\""), "{reply:?}");
        }
        let reply = call(admin, None, &json!({"push": [ok()]}).to_string()).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        assert!(reply.body.contains("\"unauthorized\""), "{reply:?}");
        // Nothing of it reached the client, which is still served.
        ann.expect_quiet().await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reaches_each_uid_once_across_gates_over_http_and_nats() {
    let Some(nats_server) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let api = |c: &mut longlink_chat::Config| c.admin.api_key = KEY.into();
        let chat = Node::start_with(&nats_server, "chat", api).await;
        let g1 = Node::start_with(&nats_server, "gate", api).await;
        let g2 = Node::start_with(&nats_server, "gate", api).await;
        let uids: Vec<u64> = (5001..=5006).collect();
        let mut clients = Vec::new();
        for &uid in &uids {
            let gate = if uid % 2 == 0 { &g1 } else { &g2 };
            let mut c = login_when_ready(gate, uid).await;
            assert!(c.watch(uid % 2 + 3).await >= 1);
            clients.push(c);
        }
        for &uid in &uids {
            let cluster = chat.cluster.as_ref().expect("in a cluster");
            wait_for("every uid in the directory", || async {
                matches!(cluster.locate(uid).await, Ok(Some(_)))
            })
            .await;
        }

        // Over HTTP from a gate that holds half of them: each once, repeats and all.
        let mut listed = uids.clone();
        listed.extend([5001, 5999, 5002]);
        let body = json!({"push": [{"uids": listed, "message": message("over http")}]});
        let answer = batch(g2.admin.expect("admin"), &body, 200).await;
        assert_eq!(
            answer,
            json!({"delivered": 6, "not_online": [5999], "failed": [], "sent": 0})
        );
        // Over NATS, answered by any node (the chat node has no gate at all), with rooms on
        // both gates.
        let body = json!({
            "push": [{"uids": uids, "message": message("over nats")}],
            "broadcast": [{"group": "room", "keys": [3, 4], "message": message("rooms")}],
        });
        let answer = nats_batch(&chat, &body).await;
        assert_eq!(
            answer,
            json!({"delivered": 6, "not_online": [], "failed": [], "sent": 0})
        );
        // Pushes keep their order; a room broadcast travels on its own subject, so it may
        // come before or after them.
        for c in &mut clients {
            let mut texts = Vec::new();
            for _ in 0..3 {
                texts.push(c.expect_message().await.text);
            }
            let pushes: Vec<&str> = texts
                .iter()
                .map(String::as_str)
                .filter(|t| *t != "rooms")
                .collect();
            assert_eq!(pushes, ["over http", "over nats"], "{texts:?}");
            c.expect_quiet().await;
        }

        // Errors over NATS carry the code and the status.
        let too_many: Vec<u64> = (0..10_001).collect();
        let answer = nats_batch(
            &g1,
            &json!({"push": [{"uids": too_many, "message": message("x")}]}),
        )
        .await;
        assert_eq!(answer["code"], json!("batch_too_large"), "{answer}");
        assert_eq!(answer["status"], json!(400), "{answer}");
        let answer = nats_batch(
            &g1,
            &json!({"push": [{"uids": [5001], "message": {"S2C_Nope": {}}}]}),
        )
        .await;
        assert_eq!(answer["code"], json!("bad_message"), "{answer}");
        for c in &mut clients {
            c.expect_quiet().await;
        }
        g1.shutdown().await;
        g2.shutdown().await;
        chat.shutdown().await;
    })
    .await;
}

/// How many messages came on each subject of `subjects` (a stream of subjects), counted until
/// none has come for half a second.
async fn count_by_subject(
    subjects: &mut (impl futures_util::Stream<Item = String> + Unpin),
) -> std::collections::BTreeMap<String, usize> {
    use futures_util::StreamExt;
    let mut counts = std::collections::BTreeMap::new();
    while let Ok(Some(subject)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), subjects.next()).await
    {
        *counts.entry(subject).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_across_gates_is_one_nats_message_per_gate_and_reaches_each_uid_once() {
    let Some(nats_server) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let api = |c: &mut longlink_chat::Config| c.admin.api_key = KEY.into();
        let chat = Node::start_with(&nats_server, "chat", api).await;
        let gates = [
            Node::start_with(&nats_server, "gate", api).await,
            Node::start_with(&nats_server, "gate", api).await,
            Node::start_with(&nats_server, "gate", api).await,
        ];
        let uids: Vec<u64> = (6001..=6012).collect();
        let mut clients = Vec::new();
        for &uid in &uids {
            clients.push(login_when_ready(&gates[uid as usize % 3], uid).await);
        }
        let cluster = chat.cluster.as_ref().expect("in a cluster");
        for &uid in &uids {
            wait_for("every uid in the directory", || async {
                matches!(cluster.locate(uid).await, Ok(Some(_)))
            })
            .await;
        }
        // Every command to a gate, as NATS carries it.
        let sub = cluster
            .nats()
            .subscribe("longlink.gate.*")
            .await
            .expect("subscribes");
        cluster.nats().flush().await.expect("flushes");
        let mut traffic = futures_util::StreamExt::map(sub, |m| m.subject.to_string());
        assert!(count_by_subject(&mut traffic).await.is_empty());

        // Over NATS, answered by any node (the chat node, or a gate that writes to its own
        // connections itself): one message to each other gate, whatever the number of uids
        // each holds.
        let body = json!({"push": [{"uids": uids, "message": message("one each")}]});
        let answer = nats_batch(&chat, &body).await;
        assert_eq!(
            answer,
            json!({"delivered": 12, "not_online": [], "failed": [], "sent": 0})
        );
        let counts = count_by_subject(&mut traffic).await;
        assert!(counts.len() >= 2, "{counts:?}");
        assert!(counts.values().all(|&n| n == 1), "{counts:?}");

        // Over HTTP from the first gate: its own uids locally, one message to each other gate,
        // two entries in order.
        let body = json!({"push": [
            {"uids": uids, "message": message("first")},
            {"uids": uids, "message": message("second")},
        ]});
        let answer = batch(gates[0].admin.expect("admin"), &body, 200).await;
        assert_eq!(
            answer,
            json!({"delivered": 24, "not_online": [], "failed": [], "sent": 0})
        );
        let counts = count_by_subject(&mut traffic).await;
        assert_eq!(counts.len(), 2, "{counts:?}");
        assert!(counts.values().all(|&n| n == 2), "{counts:?}");

        for c in &mut clients {
            for text in ["one each", "first", "second"] {
                assert_eq!(c.expect_message().await.text, text);
            }
            c.expect_quiet().await;
        }
        for g in gates {
            g.shutdown().await;
        }
        chat.shutdown().await;
    })
    .await;
}
