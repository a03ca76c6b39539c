//! A rolling deploy's users, for the tests that stop nodes while users chat
//! (`all_node_move.rs`, `gate_and_node_move.rs`): resumable clients logged in and watching a
//! room, rounds of room and private messages, and the check of what each one heard.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::{chat_messages, encoding, is_presence};
use super::node::Node;
use super::{Enc, TIMEOUT, token};
use longlink_chat::msg::{
    C2sMessage, C2sUpdateWatchRoom, C2sUserLogin, S2cError, S2cMessage, S2cUpdateWatchRoom,
    S2cUserLogin,
};
use longlink_client::{ClientConfig, Event, ResumableClient, ResumeOptions, Transport};

/// What one client heard: its messages' texts in order, the errors, and what it was told
/// of its connection.
#[derive(Default, Debug)]
pub struct Heard {
    pub texts: Vec<String>,
    pub errors: Vec<(i32, String)>,
    pub other: Vec<String>,
    pub moving: u32,
    pub resumed: u32,
    pub lost: Vec<String>,
}

/// A resumable client, logged in and watching a room; a task reads its events.
pub struct User {
    pub uid: u64,
    pub sender: longlink_client::ResumableSender,
    pub heard: Arc<Mutex<Heard>>,
    pub reader: tokio::task::JoinHandle<()>,
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
    /// Logs `uid` in on `gate` (knowing `other` too) and watches `room`.
    pub async fn join(gate: &Node, other: &Node, uid: u64, enc: Enc, room: u64) -> User {
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
        c.send(&C2sUpdateWatchRoom { room_id: room })
            .await
            .expect("send watch");
        let watched: S2cUpdateWatchRoom = expect(&mut c).await;
        assert_eq!(watched.room_id, room);
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
pub struct Sent {
    pub from: usize,
    pub to: Option<usize>,
    pub text: String,
}

/// A round: even users say something to the room, odd ones tell the next user privately.
pub async fn round(r: usize, users: &[User], room: u64, sent: &mut Vec<Sent>) {
    let n = users.len();
    for (i, u) in users.iter().enumerate() {
        let text = format!("round {r} from {}", u.uid);
        let (msg, to) = if i % 2 == 0 {
            (
                C2sMessage {
                    room_id: room,
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
pub fn expected(sent: &[Sent], j: usize) -> Vec<&str> {
    sent.iter()
        .filter(|s| s.to.is_none() || s.to == Some(j))
        .map(|s| s.text.as_str())
        .collect()
}

impl User {
    /// Ends the client and its reader.
    pub fn end(self) {
        drop(self.sender);
        self.reader.abort();
    }
}

/// Whether a private message must reach its receiver in the order it was sent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PrivateOrder {
    /// As sent, like room messages.
    AsSent,
    /// Any order: a private message is a push to a uid, and one that looked the uid up
    /// before its session moved reaches the old gate and is sent on from there, possibly
    /// after a later one (docs/known-gaps.md).
    Any,
}

/// Waits until every user has heard everything meant for it (or an error, or the deadline),
/// then checks: no error, no session lost, nothing unexpected, a move and a resume for each
/// of the first `moved` users, each sender's messages once and in order (private ones as
/// `private` says), every message once.
pub async fn check_heard(users: &[User], sent: &[Sent], moved: usize, private: PrivateOrder) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let heard_all = |users: &[User]| {
        users.iter().enumerate().all(|(j, u)| {
            let h = u.heard.lock().unwrap_or_else(|p| p.into_inner());
            h.texts.len() >= expected(sent, j).len() || !h.errors.is_empty()
        })
    };
    while !heard_all(users) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // duplicates, if any, land
    let private_senders: HashSet<usize> = sent
        .iter()
        .filter(|s| s.to.is_some())
        .map(|s| s.from)
        .collect();
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
        if j < moved {
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
            if private == PrivateOrder::Any && private_senders.contains(&from) {
                have.sort_unstable();
                want.sort_unstable();
            }
            assert_eq!(have, want, "user {}: the messages of user {from}", u.uid);
        }
        assert_eq!(
            h.texts.len(),
            expected(sent, j).len(),
            "user {}: every message once",
            u.uid
        );
    }
}
