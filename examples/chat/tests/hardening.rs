//! Hardening of the gate, seen from the wire: the per-connection message rate, the idle
//! timeout, a graceful shutdown while a room is busy (SIGTERM to the real binary, and
//! `StopHandle::stop` in process), the per-IP connection cap, and WebSocket keep-alive pings.
//!
//! Every goodbye the gate says on its own account is an `S2C_Kick{reason}` (src/chat.rs
//! `on_goodbye`), after the replies to what the connection already sent, and before the close.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::process::*;
use common::*;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use longlink_chat::msg::{C2sMessage, C2sUpdateWatchRoom, C2sUserHeartBeat, C2sUserLogin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const LOCALHOST_2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Everything a connection received until it was closed (or went quiet for [`TIMEOUT`]).
#[derive(Debug)]
struct Transcript {
    replies: Vec<Reply>,
    end: End,
}

/// Reads `c` until the server closes it.
async fn read_to_close(c: &mut Client) -> Transcript {
    let mut replies = Vec::new();
    loop {
        match c.try_recv(TIMEOUT).await {
            Ok(reply) => replies.push(reply),
            Err(end) => return Transcript { replies, end },
        }
    }
}

/// Compares two lists of texts, naming the first difference rather than printing thousands.
fn assert_same_texts(who: &str, got: &[String], want: &[String]) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!(
            "{who}: message #{i} is {:?}, expected {:?} ({} received, {} expected)",
            got[i],
            want[i],
            got.len(),
            want.len()
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{who}: {} messages received, {} expected (first missing or extra: {:?})",
        got.len(),
        want.len(),
        got.get(want.len()).or(want.get(got.len()))
    );
}

/// Checks a goodbye: exactly the `texts` (as `S2C_Message`s, in order), then one
/// `S2C_Kick{reason}`, then the close (a WebSocket close with code 1000 if `ws_close_code`).
fn assert_goodbye(who: &str, t: &Transcript, texts: &[String], reason: &str, ws_close_code: bool) {
    let Some((last, before)) = t.replies.split_last() else {
        panic!("{who}: closed ({:?}) without S2C_Kick", t.end);
    };
    match last {
        Reply::Kick(k) => assert_eq!(k.reason, reason, "{who}: kick reason"),
        other => panic!(
            "{who}: the last thing before the close ({:?}) is {other:?}, not S2C_Kick",
            t.end
        ),
    }
    let got: Vec<String> = before
        .iter()
        .map(|r| match r {
            Reply::Message(m) => m.text.clone(),
            other => panic!("{who}: unexpected {other:?} before the kick"),
        })
        .collect();
    assert_same_texts(who, &got, texts);
    match &t.end {
        End::Closed { ws_code, .. } => {
            if ws_close_code {
                assert_eq!(*ws_code, Some(1000), "{who}: WebSocket close code");
            }
        }
        End::TimedOut => panic!("{who}: still open {TIMEOUT:?} after S2C_Kick"),
    }
}

