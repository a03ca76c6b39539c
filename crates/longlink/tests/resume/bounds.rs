//! What sessions waiting for their client may hold: in number (each keeps its connection's
//! place under `max_conn_num` and `max_conn_per_ip`, at most `max_waiting_per_ip` per address;
//! over a bound the oldest waiting one from the same address ends, never an attached one)
//! and in bytes (`pending_write_bytes`, with a socket or without).

use std::net::SocketAddr;
use std::time::Duration;

use longlink::{Encoding, GateConfig};
use longlink_testkit::{bounded, wait_for};

use crate::client::{Client, Link, Via};
use crate::common::{self, Echo};
use crate::server::{Server, config, start};
use crate::{TEST_TIMEOUT, WINDOW};

/// A window no test outlasts: a session that ends here was ended by a bound, not by time.
const LONG_WINDOW: Duration = Duration::from_secs(60);

/// Resets the client's socket (RST, not FIN): a crash or a lost network, as the server sees it.
fn reset(link: Link) {
    if let Link::Tcp(s, _) = &link {
        socket2::SockRef::from(s)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER");
    }
}

/// An attacker's round, no login: connects, starts a session, has `replies` echoes answered
/// and never acknowledges them, resets the socket, and waits until the server has seen the
/// reset (`sockets` sockets left). Returns the session's agent id and its client.
async fn leave_waiting(server: &Server, replies: u64, sockets: usize) -> (u64, Client) {
    let mut c = Client::start(Via::Tcp, server.tcp, Encoding::Json).await;
    for i in 0..replies {
        c.send_echo(&format!("r{i}")).await;
    }
    assert!(c.read_until(replies).await, "the replies");
    server.settle().await;
    let id = *server.agents().last().expect("its new event");
    reset(std::mem::replace(&mut c.link, Link::Gone));
    let gate = server.gate.clone();
    wait_for("the server to see the reset", || {
        let n = gate.connections();
        async move { n == sockets }
    })
    .await;
    (id, c)
}

/// Waits until `ids[..ended]` have their close events; then checks that they came in the
/// order the sessions began, and that the rest of `ids` has none.
async fn oldest_ended_first(server: &Server, ids: &[u64], ended: usize) {
    let log = server.log.clone();
    let closed_of = move |ids: &[u64]| -> Vec<u64> {
        let log = log.lock().unwrap();
        log.iter()
            .filter(|(a, e)| e == "close" && ids.contains(a))
            .map(|(a, _)| *a)
            .collect()
    };
    let waiting = ids.to_vec();
    let closed = closed_of.clone();
    wait_for(&format!("{ended} close events"), || {
        let n = closed(&waiting).len();
        async move { n >= ended }
    })
    .await;
    server.settle().await;
    assert_eq!(
        closed_of(ids),
        ids[..ended],
        "the oldest waiting ended first, in order"
    );
}

/// Two attached clients, each answered and never ended.
async fn attached_pair(server: &Server) -> [(u64, Client); 2] {
    let mut pair = Vec::new();
    for name in ["a", "b"] {
        let mut c = Client::start(Via::Tcp, server.tcp, Encoding::Json).await;
        c.send_echo(name).await;
        assert!(c.read_until(1).await);
        pair.push((*server.agents().last().unwrap(), c));
    }
    pair.try_into().ok().unwrap()
}

async fn still_answered(server: &Server, pair: &mut [(u64, Client); 2]) {
    for (id, c) in pair.iter_mut() {
        c.send_echo("still").await;
        assert!(
            c.read_until(2).await,
            "an attached client is still answered"
        );
        assert_eq!(c.texts.last().map(String::as_str), Some("still"));
        server.settle().await;
        assert!(!server.events_of(*id).contains(&"close".to_owned()));
    }
}

/// The newest waiting session is intact: it resumes and gets its replies again, once.
async fn newest_resumes(addr: SocketAddr, mut c: Client, replies: u64) {
    c.received = 0;
    c.texts.clear();
    c.resume(addr)
        .await
        .expect("the newest waiting session resumes");
    assert!(c.read_until(replies).await);
    let want: Vec<String> = (0..replies).map(|i| format!("r{i}")).collect();
    assert_eq!(c.texts, want, "every kept reply, once");
    assert_eq!(
        c.next(Duration::from_millis(100)).await,
        None,
        "nothing more"
    );
}

