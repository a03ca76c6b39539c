//! A rolling deploy that stops a gate and a chat node at the same time, over a real
//! `nats-server` on 127.0.0.1: two gates and two chat nodes in this process, resumable clients
//! (`longlink_client::ResumableClient`, each knowing both gates) logged in on the first gate
//! and bound to the first chat node, watching one room, saying room and private messages.
//! The first gate and the first chat node stop together while they talk: the gate drains
//! (`LL_Move`) and its sessions resume on the other gate while the chat node hands their
//! bindings to the other chat node. The users stay logged in and in the room (their chat
//! state arrives on the second chat node, for their connections on the second gate): no
//! `S2C_Error`, no lost session; every room message reaches every watcher once, each
//! sender's in order, and every private message its receiver once.
//! (`crates/longlink/tests/move_handover.rs` forces each order of the two moves.)

mod common;

use std::time::Duration;

use common::node::{Node, login_until_served};
use common::rolling::{PrivateOrder, User, check_heard, round};
use common::{Enc, TEST_TIMEOUT, bounded};
use longlink_testkit::NatsServer;

/// The room every user watches.
const ROOM: u64 = 6;
/// Users on the gate that stops, and on the one that stays (all bound to the chat node
/// that stops).
const ON_STOPPING: usize = 8;
const ON_STAYING: usize = 2;
/// Rounds of traffic: before the stop, and from the stop on (a round every 30 ms).
const BEFORE: usize = 4;
const AFTER: usize = 30;

/// A chat node (every node uses the same encoding).
async fn chat(nats: &NatsServer, enc: Enc) -> Node {
    Node::start_with(nats, "chat", |c| c.gate.encoding = enc.config()).await
}

/// A gate whose drain spreads its sessions' moves over 200 ms, the time the chat node's
/// moves take too.
async fn gate(nats: &NatsServer, enc: Enc) -> Node {
    Node::start_with(nats, "gate", |c| {
        c.gate.encoding = enc.config();
        c.gate.drain_spread = Duration::from_millis(200);
        c.gate.drain_timeout = Duration::from_secs(10);
    })
    .await
}

/// Logs probes in on `gate` until `chat` has one of them (it serves the queue group).
async fn until_serving(gate: &Node, chat: &Node, enc: Enc, probes: &mut Vec<common::Client>) {
    while chat.online().await == 0 {
        let addr = gate.tcp.expect("a gate");
        let mut probe = common::Client::connect(common::Transport::Tcp, enc, addr).await;
        login_until_served(&mut probe, 1000 + probes.len() as u64).await;
        probes.push(probe);
        assert!(probes.len() < 100, "the chat node never served");
    }
}

async fn a_gate_and_a_chat_node_stopping_together_keep_their_users(enc: Enc) {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let chat1 = chat(&nats, enc).await;
        let stopping = gate(&nats, enc).await;
        let staying = gate(&nats, enc).await;
        let mut probes = Vec::new();
        until_serving(&staying, &chat1, enc, &mut probes).await;
        let mut users = Vec::new();
        for uid in 1..=ON_STOPPING as u64 {
            users.push(User::join(&stopping, &staying, uid, enc, ROOM).await);
        }
        for uid in 1..=ON_STAYING as u64 {
            let uid = ON_STOPPING as u64 + uid;
            users.push(User::join(&staying, &stopping, uid, enc, ROOM).await);
        }
        let chat2 = chat(&nats, enc).await;
        until_serving(&staying, &chat2, enc, &mut probes).await;
        let mut sent = Vec::new();
        for r in 0..BEFORE {
            round(r, &users, ROOM, &mut sent).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let stop_gate = tokio::spawn(stopping.shutdown());
        let stop_chat = tokio::spawn(chat1.shutdown());
        for r in BEFORE..BEFORE + AFTER {
            round(r, &users, ROOM, &mut sent).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        stop_gate.await.expect("the gate stops");
        stop_chat.await.expect("the chat node stops");

        check_heard(&users, &sent, ON_STOPPING, PrivateOrder::AsSent).await;
        // Every user is logged in on the chat node that stayed, and so is every probe.
        assert_eq!(chat2.online().await, users.len() + probes.len());
        drop(probes);
        for u in users {
            u.end();
        }
        staying.shutdown().await;
        chat2.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_and_a_chat_node_stopping_together_keep_their_users_json() {
    a_gate_and_a_chat_node_stopping_together_keep_their_users(Enc::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_and_a_chat_node_stopping_together_keep_their_users_protobuf() {
    a_gate_and_a_chat_node_stopping_together_keep_their_users(Enc::Protobuf).await;
}