/// Waits until `uid` is offline (a private message to it gets `S2C_Error` 3), within
/// [`TIMEOUT`]; returns when that was first seen. `asker` must be logged in.
async fn wait_offline(asker: &mut Client, uid: u64) -> Instant {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        asker.tell(uid, "are you there?").await;
        // The watch is answered by the chat module after the private message: if the
        // message was refused, the error comes first.
        asker
            .send(&C2sUpdateWatchRoom {
                room_id: asker.room,
            })
            .await;
        match asker.recv().await {
            Reply::Error(e) if e.code == ERR_NOT_ONLINE => {
                let seen = Instant::now();
                match asker.recv().await {
                    Reply::Watch(_) => return seen,
                    other => panic!("{asker:?}: expected S2C_UpdateWatchRoom, got {other:?}"),
                }
            }
            Reply::Watch(_) => {}
            other => panic!("{asker:?}: probing uid {uid}: unexpected {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "uid {uid} still online after {TIMEOUT:?}"
        );
        tokio::time::sleep(ms(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Rate limit

/// What a flooding client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flood {
    /// 20 heartbeats before any login, on a fresh connection (its bucket starts full).
    FreshHeartBeats,
    /// 20 heartbeats, logged in.
    HeartBeats,
    /// 20 room messages, logged in and watching the room.
    RoomMessages,
}

/// Sends every payload at once: one TCP write holding all the frames, or WebSocket messages
/// back to back. The server may close the connection before the last ones are written (it
/// stops reading at the limit): a failed write ends the flood, the first `must` must pass.
async fn send_at_once(c: &mut Client, payloads: &[Vec<u8>], must: usize) {
    match c.transport {
        Transport::Tcp => {
            let mut bytes = Vec::new();
            for p in payloads {
                bytes.extend_from_slice(&u16::try_from(p.len()).unwrap().to_be_bytes());
                bytes.extend_from_slice(p);
            }
            // One write: the kernel takes it all before the server reads any of it.
            c.send_raw(&bytes).await.expect("send the flood");
        }
        Transport::Ws => {
            for (i, p) in payloads.iter().enumerate() {
                if let Err(e) = c.send_payload(p).await {
                    assert!(i > must, "{c:?}: message #{i} of the flood not sent: {e}");
                    break;
                }
            }
        }
    }
}

/// Says `n` messages to `room`, about 3 per second, each echoed; then checks nothing else
/// is pending.
async fn chat_steadily(mut c: Client, room: u64, n: usize) -> Client {
    for i in 0..n {
        let text = format!("steady {i}");
        c.say(room, &text).await;
        assert_eq!(c.expect_message().await.text, text, "{c:?}: echo");
        tokio::time::sleep(ms(334)).await;
    }
    c.expect_quiet().await;
    c
}

async fn rate_limit_cuts_a_flood(enc: Enc) {
    const RATE: u32 = 5;
    const BURST: usize = 3;
    const FLOOD: usize = 20;
    let server = TestServer::start_with(enc, |c| {
        c.gate.max_msg_rate = RATE;
        c.gate.max_msg_burst = BURST as u32;
    })
    .await;
    let mut uid = 1000;
    let mut room = 10;
    for t in Transport::ALL {
        for kind in [
            Flood::FreshHeartBeats,
            Flood::HeartBeats,
            Flood::RoomMessages,
        ] {
            let what = format!("{enc:?}/{t:?}/{kind:?}");
            uid += 10;
            room += 1;
            let steady_room = room + 1000;
            let mut watcher = server.login(t.other(), uid + 1).await;
            watcher.watch(room).await;
            let mut steady = server.login(t.other(), uid + 2).await;
            steady.watch(steady_room).await;
            let mut flooder = server.connect(t).await;
            if kind != Flood::FreshHeartBeats {
                flooder.login_uid(uid).await;
            }
            if kind == Flood::RoomMessages {
                flooder.watch(room).await;
            }
            // The login and the watch took up to 2 of the 3 tokens; at 5 per second every
            // bucket is full again after 0.4 s.
            tokio::time::sleep(Duration::from_secs(1)).await;

            // Meanwhile another client keeps chatting below the rate: it is never cut.
            let steady = tokio::spawn(chat_steadily(steady, steady_room, 5));

            let payloads: Vec<Vec<u8>> = (0..FLOOD)
                .map(|i| match kind {
                    Flood::FreshHeartBeats | Flood::HeartBeats => encode(
                        enc,
                        &C2sUserHeartBeat {
                            ptime: 1 + i as i64,
                        },
                    ),
                    Flood::RoomMessages => encode(
                        enc,
                        &C2sMessage {
                            room_id: room,
                            to_uid: 0,
                            text: format!("flood {i}"),
                        },
                    ),
                })
                .collect();
            send_at_once(&mut flooder, &payloads, BURST).await;

            // The messages the bucket admitted are answered, then the kick, then the close.
            for i in 0..BURST {
                match (kind, flooder.recv().await) {
                    (Flood::FreshHeartBeats | Flood::HeartBeats, Reply::HeartBeat(hb)) => {
                        assert_near_now(hb.ptime, &what)
                    }
                    (Flood::RoomMessages, Reply::Message(m)) => {
                        assert_eq!(m.text, format!("flood {i}"), "{what}: echo #{i}")
                    }
                    (_, other) => panic!("{what}: answer #{i}: unexpected {other:?}"),
                }
            }
            match flooder.recv().await {
                Reply::Kick(k) => assert_eq!(k.reason, "rate limit", "{what}"),
                other => panic!(
                    "{what}: expected S2C_Kick after {BURST} answers (burst {BURST}), got {other:?}"
                ),
            }
            flooder.expect_closed().await;

            // The room saw exactly what was admitted.
            if kind == Flood::RoomMessages {
                for i in 0..BURST {
                    assert_eq!(
                        watcher.expect_message().await.text,
                        format!("flood {i}"),
                        "{what}: watcher"
                    );
                }
            }
            watcher.expect_quiet().await;
            let steady = steady.await.expect("the steady client chatted on");
            drop(steady);
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_the_burst_then_kicks_json() {
    bounded(rate_limit_cuts_a_flood(Enc::Json)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_the_burst_then_kicks_protobuf() {
    bounded(rate_limit_cuts_a_flood(Enc::Protobuf)).await;
}

// ---------------------------------------------------------------------------------------------
// 2. Idle timeout

async fn idle_timeout_kicks_the_silent(enc: Enc) {
    let server = TestServer::start_with(enc, |c| c.gate.idle_timeout = ms(500)).await;
    for (i, t) in Transport::ALL.into_iter().enumerate() {
        let what = format!("{enc:?}/{t:?}");
        let uid = 10 + 10 * i as u64;
        let mut silent = server.connect(t).await;
        let last_sent = Instant::now();
        silent.login_uid(uid).await;

        // A client on the other transport that sends a heartbeat every 150 ms is never idle.
        let mut busy = server.login(t.other(), uid + 1).await;
        let busy = tokio::spawn(async move {
            let until = Instant::now() + ms(1500);
            while Instant::now() < until {
                busy.heartbeat().await;
                tokio::time::sleep(ms(150)).await;
            }
            busy
        });

        match silent.try_recv(TIMEOUT).await {
            Ok(Reply::Kick(k)) => assert_eq!(k.reason, "idle", "{what}"),
            other => panic!("{what}: expected S2C_Kick{{idle}}, got {other:?}"),
        }
        let silence = last_sent.elapsed();
        assert!(
            silence >= ms(450),
            "{what}: kicked as idle after only {silence:?} of silence (idle_timeout 0.5 s)"
        );
        let code = silent.expect_closed().await;
        if t == Transport::Ws {
            assert_eq!(code, Some(1000), "{what}: WebSocket close code");
        }

        let mut busy = busy.await.expect("the busy client kept its heartbeats");
        busy.expect_quiet().await;
        // The kicked uid is offline; the busy one is still logged in (it can ask).
        wait_offline(&mut busy, uid).await;
        busy.heartbeat().await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_kicks_a_silent_client_but_not_a_busy_one_json() {
    bounded(idle_timeout_kicks_the_silent(Enc::Json)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_kicks_a_silent_client_but_not_a_busy_one_protobuf() {
    bounded(idle_timeout_kicks_the_silent(Enc::Protobuf)).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Graceful shutdown while a room is busy

/// The busy room.
const ROOM: u64 = 77;
/// Most messages the sender sends.
const STORM: usize = 2000;
/// The server is stopped once the sender has seen this many of its messages echoed.
const STOP_AFTER: usize = 20;

/// The sending half of a connection whose reading runs in another task.
enum Tx {
    Tcp(OwnedWriteHalf),
    Ws(SplitSink<WebSocketStream<TcpStream>, WsMessage>),
}

/// The receiving half.
enum Rx {
    Tcp(OwnedReadHalf, Vec<u8>),
    Ws(SplitStream<WebSocketStream<TcpStream>>),
}

impl Tx {
    async fn send(&mut self, payload: Vec<u8>) -> Result<(), String> {
        let work = async {
            match self {
                Tx::Tcp(w) => {
                    let mut frame = u16::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
                    frame.extend_from_slice(&payload);
                    w.write_all(&frame).await.map_err(|e| e.to_string())
                }
                Tx::Ws(sink) => sink
                    .send(WsMessage::Binary(payload.into()))
                    .await
                    .map_err(|e| e.to_string()),
            }
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .map_err(|_| "write timed out".to_owned())?
    }
}

impl Rx {
    async fn recv(&mut self, within: Duration) -> Result<Vec<u8>, End> {
        let deadline = Instant::now() + within;
        let closed = |why: String| End::Closed { ws_code: None, why };
        match self {
            Rx::Tcp(r, buf) => loop {
                if buf.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
                    if buf.len() >= 2 + len {
                        let payload = buf[2..2 + len].to_vec();
                        buf.drain(..2 + len);
                        return Ok(payload);
                    }
                }
                match tokio::time::timeout_at(deadline, r.read_buf(buf)).await {
                    Err(_) => return Err(End::TimedOut),
                    Ok(Ok(0)) => return Err(closed(format!("eof ({} bytes left)", buf.len()))),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(closed(format!("read error: {e}"))),
                }
            },
            Rx::Ws(stream) => loop {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Err(_) => return Err(End::TimedOut),
                    Ok(None) => return Err(closed("stream ended".into())),
                    Ok(Some(Err(e))) => return Err(closed(format!("read error: {e}"))),
                    Ok(Some(Ok(WsMessage::Binary(b)))) => return Ok(b.to_vec()),
                    Ok(Some(Ok(WsMessage::Text(t)))) => return Ok(t.as_bytes().to_vec()),
                    Ok(Some(Ok(WsMessage::Close(frame)))) => {
                        return Err(End::Closed {
                            ws_code: frame.as_ref().map(|f| u16::from(f.code)),
                            why: format!("close frame {frame:?}"),
                        });
                    }
                    Ok(Some(Ok(_))) => {}
                }
            },
        }
    }
}

/// A connection logged in as `uid` and watching `room`, split so that it can send and read
/// at once.
async fn split_login(t: Transport, enc: Enc, addr: SocketAddr, uid: u64, room: u64) -> (Tx, Rx) {
    let stream = TcpStream::connect(addr).await.expect("connect the sender");
    stream.set_nodelay(true).unwrap();
    let (mut tx, mut rx) = match t {
        Transport::Tcp => {
            let (r, w) = stream.into_split();
            (Tx::Tcp(w), Rx::Tcp(r, Vec::new()))
        }
        Transport::Ws => {
            let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/chat"), stream)
                .await
                .expect("WebSocket handshake");
            let (sink, stream) = ws.split();
            (Tx::Ws(sink), Rx::Ws(stream))
        }
    };
    let mut ask = async |payload: Vec<u8>| {
        tx.send(payload).await.expect("send");
        let reply = rx.recv(TIMEOUT).await.expect("an answer");
        decode(enc, &reply).expect("decodable")
    };
    match ask(encode(
        enc,
        &C2sUserLogin {
            token: token(uid),
            login_plat: 1,
        },
    ))
    .await
    {
        Reply::Login(l) if l.ret == 1 && l.uid == uid => {}
        other => panic!("sender login: {other:?}"),
    }
    match ask(encode(enc, &C2sUpdateWatchRoom { room_id: room })).await {
        Reply::Watch(w) if w.room_id == room => {}
        other => panic!("sender watch: {other:?}"),
    }
    (tx, rx)
}

/// A room under load: watchers on TCP and WebSocket reading in their own tasks, and a sender
/// that sends up to [`STORM`] room messages as fast as it can while it reads their echoes.
struct Storm {
    enc: Enc,
    sender_t: Transport,
    watchers: Vec<(String, Transport, JoinHandle<Transcript>)>,
    writer: JoinHandle<(usize, Tx)>,
    reader: JoinHandle<Transcript>,
}

impl Storm {
    /// Sets the room up, starts the storm, and returns once the sender has seen
    /// [`STOP_AFTER`] echoes: the moment to stop the server.
    async fn start(enc: Enc, tcp: SocketAddr, ws: SocketAddr, sender_t: Transport) -> Storm {
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

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
}

/// A running binary with a config file on fresh ports.
struct Served {
    proc: Proc,
    tcp: SocketAddr,
    ws: SocketAddr,
    _dir: TempDir,
}

/// Starts the binary with `encoding`, fresh ports and `extra_gate` lines in `[gate]`, and
/// waits until it answers a heartbeat on both transports. Retries with new ports if one was
/// taken meanwhile.
async fn serve(enc: Enc, extra_gate: &str) -> Served {
    let encoding = match enc {
        Enc::Json => "json",
        Enc::Protobuf => "protobuf",
    };
    let mut last = String::new();
    'attempt: for _ in 0..3 {
        let dir = TempDir::new("serve");
        let (tcp, ws) = (free_addr(), free_addr());
        let config = dir.write(
            "chat.toml",
            &format!(
                "[gate]\ntcp_addr = \"{tcp}\"\nws_addr = \"{ws}\"\nencoding = \"{encoding}\"\n{extra_gate}\n"
            ),
        );
        let config = config.to_str().expect("a UTF-8 temp path");
        let mut proc = Proc::spawn(&dir, &["--config", config], &[]);
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        for (t, addr) in [(Transport::Tcp, tcp), (Transport::Ws, ws)] {
            loop {
                if let Some(status) = proc.try_wait() {
                    last = format!("exited with {status}; stderr:\n{}", proc.stderr());
                    if last.to_lowercase().contains("in use") {
                        continue 'attempt;
                    }
                    panic!("longlink-chat did not start: {last}");
                }
                if let Ok(mut c) = Client::try_connect(t, enc, addr).await {
                    c.send(&C2sUserHeartBeat { ptime: 0 }).await;
                    if let Ok(Reply::HeartBeat(_)) = c.try_recv(TIMEOUT).await {
                        break;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "longlink-chat not serving {t:?} on {addr}; stderr:\n{}",
                    proc.stderr()
                );
                tokio::time::sleep(ms(25)).await;
            }
        }
        return Served {
            proc,
            tcp,
            ws,
            _dir: dir,
        };
    }
    panic!("longlink-chat did not start (ports taken?): {last}");
}

/// A large queue, so that a watcher falling behind under load is not disconnected for it:
/// the queue limit is not what these tests are about.
const BIG_QUEUE: usize = 20 * STORM;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_a_busy_room_delivers_every_handled_message_before_the_kick() {
    bounded(async {
        for (enc, sender_t) in [(Enc::Json, Transport::Tcp), (Enc::Protobuf, Transport::Ws)] {
            let mut s = serve(enc, &format!("pending_write_num = {BIG_QUEUE}")).await;
            let storm = Storm::start(enc, s.tcp, s.ws, sender_t).await;
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
    bounded(async {
        for (enc, sender_t) in [(Enc::Json, Transport::Ws), (Enc::Protobuf, Transport::Tcp)] {
            let server =
                TestServer::start_with(enc, |c| c.gate.pending_write_num = BIG_QUEUE).await;
            let storm = Storm::start(enc, server.tcp, server.ws, sender_t).await;
            // stop.stop(), then the server must finish cleanly in time.
            server.shutdown().await;
            storm.check().await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 4. Connections per IP address

/// The status line the WebSocket listener answers an upgrade request from `from` with.
async fn ws_status(from: IpAddr, addr: SocketAddr) -> String {
    let work = async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).expect("bind");
        let mut stream = socket.connect(addr).await.expect("connect");
        let request = format!(
            "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        head.lines().next().unwrap_or("").to_owned()
    };
    tokio::time::timeout(TIMEOUT, work)
        .await
        .expect("no answer to the upgrade request")
}

/// Asserts the cap is reached for 127.0.0.1: a TCP connection is accepted by the kernel and
/// closed by the gate without a word, a WebSocket upgrade gets 503.
async fn assert_full(enc: Enc, server: &TestServer) {
    let mut c = Client::connect(Transport::Tcp, enc, server.tcp).await;
    match c.recv_payload_within(TIMEOUT).await {
        Err(End::Closed { .. }) => {}
        other => panic!("{enc:?}: a TCP connection over the per-IP cap was not closed: {other:?}"),
    }
    let status = ws_status(LOCALHOST, server.ws).await;
    assert!(
        status.starts_with("HTTP/1.1 503"),
        "{enc:?}: a WebSocket upgrade over the per-IP cap: {status:?}"
    );
}

/// A connection from 127.0.0.1 if the gate admits it (answers a heartbeat).
async fn admitted(t: Transport, enc: Enc, addr: SocketAddr) -> Option<Client> {
    let mut c = Client::try_connect(t, enc, addr).await.ok()?;
    c.send_payload(&encode(enc, &C2sUserHeartBeat { ptime: 0 }))
        .await
        .ok()?;
    match c.try_recv(TIMEOUT).await {
        Ok(Reply::HeartBeat(_)) => Some(c),
        _ => None,
    }
}

/// Connects from 127.0.0.1 until a heartbeat is answered (a place is given back when the
/// gate has closed a connection, asynchronously), within [`TIMEOUT`].
async fn connect_when_admitted(t: Transport, enc: Enc, addr: SocketAddr) -> Client {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(c) = admitted(t, enc, addr).await {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{enc:?}/{t:?}: no place given back within {TIMEOUT:?}"
        );
        tokio::time::sleep(ms(20)).await;
    }
}

async fn per_ip_cap(enc: Enc) {
    let server = TestServer::start_with(enc, |c| c.gate.max_conn_per_ip = 3).await;
    // Three from 127.0.0.1, over both listeners: one count.
    let mut held = Vec::new();
    for (i, t) in [Transport::Tcp, Transport::Ws, Transport::Tcp]
        .into_iter()
        .enumerate()
    {
        let mut c = server.connect(t).await;
        c.login_uid(1 + i as u64).await;
        held.push(c);
    }
    assert_full(enc, &server).await;

    // Another address has places of its own.
    let mut others = Vec::new();
    for (i, t) in Transport::ALL.into_iter().enumerate() {
        let mut c = Client::try_connect_from(t, enc, LOCALHOST_2, server.addr(t))
            .await
            .unwrap_or_else(|e| panic!("{enc:?}/{t:?} from 127.0.0.2: {e}"));
        c.login_uid(10 + i as u64).await;
        c.heartbeat().await;
        others.push(c);
    }
    let status = ws_status(LOCALHOST_2, server.ws).await;
    assert!(
        status.starts_with("HTTP/1.1 101"),
        "{enc:?}: a third connection from 127.0.0.2: {status:?}"
    );

    // The refused ones took no place, and the held ones still work.
    for c in &mut held {
        c.heartbeat().await;
    }
    assert_full(enc, &server).await;

    // One closes: its place is given back, and only that one.
    let mut gone = held.remove(0);
    gone.shutdown_write().await;
    gone.expect_closed().await;
    let mut again = connect_when_admitted(Transport::Ws, enc, server.ws).await;
    again.login_uid(4).await;
    held.push(again);
    assert_full(enc, &server).await;
    for c in held.iter_mut().chain(others.iter_mut()) {
        c.heartbeat().await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_conn_per_ip_refuses_the_fourth_from_one_address_json() {
    bounded(per_ip_cap(Enc::Json)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_conn_per_ip_refuses_the_fourth_from_one_address_protobuf() {
    bounded(per_ip_cap(Enc::Protobuf)).await;
}

// ---------------------------------------------------------------------------------------------
// 5. WebSocket keep-alive

async fn ws_keepalive(enc: Enc) {
    const KEEP: Duration = Duration::from_millis(1500);
    let server = TestServer::start_with(enc, |c| {
        c.gate.ws_ping_interval = ms(200);
        c.gate.ws_pong_timeout = ms(300);
    })
    .await;
    let mut alive = server.login(Transport::Ws, 1).await;
    alive.watch(7).await;
    let mut tcp_silent = server.login(Transport::Tcp, 3).await;
    let mut talker = server.login(Transport::Tcp, 4).await;
    talker.watch(7).await;
    let mut asker = server.login(Transport::Tcp, 5).await;
    let mut deaf = server.connect(Transport::Ws).await;
    let deaf_last_sent = Instant::now();
    deaf.login_uid(2).await;
    // From here on `deaf` is not polled: it answers no ping.

    // `alive` sends nothing but keeps reading, so tungstenite answers every ping.
    let alive = tokio::spawn(async move {
        let until = Instant::now() + KEEP;
        let mut texts = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match alive.try_recv(left).await {
                Ok(Reply::Message(m)) => texts.push(m.text),
                Ok(other) => panic!("alive: unexpected {other:?}"),
                Err(End::TimedOut) => break,
                Err(end) => panic!("alive: dropped although it answers pings: {end:?}"),
            }
        }
        (alive, texts)
    });
    let talker = tokio::spawn(async move {
        let mut said = Vec::new();
        for i in 0..5 {
            tokio::time::sleep(ms(250)).await;
            let text = format!("tick {i}");
            talker.say(7, &text).await;
            assert_eq!(talker.expect_message().await.text, text);
            said.push(text);
        }
        (talker, said)
    });

    // `deaf` is pinged after 0.2 s of silence and dropped 0.3 s later: its uid goes offline.
    let offline = wait_offline(&mut asker, 2).await;
    let silence = offline - deaf_last_sent;
    assert!(
        silence >= ms(450),
        "{enc:?}: a WebSocket client dropped after only {silence:?} of silence \
         (ping 0.2 s + pong 0.3 s)"
    );

    let (mut alive, mut got) = alive.await.expect("alive task");
    let (_talker, said) = talker.await.expect("talker task");
    // The last tick may still have been on its way when the window closed.
    while got.len() < said.len() {
        got.push(alive.expect_message().await.text);
    }
    assert_eq!(got, said, "{enc:?}: room messages to the pinged client");
    alive.expect_quiet().await;
    asker.tell(1, "still there?").await;
    assert_eq!(alive.expect_message().await.text, "still there?");
    // A TCP connection is never pinged: silent as long, still online.
    asker.tell(3, "tcp?").await;
    assert_eq!(tcp_silent.expect_message().await.text, "tcp?");
    asker.expect_quiet().await;

    // The deaf client's socket is gone (what reached it before the drop may precede that).
    loop {
        match deaf.try_recv(TIMEOUT).await {
            Ok(Reply::Message(_)) => {}
            Ok(other) => panic!("{enc:?}: deaf: unexpected {other:?}"),
            Err(End::Closed { .. }) => break,
            Err(End::TimedOut) => panic!("{enc:?}: deaf client still connected"),
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_ping_keeps_a_reading_client_and_drops_a_deaf_one_json() {
    bounded(ws_keepalive(Enc::Json)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_ping_keeps_a_reading_client_and_drops_a_deaf_one_protobuf() {
    bounded(ws_keepalive(Enc::Protobuf)).await;
}

// ---------------------------------------------------------------------------------------------
// Regressions: bugs these tests found (lingering close, ping deadline, idle vs pongs), now fixed

/// Reads a WebSocket logged in as `uid` for `window` (tungstenite answers every ping while
/// polled). Ok with the pings seen if still open at the end; Err if the server dropped it.
async fn ws_answering_pings(
    enc: Enc,
    addr: SocketAddr,
    uid: u64,
    window: Duration,
) -> Result<usize, String> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/chat"), stream)
        .await
        .expect("WebSocket handshake");
    let login = encode(
        enc,
        &C2sUserLogin {
            token: token(uid),
            login_plat: 1,
        },
    );
    ws.send(WsMessage::Binary(login.into()))
        .await
        .expect("send login");
    let start = Instant::now();
    let until = start + window;
    let mut pings = 0;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return Ok(pings),
            Ok(Some(Ok(WsMessage::Ping(_)))) => pings += 1,
            Ok(Some(Ok(WsMessage::Binary(b)))) => match decode(enc, &b) {
                Ok(Reply::Login(l)) if l.ret == 1 => {}
                other => panic!("uid {uid}: unexpected {other:?}"),
            },
            Ok(end) => {
                return Err(format!(
                    "uid {uid} dropped after {:?} having seen {pings} pings (all answered): {end:?}",
                    start.elapsed()
                ));
            }
        }
    }
}

/// With `ws_pong_timeout` shorter than the sweeper's tick (a quarter of `ws_ping_interval`,
/// clamped to 50 ms..1 s), a client that answers every ping is dropped: the first tick that
/// finds it silent for `ws_ping_interval` often finds it silent for `ws_ping_interval +
/// ws_pong_timeout` too, and destroys it before any ping was sent. Clients logging in at
/// different phases of the tick: most are dropped, with 0 pings seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_ping_with_a_short_pong_timeout_keeps_clients_that_answer() {
    bounded(async {
        let enc = Enc::Json;
        let server = TestServer::start_with(enc, |c| {
            c.gate.ws_ping_interval = ms(1000);
            c.gate.ws_pong_timeout = ms(50);
        })
        .await;
        let mut clients = Vec::new();
        for uid in 1..=5 {
            let addr = server.ws;
            clients.push(tokio::spawn(ws_answering_pings(enc, addr, uid, ms(3000))));
            tokio::time::sleep(ms(50)).await;
        }
        let mut dropped = Vec::new();
        for c in clients {
            if let Err(why) = c.await.expect("client task") {
                dropped.push(why);
            }
        }
        assert!(
            dropped.is_empty(),
            "clients that answer pings were dropped:\n{}",
            dropped.join("\n")
        );
        server.shutdown().await;
    })
    .await;
}

/// After the rate-limit kick the gate shuts the socket's writing side and closes it while
/// the rest of the flood is still unread in the kernel: Linux then sends RST and discards
/// whatever output the peer's window had not taken yet. A client that reads a little slower
/// than the gate writes (here: a 4 KiB receive buffer, reading 0.3 s later, well within
/// `close_timeout`) loses the answers to its admitted messages and the kick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_kick_reaches_a_client_with_a_small_window() {
    bounded(async {
        const BURST: usize = 10;
        let enc = Enc::Json;
        let server = TestServer::start_with(enc, |c| {
            c.gate.max_msg_rate = BURST as u32;
            c.gate.max_msg_burst = BURST as u32;
        })
        .await;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = socket.connect(server.tcp).await.expect("connect");
        let frame = |p: Vec<u8>| {
            let mut f = u16::try_from(p.len()).unwrap().to_be_bytes().to_vec();
            f.extend(p);
            f
        };
        let mut hello = frame(encode(
            enc,
            &C2sUserLogin {
                token: token(1),
                login_plat: 1,
            },
        ));
        hello.extend(frame(encode(enc, &C2sUpdateWatchRoom { room_id: 5 })));
        s.write_all(&hello).await.unwrap();
        // The bucket refills (2 of 10 tokens taken).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let texts: Vec<String> = (0..3 * BURST)
            .map(|i| format!("{i:04} {}", "x".repeat(995)))
            .collect();
        let mut flood = Vec::new();
        for text in &texts {
            flood.extend(frame(encode(
                enc,
                &C2sMessage {
                    room_id: 5,
                    to_uid: 0,
                    text: text.clone(),
                },
            )));
        }
        s.write_all(&flood).await.unwrap();
        // A slow reader: it starts 0.3 s later (close_timeout is 5 s).
        tokio::time::sleep(ms(300)).await;
        let mut bytes = Vec::new();
        let read = tokio::time::timeout(TIMEOUT, s.read_to_end(&mut bytes))
            .await
            .expect("the server closes");
        let mut replies = Vec::new();
        let mut pos = 0;
        while pos + 2 <= bytes.len() {
            let len = usize::from(u16::from_be_bytes([bytes[pos], bytes[pos + 1]]));
            if pos + 2 + len > bytes.len() {
                break;
            }
            replies.push(decode(enc, &bytes[pos + 2..pos + 2 + len]).expect("decodable"));
            pos += 2 + len;
        }
        let summary: Vec<String> = replies
            .iter()
            .map(|r| match r {
                Reply::Message(m) => format!("S2C_Message {}", &m.text[..4]),
                other => format!("{other:?}"),
            })
            .collect();
        assert!(
            read.is_ok() && pos == bytes.len(),
            "the connection was reset ({read:?}) after {} whole replies: {summary:?}",
            replies.len()
        );
        assert_eq!(replies.len(), 2 + BURST + 1, "{summary:?}");
        assert!(
            matches!(&replies[replies.len() - 1], Reply::Kick(k) if k.reason == "rate limit"),
            "{summary:?}"
        );
        server.shutdown().await;
    })
    .await;
}

/// The gate's own keep-alive pings reset the idle clock: a WebSocket client (browsers and
/// tungstenite answer pings by themselves) that sends nothing of its own is never closed
/// as idle when `ws_ping_interval` < `idle_timeout`; with the defaults (ping every 30 s)
/// any `idle_timeout` over 30 s is off for WebSocket. A TCP client in the same silence is
/// kicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_applies_to_websocket_clients_that_only_answer_pings() {
    bounded(async {
        for enc in Enc::ALL {
            let server = TestServer::start_with(enc, |c| {
                c.gate.idle_timeout = ms(600);
                c.gate.ws_ping_interval = ms(200);
                c.gate.ws_pong_timeout = ms(300);
            })
            .await;
            for t in Transport::ALL {
                let mut c = server.login(t, 1).await;
                // try_recv keeps polling, so tungstenite answers the pings.
                match c.try_recv(TIMEOUT).await {
                    Ok(Reply::Kick(k)) => assert_eq!(k.reason, "idle"),
                    other => panic!(
                        "{enc:?}/{t:?}: silent for {TIMEOUT:?} with idle_timeout 0.6 s, got {other:?}"
                    ),
                }
                c.expect_closed().await;
            }
            server.shutdown().await;
        }
    })
    .await;
}
