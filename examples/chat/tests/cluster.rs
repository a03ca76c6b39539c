//! The chat example as a cluster, over a real `nats-server` on 127.0.0.1 (one per test, on a
//! free port): gate nodes hold the clients, chat nodes run the chat module, and the clients
//! see one chat service.
//!
//! Two layouts: the cluster walk-through's (docs/cluster.md: two `gate` nodes and `chat`
//! nodes) and two `all` nodes, where each gate has its own chat module, so that only the
//! cluster (group subjects, the uid directory) can carry a message or a kick from one to the
//! other.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::node::{ERR_UNAVAILABLE, Layout, Node, login_until_served, login_when_ready};
use common::process::{Proc, TempDir};
use common::*;
use longlink_chat::msg::S2cKick;
use longlink_testkit::NatsServer;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_message_reaches_watchers_on_two_gates() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let l = Layout::start(&nats).await;
        let (chat, g1, g2) = (&l.chat, &l.g1, &l.g2);
        let mut a = login_when_ready(g1, 1).await;
        let mut b = login_when_ready(g2, 2).await;
        assert_eq!(a.watch(7).await, 1);
        assert_eq!(b.watch(7).await, 2, "one chat node sees both watchers");
        b.say(7, "hello across gates").await;
        for c in [&mut a, &mut b] {
            let m = c.expect_message().await;
            assert_eq!(
                (m.room_id, m.from_uid, m.text.as_str()),
                (7, 2, "hello across gates")
            );
        }
        a.say(7, "and back").await;
        for c in [&mut b, &mut a] {
            assert_eq!(c.expect_message().await.text, "and back");
        }
        // The cluster's counters moved (one recorder per process: these nodes share it).
        assert!(g1.metric("longlink_cluster_forwarded_total").await >= 3.0);
        assert!(chat.metric("longlink_cluster_handled_total").await >= 6.0);
        // A watcher that leaves the room hears no more of it.
        assert_eq!(b.watch(8).await, 1);
        a.say(7, "only a").await;
        assert_eq!(a.expect_message().await.text, "only a");
        b.expect_quiet().await;
        l.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_message_crosses_gates() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let l = Layout::start(&nats).await;
        let (g1, g2) = (&l.g1, &l.g2);
        let mut a = login_when_ready(g1, 11).await;
        let mut b = login_when_ready(g2, 12).await;
        a.tell(12, "psst").await;
        let m = b.expect_message().await;
        assert_eq!((m.from_uid, m.to_uid, m.text.as_str()), (11, 12, "psst"));
        a.expect_quiet().await;
        b.tell(99, "nobody").await;
        b.expect_error(ERR_NOT_ONLINE).await;
        l.shutdown().await;
    })
    .await;
}

/// Two `all` nodes: each gate has its own chat module, so rooms, private messages and the
/// one-login-per-uid rule can only cross through the cluster (group subjects, directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_nodes_share_rooms_users_and_logins() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let (n1, n2) = (
            Node::start(&nats, "all").await,
            Node::start(&nats, "all").await,
        );
        let mut a = n1.login(21).await;
        let mut b = n2.login(22).await;
        a.watch(5).await;
        b.watch(5).await;
        b.say(5, "room across nodes").await;
        assert_eq!(a.expect_message().await.text, "room across nodes");
        assert_eq!(b.expect_message().await.text, "room across nodes");

        // The directory may take a moment to hold a fresh login.
        let deadline = Instant::now() + TIMEOUT;
        loop {
            a.tell(22, "private across nodes").await;
            match a.try_recv(Duration::from_millis(300)).await {
                Err(End::TimedOut) => break,
                Ok(Reply::Error(e)) if e.code == ERR_NOT_ONLINE && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                other => panic!("private message: {other:?}"),
            }
        }
        assert_eq!(b.expect_message().await.text, "private across nodes");

        // uid 21 logs in again on the other node: the first connection is kicked.
        let _a2 = n2.login(21).await;
        expect_kicked(&mut a).await;
        n1.shutdown().await;
        n2.shutdown().await;
    })
    .await;
}