#[tokio::test]
async fn waiting_sessions_count_under_max_conn_per_ip_and_the_oldest_ends_first() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            max_conn_num: 100,
            max_conn_per_ip: 5,
            ..config(Encoding::Json, LONG_WINDOW, 1024)
        })
        .await;
        let mut pair = attached_pair(&server).await;
        let mut waiting = Vec::new();
        for _ in 0..50 {
            waiting.push(leave_waiting(&server, 3, 2).await);
        }
        // 5 places for the address, 2 of them attached: 3 sessions wait, the newest.
        let ids: Vec<u64> = waiting.iter().map(|(id, _)| *id).collect();
        oldest_ended_first(&server, &ids, 47).await;
        still_answered(&server, &mut pair).await;
        let (_, mut first) = waiting.remove(0);
        assert_eq!(first.resume(server.tcp).await, Err("expired".into()));
        let (_, newest) = waiting.pop().unwrap();
        newest_resumes(server.tcp, newest, 3).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn waiting_sessions_count_under_max_conn_num_and_give_way_to_new_connections() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            max_conn_num: 5,
            ..config(Encoding::Json, LONG_WINDOW, 1024)
        })
        .await;
        let mut pair = attached_pair(&server).await;
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(leave_waiting(&server, 3, 2).await.0);
        }
        oldest_ended_first(&server, &ids, 17).await;
        // Every place is taken (2 attached, 3 waiting): a new client is not refused, the
        // oldest waiting session makes room.
        let mut late = Client::start(Via::Tcp, server.tcp, Encoding::Json).await;
        late.send_echo("in").await;
        assert!(late.read_until(1).await, "a new connection is served");
        oldest_ended_first(&server, &ids, 18).await;
        still_answered(&server, &mut pair).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn one_address_leaves_at_most_max_waiting_per_ip_sessions_by_default() {
    bounded(TEST_TIMEOUT * 2, async {
        // The default config: max_conn_per_ip off, a per-address bound all the same.
        let per_ip = GateConfig::default().max_waiting_per_ip;
        assert!((1..=1000).contains(&per_ip), "a sane default: {per_ip}");
        let server = start(config(Encoding::Json, LONG_WINDOW, 1024)).await;
        let mut pair = attached_pair(&server).await;
        let mut waiting = Vec::new();
        for _ in 0..per_ip + 6 {
            waiting.push(leave_waiting(&server, 3, 2).await);
            assert!(server.gate.waiting_sessions() <= per_ip);
        }
        let ids: Vec<u64> = waiting.iter().map(|(id, _)| *id).collect();
        oldest_ended_first(&server, &ids, 6).await;
        assert_eq!(server.gate.waiting_sessions(), per_ip);
        still_answered(&server, &mut pair).await;
        let (_, newest) = waiting.pop().unwrap();
        newest_resumes(server.tcp, newest, 3).await;
        server.shutdown().await;
    })
    .await;
}

/// Writes 4,000-byte `Echo`s to agent `id` (whose client is away) until one is refused or
/// `n` went; returns how many were taken and the refusal.
fn write_while_away(server: &Server, id: u64, n: usize) -> (usize, Option<String>) {
    let agent = server.gate.agents().into_iter().find(|a| a.id() == id);
    let agent = agent.expect("the waiting session's agent");
    let text = "x".repeat(4_000);
    for i in 0..n {
        let msg = Echo {
            text: format!("{i}:{text}"),
        };
        if let Err(e) = agent.write(&msg) {
            return (i, Some(e.to_string()));
        }
    }
    (n, None)
}

