//! Chat nodes that stop or die under their users, over a real `nats-server` on 127.0.0.1: a
//! `longlink-chat` process with `node_type = "chat"` (stopped with SIGTERM, or killed with
//! SIGKILL) beside a chat node and a gate in this process.
//!
//! Stopped, a chat node hands its users to the other chat node: they stay logged in and in
//! their room, and what they send meanwhile is handled once, in order, with no error. Killed,
//! it cannot: every message it had taken and not handled is answered to its sender with an
//! error, none is dropped without a word.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::node::{ERR_UNAVAILABLE, Node, login_when_ready};
use common::process::{Proc, TempDir};
use common::*;
use longlink_testkit::NatsServer;

/// The room every user watches.
const ROOM: u64 = 9;

/// `longlink-chat --config <file>` as a chat node, request_timeout 1 s.
fn chat_process(nats: &NatsServer) -> (Proc, TempDir) {
    let dir = TempDir::new("chat");
    let config = dir.write(
        "node.toml",
        &format!(
            "[gate]\ntcp_addr = \"\"\nws_addr = \"\"\n\
             [cluster]\nnats_url = \"{}\"\nnode_type = \"chat\"\nrequest_timeout = 1\n",
            nats.url()
        ),
    );
    let config = config.to_str().expect("a UTF-8 temp path");
    (Proc::spawn(&dir, &["--config", config], &[]), dir)
}

/// A cluster of one gate and two chat nodes, the first a process: `first` users logged in
/// while only the process serves (so they are its users), then `second` more on the
/// in-process chat node (those the process takes until that node serves stay idle); the
/// `first + second` watch [`ROOM`] and chat.
struct Cluster {
    process: Proc,
    _dir: TempDir,
    chat: Node,
    gate: Node,
    clients: Vec<Client>,
    /// Logged in, connected, silent.
    idle: Vec<Client>,
}

impl Cluster {
    async fn start(nats: &NatsServer, first: u64, second: u64) -> Cluster {
        let (process, dir) = chat_process(nats);
        let gate = Node::start(nats, "gate").await;
        let mut clients = Vec::new();
        for uid in 1..=first {
            clients.push(login_when_ready(&gate, uid).await);
        }
        // Until it serves (it joins NATS in the background), new users go to the process.
        let chat = Node::start(nats, "chat").await;
        let (mut uid, mut idle) = (first, Vec::new());
        while (chat.online().await as u64) < second {
            uid += 1;
            assert!(uid < first + 200, "the in-process chat node never served");
            let before = chat.online().await;
            let c = login_when_ready(&gate, uid).await;
            // Users the process took meanwhile stay connected, but do not chat.
            if chat.online().await > before {
                clients.push(c);
            } else {
                idle.push(c);
            }
        }
        for c in &mut clients {
            c.watch(ROOM).await;
        }
        Cluster {
            process,
            _dir: dir,
            chat,
            gate,
            clients,
            idle,
        }
    }
}

/// What one round of traffic sends: an even client says something to the room, an odd one
/// tells the next client something privately.
async fn send_round(round: usize, clients: &mut [Client]) -> Vec<Sent> {
    let n = clients.len();
    let uids: Vec<u64> = clients.iter().map(|c| c.uid.expect("logged in")).collect();
    let mut sent = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        let text = format!("round {round} from {}", uids[i]);
        if i % 2 == 0 {
            c.say(ROOM, &text).await;
            sent.push(Sent {
                from: i,
                to: None,
                text,
            });
        } else {
            let to = (i + 1) % n;
            c.tell(uids[to], &text).await;
            sent.push(Sent {
                from: i,
                to: Some(to),
                text,
            });
        }
    }
    sent
}

/// One message a client sent: to the room (`to: None`), or to client `to`.
struct Sent {
    from: usize,
    to: Option<usize>,
    text: String,
}

/// What one client received: the texts of the messages, in order, and the errors.
#[derive(Default, Debug)]
struct Received {
    texts: Vec<String>,
    errors: Vec<i32>,
}

/// Reads what each client has received until it has been quiet for `quiet`. A kick or a
/// close fails the test.
async fn drain(clients: &mut [Client], quiet: Duration) -> Vec<Received> {
    let mut all = Vec::new();
    for c in clients.iter_mut() {
        let mut got = Received::default();
        loop {
            match c.try_recv(quiet).await {
                Ok(Reply::Message(m)) => got.texts.push(m.text),
                Ok(Reply::Error(e)) => got.errors.push(e.code),
                Err(End::TimedOut) => break,
                other => panic!("{c:?}: got {other:?} while chatting"),
            }
        }
        all.push(got);
    }
    all
}