async fn expect_kicked(c: &mut Client) {
    match c.recv().await {
        Reply::Kick(S2cKick { reason }) => assert_eq!(reason, "logged in elsewhere"),
        other => panic!("{c:?}: expected S2C_Kick, got {other:?}"),
    }
    c.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_login_on_another_gate_kicks_the_first() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let l = Layout::start(&nats).await;
        let (g1, g2) = (&l.g1, &l.g2);
        let mut first = login_when_ready(g1, 31).await;
        let mut second = g2.login(31).await;
        expect_kicked(&mut first).await;
        second.heartbeat().await;
        second.watch(1).await;
        l.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chat_nodes_share_the_load() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let (c1, c2) = (
            Node::start(&nats, "chat").await,
            Node::start(&nats, "chat").await,
        );
        let gate = Node::start(&nats, "gate").await;
        let mut clients = Vec::new();
        for uid in 100..124 {
            clients.push(login_when_ready(&gate, uid).await);
        }
        let (n1, n2) = (c1.online().await, c2.online().await);
        assert_eq!(n1 + n2, 24, "every login is held by one chat node");
        assert!(
            n1 > 0 && n2 > 0,
            "both chat nodes took logins: {n1} and {n2}"
        );
        // Rooms still reach everyone, whichever node holds them.
        for c in &mut clients {
            c.watch(3).await;
        }
        clients[0].say(3, "to all").await;
        for c in &mut clients {
            assert_eq!(c.expect_message().await.text, "to all");
        }
        gate.shutdown().await;
        c1.shutdown().await;
        c2.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_mid_test_then_traffic_resumes() {
    let Some(mut nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let l = Layout::start(&nats).await;
        let (g1, g2) = (&l.g1, &l.g2);
        let mut a = login_when_ready(g1, 41).await;
        let mut b = login_when_ready(g2, 42).await;
        a.watch(9).await;
        b.watch(9).await;
        a.say(9, "before").await;
        assert_eq!(b.expect_message().await.text, "before");
        assert_eq!(a.expect_message().await.text, "before");

        nats.restart().await;

        // No node is restarted: they reconnect and re-subscribe by themselves. Until they
        // have, a message fails with S2C_Error 5 (or is lost, at most once); keep trying.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut n = 0;
        loop {
            n += 1;
            let text = format!("after {n}");
            a.say(9, &text).await;
            let got = b.try_recv(Duration::from_millis(500)).await;
            if matches!(&got, Ok(Reply::Message(m)) if m.text == text) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "traffic did not resume: last {got:?}"
            );
        }
        // And the other way, and a heartbeat, on the same connections.
        b.say(9, "resumed").await;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match a.try_recv(Duration::from_millis(500)).await {
                Ok(Reply::Message(m)) if m.text == "resumed" => break,
                Ok(_) => {}
                Err(End::TimedOut) => {}
                Err(e) => panic!("{e:?}"),
            }
            assert!(
                Instant::now() < deadline,
                "no message from b after the restart"
            );
        }
        a.heartbeat().await;
        l.shutdown().await;
    })
    .await;
}

/// `longlink-chat --config <file>` in its own process (to be frozen and killed) with
/// `node_type`, TCP on `tcp_addr` (may be empty), request_timeout 1 s, directory_ttl 2 s.
fn node_process(nats: &NatsServer, node_type: &str, tcp_addr: &str) -> (Proc, TempDir) {
    let dir = TempDir::new(node_type);
    let config = dir.write(
        "node.toml",
        &format!(
            "[gate]\ntcp_addr = \"{tcp_addr}\"\nws_addr = \"\"\n\
             [cluster]\nnats_url = \"{}\"\nnode_type = \"{node_type}\"\n\
             request_timeout = 1\ndirectory_ttl = 2\n",
            nats.url()
        ),
    );
    let config = config.to_str().expect("a UTF-8 temp path");
    (Proc::spawn(&dir, &["--config", config], &[]), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_node_killed_while_a_client_waits() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let (mut backend, _dir) = node_process(&nats, "chat", "");
        let gate = Node::start(&nats, "gate").await;
        let mut a = login_when_ready(&gate, 51).await;
        a.watch(2).await;

        // Frozen mid-flight: the message is taken by NATS, never answered. The gate gives
        // up after request_timeout (1 s) and says so.
        backend.signal("STOP");
        a.say(2, "into the void").await;
        let e = a.expect_error(ERR_UNAVAILABLE).await;
        assert!(
            e.msg.contains("C2S_Message"),
            "error names the message: {e:?}"
        );

        // Killed: its subscriptions are gone; the next message fails at once.
        backend.signal("KILL");
        backend.wait().await;
        a.say(2, "still nobody").await;
        a.expect_error(ERR_UNAVAILABLE).await;

        // The gate stays healthy: heartbeats, new connections.
        a.heartbeat().await;
        let mut c = gate.connect().await;
        c.heartbeat().await;

        // A new chat node comes: the same connection is bound to it on its next message
        // (its login was on the dead node, so it must log in again).
        let _fresh = Node::start(&nats, "chat").await;
        login_until_served(&mut a, 51).await;
        gate.shutdown().await;
    })
    .await;
}