#[tokio::test]
async fn a_waiting_session_is_held_to_pending_write_bytes() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            pending_write_bytes: 64 * 1024,
            ..config(Encoding::Json, WINDOW, 1024)
        })
        .await;
        // Over the bound while away: the session ends, its close event fires, its queue goes.
        let (over, mut away) = leave_waiting(&server, 0, 0).await;
        let (taken, refused) = write_while_away(&server, over, 1_000);
        assert!(taken <= 64 * 1024 / 4_000, "{taken} messages of 4 KB kept");
        assert_eq!(
            refused.as_deref(),
            Some("outgoing queue full (65536 bytes)")
        );
        server.wait_event(over, "close").await;
        assert!(server.gate.agents().iter().all(|a| a.id() != over));
        assert_eq!(server.gate.waiting_sessions(), 0, "its place is given back");
        assert_eq!(away.resume(server.tcp).await, Err("overflow".into()));
        drop(away);
        // Under the bound while away: every message, once, after the resume.
        let (under, mut back) = leave_waiting(&server, 0, 0).await;
        assert_eq!(write_while_away(&server, under, 10), (10, None));
        back.resume(server.tcp).await.expect("resumed");
        assert!(back.read_until(10).await);
        let want: Vec<String> = (0..10)
            .map(|i| format!("{i}:{}", "x".repeat(4_000)))
            .collect();
        assert_eq!(back.texts, want, "every message once, in order");
        assert_eq!(
            back.next(Duration::from_millis(100)).await,
            None,
            "nothing more"
        );
        server.settle().await;
        assert!(!server.events_of(under).contains(&"close".to_owned()));
        server.shutdown().await;
    })
    .await;
}

/// The attack of issue 21, measured: one address leaves 3,000 sessions waiting, each with 10
/// unacknowledged 1 KB replies, against the default config with `resume_window` on (as the
/// chat server's). Prints the process's RSS before and after each 1,000 (server and client
/// in one process; the client's sockets are closed, and the allocator keeps some of what the
/// churn freed). Run with
/// `cargo test -p longlink --test resume rss_of -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn rss_of_one_address_leaving_sessions_waiting() {
    let server = start(config(Encoding::Json, Duration::from_secs(30), 1024)).await;
    let text = "y".repeat(1_000);
    let mut rss = vec![common::rss() >> 20];
    for _ in 0..3 {
        for _ in 0..1_000 {
            let mut c = Client::start(Via::Tcp, server.tcp, Encoding::Json).await;
            for _ in 0..10 {
                c.send_echo(&text).await;
            }
            assert!(c.read_until(10).await);
            reset(std::mem::replace(&mut c.link, Link::Gone));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        server.settle().await;
        // The test module's log of every echo is the test's memory, not the server's.
        server
            .log
            .lock()
            .unwrap()
            .retain(|(_, e)| !e.starts_with("msg:"));
        rss.push(common::rss() >> 20);
    }
    let log = server.log.lock().unwrap().clone();
    let count = |what: &str| log.iter().filter(|(_, e)| e == what).count();
    let waiting = count("new") - count("close");
    println!("RSS (MB) at 0, 1000, 2000, 3000 sessions left: {rss:?}; {waiting} waiting");
    server.shutdown().await;
}

/// The second attack of issue 21, measured: 20 sessions are sent 1,000 messages of 6 KB each
/// while their clients are away (default config, `resume_window` on). Prints the process's
/// RSS before and after, and how many writes were taken. Run with
/// `cargo test -p longlink --test resume rss_of -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn rss_of_sessions_sent_much_while_away() {
    let server = start(config(Encoding::Json, Duration::from_secs(30), 1024)).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(leave_waiting(&server, 0, 0).await.0);
    }
    let before = common::rss() >> 20;
    let text = "z".repeat(6_000);
    let mut taken = 0;
    for id in &ids {
        let agent = server.gate.agents().into_iter().find(|a| a.id() == *id);
        let agent = agent.expect("the waiting session's agent");
        for _ in 0..1_000 {
            if agent.write(&Echo { text: text.clone() }).is_ok() {
                taken += 1;
            }
        }
    }
    server.settle().await;
    let after = common::rss() >> 20;
    let waiting = server.gate.agents().len();
    println!("RSS {before} MB -> {after} MB; {taken} writes taken; {waiting} sessions left");
    server.shutdown().await;
}
