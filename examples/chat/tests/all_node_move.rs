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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::client::{chat_messages, encoding, is_presence};
use common::node::Node;
use common::{Enc, TEST_TIMEOUT, TIMEOUT, bounded, token};
use longlink_chat::msg::{
    C2sMessage, C2sUpdateWatchRoom, C2sUserLogin, S2cError, S2cMessage, S2cUpdateWatchRoom,
    S2cUserLogin,
};
use longlink_client::{ClientConfig, Event, ResumableClient, ResumeOptions, Transport};
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

/// What one client heard: its messages' texts in order, the errors, and what it was told
/// of its connection.
#[derive(Default, Debug)]
struct Heard {
    texts: Vec<String>,
    errors: Vec<(i32, String)>,
    other: Vec<String>,
    moving: u32,
    resumed: u32,
    lost: Vec<String>,
}

/// A resumable client, logged in and watching [`ROOM`]; a task reads its events.
struct User {
    uid: u64,
    sender: longlink_client::ResumableSender,
    heard: Arc<Mutex<Heard>>,
    reader: tokio::task::JoinHandle<()>,
}

async fn expect<T: 'static>(c: &mut ResumableClient) -> T {
    loop {
        let event = tokio::time::timeout(TIMEOUT, c.next())
            .await
            .expect("an event in time")
            .expect("next");
        if let Event::Message(m) = event {
            if is_presence(&m) {
                continue;
            }
            let name = m.name().to_owned();
            return m.downcast::<T>().unwrap_or_else(|_| panic!("got {name}"));
        }
    }
}

impl User {
    async fn join(gate: &Node, other: &Node, uid: u64, enc: Enc) -> User {
        let config = ClientConfig {
            addr: gate.tcp.expect("a gate").to_string(),
            transport: Transport::Tcp,
            encoding: encoding(enc),
            connect_timeout: Duration::from_secs(2),
            ..ClientConfig::default()
        };
        let options = ResumeOptions {
            max_backoff: Duration::from_millis(300),
            addresses: vec![other.tcp.expect("a gate").to_string()],
            ..ResumeOptions::default()
        };
        let mut c = tokio::time::timeout(
            TIMEOUT,
            ResumableClient::connect(config, chat_messages(), options),
        )
        .await
        .expect("connect in time")
        .expect("a resumable session");
        let login = C2sUserLogin {
            token: token(uid),
            login_plat: 1,
        };
        c.send(&login).await.expect("send login");
        let answer: S2cUserLogin = expect(&mut c).await;
        assert_eq!((answer.ret, answer.uid), (1, uid), "{answer:?}");
        c.send(&C2sUpdateWatchRoom { room_id: ROOM })
            .await
            .expect("send watch");
        let watched: S2cUpdateWatchRoom = expect(&mut c).await;
        assert_eq!(watched.room_id, ROOM);
        let heard = Arc::new(Mutex::new(Heard::default()));
        let sender = c.sender();
        let reader = tokio::spawn(read(c, Arc::clone(&heard)));
        User {
            uid,
            sender,
            heard,
            reader,
        }
    }
}

/// Reads every event of `c` into `heard` until the client ends.
async fn read(mut c: ResumableClient, heard: Arc<Mutex<Heard>>) {
    while let Ok(event) = c.next().await {
        let mut h = heard.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Message(m) if is_presence(&m) => {}
            Event::Message(m) => {
                let name = m.name().to_owned();
                match m.downcast::<S2cMessage>() {
                    Ok(m) => h.texts.push(m.text),
                    Err(m) => match m.downcast::<S2cError>() {
                        Ok(e) => h.errors.push((e.code, e.msg)),
                        Err(_) => h.other.push(name),
                    },
                }
            }
            Event::Moving { .. } => h.moving += 1,
            Event::Resumed { .. } => h.resumed += 1,
            Event::SessionLost { reason, .. } => h.lost.push(reason),
            _ => {}
        }
    }
}