/// Every client got no error, every room message once (each sender's in order) and every
/// private message to it once.
fn check_all_handled_once(sent: &[Sent], received: &[Received]) {
    let n = received.len();
    for (j, got) in received.iter().enumerate() {
        assert!(
            got.errors.is_empty(),
            "client {j} got errors {:?}",
            got.errors
        );
        // Every room message once, each sender's in order; every private one once.
        for sender in (0..n).step_by(2) {
            let of_sender: Vec<&str> = sent
                .iter()
                .filter(|s| s.from == sender)
                .map(|s| s.text.as_str())
                .collect();
            let arrived: Vec<&str> = got
                .texts
                .iter()
                .map(String::as_str)
                .filter(|t| of_sender.contains(t))
                .collect();
            assert_eq!(
                arrived, of_sender,
                "client {j}: the room messages of {sender}"
            );
        }
        let mut want: Vec<&str> = sent
            .iter()
            .filter(|s| s.to.is_none() || s.to == Some(j))
            .map(|s| s.text.as_str())
            .collect();
        let mut have: Vec<&str> = got.texts.iter().map(String::as_str).collect();
        want.sort_unstable();
        have.sort_unstable();
        assert_eq!(have, want, "client {j}: every message exactly once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_chat_node_hands_its_users_to_another() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let mut l = Cluster::start(&nats, 8, 4).await;
        let n = l.clients.len();
        assert!(
            n - l.chat.online().await >= 8,
            "the process holds its users"
        );

        let mut sent = Vec::new();
        for round in 0..5 {
            sent.extend(send_round(round, &mut l.clients).await);
        }
        // Stopped while its users keep talking; the rounds go on until it has exited.
        l.process.signal("TERM");
        let mut round = 5;
        let mut after_exit = 0;
        while after_exit < 5 {
            sent.extend(send_round(round, &mut l.clients).await);
            round += 1;
            if l.process.try_wait().is_some() {
                after_exit += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = l.process.wait().await;
        assert!(
            status.success(),
            "the chat node stopped cleanly: {status:?}"
        );

        let received = drain(&mut l.clients, Duration::from_millis(300)).await;
        check_all_handled_once(&sent, &received);
        // Still logged in and in the room, on the node that remains: no login again.
        assert_eq!(
            l.chat.online().await,
            n + l.idle.len(),
            "every user is logged in on the other node"
        );
        let watchers = l
            .chat
            .chat
            .as_ref()
            .expect("chat")
            .call(TIMEOUT, |ctx| ctx.watchers(ROOM));
        assert_eq!(watchers.await.expect("chat answers"), n);
        for c in &mut l.clients {
            c.expect_quiet().await;
        }
        assert!(
            l.process.stderr().contains("moving connections"),
            "the stopping node moved its connections:\n{}",
            l.process.stderr()
        );

        // The rolling restart goes on: a new chat node comes, the one in this process stops.
        let (mut next, _next_dir) = chat_process(&nats);
        let mut probes = Vec::new();
        loop {
            let before = l.chat.online().await;
            let uid = 1000 + probes.len() as u64;
            probes.push(login_when_ready(&l.gate, uid).await);
            if l.chat.online().await == before {
                break; // served by the new node: it serves
            }
            assert!(probes.len() < 100, "the new chat node never served");
        }
        let stopping = tokio::spawn(l.chat.shutdown());
        let mut sent = Vec::new();
        let mut after_stop = 0;
        while after_stop < 5 {
            sent.extend(send_round(round, &mut l.clients).await);
            round += 1;
            if stopping.is_finished() {
                after_stop += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stopping.await.expect("the node stops");
        let received = drain(&mut l.clients, Duration::from_millis(300)).await;
        check_all_handled_once(&sent, &received);
        for c in l.clients.iter_mut().chain(&mut probes).chain(&mut l.idle) {
            c.expect_quiet().await;
        }

        // The last chat node has nowhere to hand its users: it stops as it always did.
        next.signal("TERM");
        assert!(next.wait().await.success());
        assert!(
            next.stderr().contains("no other node of this type"),
            "{}",
            next.stderr()
        );
        l.gate.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_chat_node_answers_every_unhandled_message_with_an_error() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let mut l = Cluster::start(&nats, 6, 6).await;
        let mut sent = Vec::new();
        let mut round = 0;
        for _ in 0..5 {
            sent.extend(send_round(round, &mut l.clients).await);
            round += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Killed mid-stream: what it had taken is neither handled nor acknowledged.
        l.process.signal("KILL");
        for _ in 0..10 {
            sent.extend(send_round(round, &mut l.clients).await);
            round += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        l.process.wait().await;
        // Unanswered forwards fail after request_timeout (1 s).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let received = drain(&mut l.clients, Duration::from_millis(300)).await;

        let mut seen: HashMap<usize, HashSet<&str>> = HashMap::new();
        for (j, got) in received.iter().enumerate() {
            let texts = seen.entry(j).or_default();
            for t in &got.texts {
                // Room messages reach every watcher once; nothing arrives twice.
                assert!(texts.insert(t.as_str()), "client {j} got {t:?} twice");
            }
        }
        let mut failed = 0;
        for (i, got) in received.iter().enumerate() {
            // Handled: the sender sees its room message, the receiver its private one.
            let unhandled = sent
                .iter()
                .filter(|s| s.from == i)
                .filter(|s| !seen[&s.to.unwrap_or(i)].contains(s.text.as_str()))
                .count();
            assert!(
                unhandled <= got.errors.len(),
                "client {i}: {unhandled} messages neither handled nor answered with an error \
                 ({:?})",
                got.errors
            );
            failed += got.errors.iter().filter(|&&e| e == ERR_UNAVAILABLE).count();
        }
        assert!(failed > 0, "the killed node's users were told");
        l.gate.shutdown().await;
        l.chat.shutdown().await;
    })
    .await;
}
