//! Section 3, a graceful shutdown while a room is busy: SIGTERM to the real binary, and
//! `StopHandle::stop` in process; every watcher gets every message the server handled, then
//! the kick, then the close, even with a watcher that does not read.

use super::*;

/// The busy room.
const ROOM: u64 = 77;
/// Most messages the sender sends.
const STORM: usize = 2000;
/// The server is stopped once the sender has seen this many of its messages echoed.
const STOP_AFTER: usize = 20;

/// A connection logged in as `uid` and watching `room`, split so that it can send and read
/// at once.
async fn split_login(t: Transport, enc: Enc, addr: SocketAddr, uid: u64, room: u64) -> (Tx, Rx) {
    let mut c = Client::connect(t, enc, addr).await;
    c.login_uid(uid).await;
    c.watch(room).await;
    c.into_split()
}

/// A room under load: watchers on TCP and WebSocket reading in their own tasks, and a sender
/// that sends up to [`STORM`] room messages as fast as it can while it reads their echoes.
struct Storm {
    enc: Enc,
    sender_t: Transport,
    /// A watcher whose socket is full, and the client that filled it (kept open).
    _stuck: Option<(Client, Client)>,
    watchers: Vec<(String, Transport, JoinHandle<Transcript>)>,
    writer: JoinHandle<(usize, Tx)>,
    reader: JoinHandle<Transcript>,
}

impl Storm {
    /// Sets the room up, starts the storm, and returns once the sender has seen
    /// [`STOP_AFTER`] echoes: the moment to stop the server.
    /// With `stuck`, one more watcher (uid 300) never reads, and its socket is filled first.
    async fn start(
        enc: Enc,
        (tcp, ws): (SocketAddr, SocketAddr),
        sender_t: Transport,
        stuck: bool,
    ) -> Storm {
        let addr = |t| match t {
            Transport::Tcp => tcp,
            Transport::Ws => ws,
        };
        let mut watchers = Vec::new();
        for (i, t) in [Transport::Tcp, Transport::Ws, Transport::Tcp, Transport::Ws]
            .into_iter()
            .enumerate()
        {
            let mut c = Client::connect(t, enc, addr(t)).await;
            let uid = 200 + i as u64;
            c.login_uid(uid).await;
            assert_eq!(c.watch(ROOM).await, i as u32 + 1);
            let name = format!("{enc:?}: {t:?} watcher {uid}");
            let task = tokio::spawn(async move { read_to_close(&mut c).await });
            watchers.push((name, t, task));
        }
        let stuck = match stuck {
            true => Some(stuck_watcher(enc, tcp).await),
            false => None,
        };
        let (mut tx, mut rx) = split_login(sender_t, enc, addr(sender_t), 100, ROOM).await;
        let (hit, hit_rx) = tokio::sync::oneshot::channel::<()>();
        let reader = tokio::spawn(async move {
            let mut hit = Some(hit);
            let mut replies = Vec::new();
            let mut echoes = 0;
            loop {
                match rx.recv(TIMEOUT).await {
                    Ok(payload) => {
                        let reply = decode(enc, &payload).expect("sender: decodable");
                        if matches!(reply, Reply::Message(_)) {
                            echoes += 1;
                            if echoes == STOP_AFTER {
                                let _ = hit.take().expect("reached once").send(());
                            }
                        }
                        replies.push(reply);
                    }
                    Err(end) => return Transcript { replies, end },
                }
            }
        });
        let writer = tokio::spawn(async move {
            let mut sent = 0;
            for i in 0..STORM {
                let msg = C2sMessage {
                    room_id: ROOM,
                    to_uid: 0,
                    text: format!("storm {i}"),
                };
                if tx.send(encode(enc, &msg)).await.is_err() {
                    break; // the server closed the connection
                }
                sent += 1;
            }
            // Kept open: dropping a TCP write half would send a FIN (a client's own close).
            (sent, tx)
        });
        tokio::time::timeout(TIMEOUT, hit_rx)
            .await
            .expect("the sender saw too few echoes")
            .expect("the sender's reader ended early");
        Storm {
            enc,
            sender_t,
            _stuck: stuck,
            watchers,
            writer,
            reader,
        }
    }

