//! The server API in a cluster (real `nats-server`): any node answers for the whole cluster,
//! over HTTP and over NATS. Push and kick from the gate that does not hold the uid (and from
//! the chat node, which has no gate), presence through the directory, a room broadcast to
//! every gate, and every node's numbers.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::node::{Layout, Node, login_when_ready};
use common::*;
use longlink_testkit::http::http_request;
use longlink_testkit::{NatsServer, wait_for};
use serde_json::{Value, json};

const KEY: &str = "cluster-api-key";

async fn start(nats: &NatsServer) -> Layout {
    let api = |c: &mut longlink_chat::Config| c.admin.api_key = KEY.into();
    let chat = Node::start_with(nats, "chat", api).await;
    let g1 = Node::start_with(nats, "gate", api).await;
    let g2 = Node::start_with(nats, "gate", api).await;
    Layout { chat, g1, g2 }
}

async fn http(node: &Node, method: &str, path: &str, body: Value) -> Value {
    let admin: SocketAddr = node.admin.expect("admin listener");
    let auth = format!("Bearer {KEY}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let reply = http_request(admin, method, path, &headers, body.to_string().as_bytes()).await;
    assert_eq!(reply.status, 200, "{method} {path}: {reply:?}");
    serde_json::from_str(&reply.body).expect("JSON")
}

/// A request on `<prefix>.api.<op>` through a node's own NATS client.
async fn nats(node: &Node, op: &str, body: Value) -> Value {
    let cluster = node.cluster.as_ref().expect("in a cluster");
    let answer = cluster
        .nats()
        .request(format!("longlink.api.{op}"), body.to_string().into())
        .await
        .expect("an answer");
    serde_json::from_slice(&answer.payload).expect("JSON")
}

fn message(text: &str) -> Value {
    json!({"S2C_Message": {"room_id": 0, "from_uid": 0, "to_uid": 0, "text": text, "ts": now_unix()}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_pushes_kicks_and_answers_for_the_whole_cluster() {
    let Some(nats_server) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let l = start(&nats_server).await;
        let (chat, g1, g2) = (&l.chat, &l.g1, &l.g2);
        let mut ann = login_when_ready(g1, 4001).await;
        assert_eq!(ann.watch(3).await, 1);
        let g1_id = g1.cluster.as_ref().unwrap().node_id().to_owned();

        // The directory knows ann once the claim lands; g2 answers from it.
        wait_for("ann in the directory", || async {
            http(g2, "GET", "/api/v1/online/4001", json!({})).await["online"] == json!(true)
        })
        .await;
        let online = http(g2, "GET", "/api/v1/online/4001", json!({})).await;
        assert_eq!(online, json!({"uid": 4001, "online": true, "node": g1_id}));

        // Push from the gate that does not hold ann, then from the chat node (no gate at all).
        let answer = http(
            g2,
            "POST",
            "/api/v1/push",
            json!({"uid": 4001, "message": message("from g2")}),
        )
        .await;
        assert_eq!(answer, json!({"delivered": true}));
        assert_eq!(ann.expect_message().await.text, "from g2");
        let answer = http(
            chat,
            "POST",
            "/api/v1/push",
            json!({"uid": 4001, "message": message("from chat")}),
        )
        .await;
        assert_eq!(answer, json!({"delivered": true}));
        assert_eq!(ann.expect_message().await.text, "from chat");
        let answer = http(
            g2,
            "POST",
            "/api/v1/push",
            json!({"uid": 4999, "message": message("nobody")}),
        )
        .await;
        assert_eq!(answer, json!({"delivered": false}));

        // A room broadcast from g2 reaches ann's gate.
        http(
            g2,
            "POST",
            "/api/v1/broadcast",
            json!({"group": "room", "key": 3, "message": message("room 3")}),
        )
        .await;
        assert_eq!(ann.expect_message().await.text, "room 3");

        // Every node's numbers.
        let stats = http(g2, "GET", "/api/v1/stats", json!({})).await;
        assert_eq!(stats["nodes"].as_array().map(Vec::len), Some(3), "{stats}");
        assert_eq!(stats["connections"], json!(1), "{stats}");
        assert_eq!(stats["sessions"], json!(1), "{stats}");

        // The same over NATS, answered by whichever node takes the request.
        let answer = nats(
            g2,
            "push",
            json!({"uid": 4001, "message": message("over nats")}),
        )
        .await;
        assert_eq!(answer, json!({"delivered": true}));
        assert_eq!(ann.expect_message().await.text, "over nats");
        let answer = nats(chat, "online", json!({"uid": 4001})).await;
        assert_eq!(answer["node"], json!(g1_id));
        let answer = nats(
            g1,
            "push",
            json!({"uid": 4001, "message": {"S2C_Nope": {}}}),
        )
        .await;
        assert_eq!(answer["status"], json!(400), "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains("S2C_Nope"),
            "{answer}"
        );
        let answer = nats(g1, "kick", json!({"uid": 4999})).await;
        assert_eq!(answer, json!({"kicked": false}));

        // A kick from g2: the chat's goodbye on g1, then the close.
        let answer = http(
            g2,
            "POST",
            "/api/v1/kick",
            json!({"uid": 4001, "reason": "banned"}),
        )
        .await;
        assert_eq!(answer, json!({"kicked": true}));
        match ann.recv().await {
            Reply::Kick(k) => assert_eq!(k.reason, "banned"),
            other => panic!("expected S2C_Kick, got {other:?}"),
        }
        ann.expect_closed().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        l.shutdown().await;
    })
    .await;
}