/// One message sent: to the room (`to: None`) or privately to user `to`.
struct Sent {
    from: usize,
    to: Option<usize>,
    text: String,
}

/// A round: even users say something to the room, odd ones tell the next user privately.
async fn round(r: usize, users: &[User], sent: &mut Vec<Sent>) {
    let n = users.len();
    for (i, u) in users.iter().enumerate() {
        let text = format!("round {r} from {}", u.uid);
        let (msg, to) = if i % 2 == 0 {
            (
                C2sMessage {
                    room_id: ROOM,
                    to_uid: 0,
                    text: text.clone(),
                },
                None,
            )
        } else {
            let to = (i + 1) % n;
            (
                C2sMessage {
                    room_id: 0,
                    to_uid: users[to].uid,
                    text: text.clone(),
                },
                Some(to),
            )
        };
        u.sender.send(&msg).await.expect("send");
        sent.push(Sent { from: i, to, text });
    }
}

/// What user `j` should hear, in the order each sender sent it.
fn expected(sent: &[Sent], j: usize) -> Vec<&str> {
    sent.iter()
        .filter(|s| s.to.is_none() || s.to == Some(j))
        .map(|s| s.text.as_str())
        .collect()
}

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
            users.push(User::join(&stopping, &staying, uid, enc).await);
        }
        for uid in 1..=ON_STAYING as u64 {
            let uid = ON_STOPPING as u64 + uid;
            users.push(User::join(&staying, &stopping, uid, enc).await);
        }
        let mut sent = Vec::new();
        for r in 0..BEFORE {
            round(r, &users, &mut sent).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stop = tokio::spawn(stopping.shutdown());
        for r in BEFORE..BEFORE + AFTER {
            round(r, &users, &mut sent).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.await.expect("the node stops");

        // Every user hears everything meant for it, or the deadline passes.
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let heard_all = |users: &[User]| {
            users.iter().enumerate().all(|(j, u)| {
                let h = u.heard.lock().unwrap_or_else(|p| p.into_inner());
                h.texts.len() >= expected(&sent, j).len() || !h.errors.is_empty()
            })
        };
        while !heard_all(&users) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await; // duplicates, if any, land
        for (j, u) in users.iter().enumerate() {
            let h = u.heard.lock().unwrap_or_else(|p| p.into_inner());
            assert!(h.errors.is_empty(), "user {}: errors {:?}", u.uid, h.errors);
            assert!(
                h.lost.is_empty(),
                "user {}: sessions lost {:?}",
                u.uid,
                h.lost
            );
            assert!(h.other.is_empty(), "user {}: got {:?}", u.uid, h.other);
            if j < ON_STOPPING {
                assert!(h.moving >= 1 && h.resumed >= 1, "user {}: {h:?}", u.uid);
            }
            // Each sender's messages in order, each once.
            let mut by_sender: HashMap<usize, Vec<&str>> = HashMap::new();
            for s in sent.iter().filter(|s| s.to.is_none() || s.to == Some(j)) {
                by_sender.entry(s.from).or_default().push(&s.text);
            }
            for (from, mut want) in by_sender {
                let mut have: Vec<&str> = h
                    .texts
                    .iter()
                    .map(String::as_str)
                    .filter(|t| want.contains(t))
                    .collect();
                // A private message is a push to a uid: one that looked the uid up before its
                // session moved reaches the old gate and is sent on from there, possibly after
                // a later one (docs/known-gaps.md). Each once, in any order.
                if from % 2 == 1 {
                    have.sort_unstable();
                    want.sort_unstable();
                }
                assert_eq!(have, want, "user {}: the messages of user {from}", u.uid);
            }
            assert_eq!(
                h.texts.len(),
                expected(&sent, j).len(),
                "user {}: every message once",
                u.uid
            );
        }
        // Everyone is logged in on the node that stayed.
        assert_eq!(staying.online().await, users.len());
        for u in users {
            drop(u.sender);
            u.reader.abort();
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