/// A gate killed without goodbye: its users leave the directory when their entries expire
/// (directory_ttl 2 s), and the chat node closes its connections, so the user is "not
/// online" again rather than a black hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gate_drops_out_of_the_directory() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let chat = Node::start_with(&nats, "chat", |c| {
            c.cluster.directory_ttl = Duration::from_secs(2)
        })
        .await;
        let port = longlink_testkit::free_port();
        let (mut dying, _dir) = node_process(&nats, "gate", &format!("127.0.0.1:{port}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut victim = loop {
            if let Ok(mut c) = Client::try_connect(Transport::Tcp, Enc::Json, addr).await {
                c.send(&longlink_chat::msg::C2sUserLogin {
                    token: token(61),
                    login_plat: 1,
                })
                .await;
                if matches!(c.try_recv(TIMEOUT).await, Ok(Reply::Login(l)) if l.ret == 1) {
                    break c;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the gate process never served a login"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let probe = longlink::cluster::Cluster::connect(&longlink::cluster::ClusterConfig {
            nats_url: nats.url(),
            node_type: "probe".into(),
            ..Default::default()
        })
        .await
        .expect("probe connects");
        let deadline = Instant::now() + TIMEOUT;
        while !matches!(probe.locate(61).await, Ok(Some(_))) {
            assert!(
                Instant::now() < deadline,
                "uid 61 never entered the directory"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(chat.online().await, 1);

        dying.signal("KILL");
        dying.wait().await;
        let _ = victim.expect_closed().await;
        let deadline = Instant::now() + Duration::from_secs(15);
        while probe.locate(61).await != Ok(None) || chat.online().await != 0 {
            assert!(
                Instant::now() < deadline,
                "the dead gate's user is still online"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        chat.shutdown().await;
    })
    .await;
}

/// An `all` node is a gate and a chat node at once: its own clients and another gate's,
/// side by side in one chat module, must stay apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_node_serves_its_own_and_another_gates_clients() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let all = Node::start(&nats, "all").await;
        let gate = Node::start(&nats, "gate").await;
        let mut local = all.login(71).await;
        let mut remote = login_when_ready(&gate, 72).await;
        assert_eq!(local.watch(4).await, 1);
        assert_eq!(remote.watch(4).await, 2);
        remote.say(4, "mixed").await;
        assert_eq!(local.expect_message().await.text, "mixed");
        assert_eq!(remote.expect_message().await.text, "mixed");
        local.tell(72, "to the other gate").await;
        assert_eq!(remote.expect_message().await.text, "to the other gate");
        assert_eq!(all.online().await, 2);
        gate.shutdown().await;
        all.shutdown().await;
    })
    .await;
}

/// Nodes stop (within the shutdown bound) even while NATS is down: nothing on the way out
/// waits on NATS without a deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_stop_in_time_while_nats_is_down() {
    let Some(mut nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let chat = Node::start(&nats, "chat").await;
        let gate = Node::start(&nats, "gate").await;
        let mut a = login_when_ready(&gate, 81).await;
        a.watch(1).await;
        nats.stop();
        gate.shutdown().await;
        chat.shutdown().await;
    })
    .await;
}
