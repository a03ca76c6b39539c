//! A rolling restart of nodes that run gate and chat in one (`[cluster] node_type = "all"`),
//! over a real `nats-server` on 127.0.0.1: two such nodes in this process, resumable clients
//! (`longlink_client::ResumableClient`, each knowing both gates) logged in on both, watching
//! one room, saying room and private messages. One node stops while they talk: its gate
//! drains (`LL_Move`) and its clients resume on the other node, whose chat module must know
//! them: still logged in, still in the room, no `S2C_Error`, no lost session, no kick;
//! every room message reaches every watcher once, each sender's in order, and every private
//! message its receiver once (in any order: see `docs/known-gaps.md` on pushes to a uid that
//! moves).

mod common;

use std::time::Duration;

use common::node::Node;
use common::rolling::{PrivateOrder, User, check_heard, round};
use common::{Enc, TEST_TIMEOUT, bounded};
use longlink_testkit::NatsServer;

/// The room every user watches.
const ROOM: u64 = 5;
/// Users on the node that stops, and on the one that stays.
const ON_STOPPING: usize = 6;
const ON_STAYING: usize = 2;
/// Rounds of traffic: before the stop, and from the stop on (the drain spreads its moves
/// over one second; a round every 50 ms).
const BEFORE: usize = 6;
const AFTER: usize = 40;

/// A node of `node_type = "all"` whose gate drains over one second.
async fn all_node(nats: &NatsServer, enc: Enc) -> Node {
    Node::start_with(nats, "all", |c| {
        c.gate.encoding = enc.config();
        c.gate.drain_spread = Duration::from_secs(1);
        c.gate.drain_timeout = Duration::from_secs(10);
    })
    .await
}

async fn a_stopping_all_node_moves_its_users_with_their_chat_state(enc: Enc) {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let stopping = all_node(&nats, enc).await;
        let staying = all_node(&nats, enc).await;
        let mut users = Vec::new();
        for uid in 1..=ON_STOPPING as u64 {
            users.push(User::join(&stopping, &staying, uid, enc, ROOM).await);
        }
        for uid in 1..=ON_STAYING as u64 {
            let uid = ON_STOPPING as u64 + uid;
            users.push(User::join(&staying, &stopping, uid, enc, ROOM).await);
        }
        let mut sent = Vec::new();
        for r in 0..BEFORE {
            round(r, &users, ROOM, &mut sent).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stop = tokio::spawn(stopping.shutdown());
        for r in BEFORE..BEFORE + AFTER {
            round(r, &users, ROOM, &mut sent).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.await.expect("the node stops");

        check_heard(&users, &sent, ON_STOPPING, PrivateOrder::Any).await;
        // Everyone is logged in on the node that stayed.
        assert_eq!(staying.online().await, users.len());
        for u in users {
            u.end();
        }
        staying.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_all_node_moves_its_users_with_their_chat_state_json() {
    a_stopping_all_node_moves_its_users_with_their_chat_state(Enc::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_all_node_moves_its_users_with_their_chat_state_protobuf() {
    a_stopping_all_node_moves_its_users_with_their_chat_state(Enc::Protobuf).await;
}