    /// After the server stopped: the sender saw a prefix of what it sent, then the kick, then
    /// the close; every watcher saw exactly those messages, in order, then the kick, then
    /// the close.
    async fn check(self) {
        let enc = self.enc;
        let sender = self.reader.await.expect("sender's reader");
        let (sent, tx) = self.writer.await.expect("sender's writer");
        drop(tx);
        let echoes: Vec<String> = sender
            .replies
            .iter()
            .filter_map(|r| match r {
                Reply::Message(m) => Some(m.text.clone()),
                _ => None,
            })
            .collect();
        let expected: Vec<String> = (0..echoes.len()).map(|i| format!("storm {i}")).collect();
        assert_same_texts(&format!("{enc:?}: sender's echoes"), &echoes, &expected);
        assert!(
            echoes.len() >= STOP_AFTER && echoes.len() <= sent,
            "{enc:?}: {} echoes for {sent} sent",
            echoes.len()
        );
        eprintln!(
            "{enc:?}/{:?} sender: {sent} of {STORM} sent, {} handled before the shutdown",
            self.sender_t,
            echoes.len()
        );
        // The sender may have had unread messages at the close: its close code is not checked.
        assert_goodbye(
            &format!("{enc:?}: {:?} sender", self.sender_t),
            &sender,
            &echoes,
            "shutdown",
            false,
        );
        for (name, t, task) in self.watchers {
            let transcript = task.await.expect("watcher task");
            assert_goodbye(&name, &transcript, &echoes, "shutdown", t == Transport::Ws);
        }
    }
}

/// A watcher of [`ROOM`] with a small receive window that never reads, and a client that has
/// sent it 7 MB of private messages: its writer on the server is blocked on a full socket.
async fn stuck_watcher(enc: Enc, tcp: SocketAddr) -> (Client, Client) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(tcp).await.expect("connect");
    let mut stuck = Client::over(stream, Transport::Tcp, enc, tcp)
        .await
        .expect("the stuck watcher connects");
    stuck.login_uid(300).await;
    stuck.watch(ROOM).await;
    let mut filler = Client::connect(Transport::Tcp, enc, tcp).await;
    filler.login_uid(301).await;
    let text = "x".repeat(1000);
    for _ in 0..7000 {
        filler.tell(300, &text).await;
    }
    // The filler's own answer comes after its messages were handled.
    filler.watch(ROOM + 1).await;
    (stuck, filler)
}

/// A large queue, so that a watcher falling behind under load is not disconnected for it:
/// the queue limit is not what these tests are about.
const BIG_QUEUE: usize = 20 * STORM;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_a_busy_room_delivers_every_handled_message_before_the_kick() {
    bounded(TEST_TIMEOUT, async {
        for (enc, sender_t) in [(Enc::Json, Transport::Tcp), (Enc::Protobuf, Transport::Ws)] {
            let mut s = serve(enc, &format!("pending_write_num = {BIG_QUEUE}")).await;
            let storm = Storm::start(enc, (s.tcp, s.ws), sender_t, false).await;
            s.proc.signal("TERM");
            let status = s.proc.wait().await;
            assert_eq!(
                status.code(),
                Some(0),
                "{enc:?}: exit status {status}; stderr:\n{}",
                s.proc.stderr()
            );
            storm.check().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_in_a_busy_room_delivers_every_handled_message_before_the_kick() {
    bounded(TEST_TIMEOUT, async {
        for (enc, sender_t) in [(Enc::Json, Transport::Ws), (Enc::Protobuf, Transport::Tcp)] {
            let server =
                TestServer::start_with(enc, |c| c.gate.pending_write_num = BIG_QUEUE).await;
            let storm = Storm::start(enc, (server.tcp, server.ws), sender_t, false).await;
            // stop.stop(), then the server must finish cleanly in time.
            server.shutdown().await;
            storm.check().await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------

/// As above with a watcher that does not read (its socket full, its writer blocked): the
/// others still get every message handled and the kick, and the server exits once the stuck
/// one is reset at its own `close_timeout` (5 s), not at the shutdown deadline (10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_watcher_that_does_not_read_still_delivers_to_the_others() {
    bounded(TEST_TIMEOUT * 2, async {
        let enc = Enc::Json;
        let extra = format!("pending_write_num = {BIG_QUEUE}\npending_write_bytes = 0");
        let mut s = serve(enc, &extra).await;
        let storm = Storm::start(enc, (s.tcp, s.ws), Transport::Tcp, true).await;
        let signalled = Instant::now();
        s.proc.signal("TERM");
        let status = s.proc.wait().await;
        let took = signalled.elapsed();
        assert_eq!(
            status.code(),
            Some(0),
            "exit status {status}; stderr:\n{}",
            s.proc.stderr()
        );
        assert!(took < Duration::from_secs(8), "exit {took:?} after SIGTERM");
        storm.check().await;
    })
    .await;
}
