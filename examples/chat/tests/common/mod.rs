//! A test client for the chat protocol that speaks the wire itself, and an in-process server
//! fixture.
//!
//! The client does its own framing (TCP: 2-byte big-endian length prefix; WebSocket: one
//! binary message per payload) and its own envelopes (JSON `{"Name":{...}}`; protobuf
//! `| id: u16 BE | body |` with the ids of the protocol table), so the tests check the wire,
//! not the server's own codec. Only the message structs (prost + serde derives) are shared.
//! The framing, the envelopes and the other helpers the library's tests need too are in
//! `longlink-testkit`.

#![allow(dead_code, unused_imports, unreachable_pub, missing_docs)]

pub mod client;
pub mod node;
pub mod process;
pub mod rolling;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use longlink_chat::msg::{
    C2sMessage, C2sTyping, C2sUpdateWatchRoom, C2sUserHeartBeat, C2sUserLogin, S2cError, S2cKick,
    S2cMessage, S2cRoomInfo, S2cTyping, S2cUpdateWatchRoom, S2cUserLogin,
};
use longlink_testkit::envelope;
use longlink_testkit::ws::{Ws, WsEnd, next_data, ws_over};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// How long one expected reply (or close) may take.
pub use longlink_testkit::STEP as TIMEOUT;
pub use longlink_testkit::{Framing, bounded, free_addr};

/// How long one whole test may take.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// The embedded default token secret.
pub const SECRET: &[u8] = b"longlink-dev-secret";
/// The embedded default `[chat] max_text_len`.
pub const MAX_TEXT_LEN: usize = 1024;
/// The embedded default `[gate] max_msg_len`.
pub const MAX_MSG_LEN: usize = 8192;

/// `S2C_Error.code` values (src/chat.rs), written down independently.
pub const ERR_NOT_LOGGED_IN: i32 = 1;
pub const ERR_TEXT_TOO_LONG: i32 = 2;
pub const ERR_NOT_ONLINE: i32 = 3;
pub const ERR_BAD_REQUEST: i32 = 4;
pub const ERR_TOO_FAST: i32 = 9;

/// Unix seconds now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Asserts a server timestamp is within a few seconds of now.
pub fn assert_near_now(ts: i64, what: &str) {
    let now = now_unix();
    assert!(
        (ts - now).abs() <= 5,
        "{what}: server time {ts} is not near now ({now})"
    );
}

/// A valid token for `uid` (an hour to live).
pub fn token(uid: u64) -> String {
    token_with(SECRET, uid, now_unix() + 3600)
}

/// A token with any secret and expiry.
pub fn token_with(secret: &[u8], uid: u64, exp: i64) -> String {
    longlink_chat::token::sign(secret, &longlink_chat::token::Claims { uid, exp })
}

/// How a client reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Ws,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::Tcp, Transport::Ws];

    /// The other one.
    pub fn other(self) -> Transport {
        match self {
            Transport::Tcp => Transport::Ws,
            Transport::Ws => Transport::Tcp,
        }
    }
}

/// The payload encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enc {
    Json,
    Protobuf,
}

impl Enc {
    pub const ALL: [Enc; 2] = [Enc::Json, Enc::Protobuf];

    /// The server setting for this encoding.
    pub fn config(self) -> longlink::Encoding {
        match self {
            Enc::Json => longlink::Encoding::Json,
            Enc::Protobuf => longlink::Encoding::Protobuf,
        }
    }
}

/// A chat message with its wire name and protobuf id (the protocol table).
pub trait Wire: prost::Message + serde::Serialize + Default {
    const NAME: &'static str;
    const ID: u16;
}

macro_rules! wire {
    ($($ty:ty => $name:literal, $id:literal;)*) => {
        $(impl Wire for $ty {
            const NAME: &'static str = $name;
            const ID: u16 = $id;
        })*
    };
}

wire! {
    C2sUserHeartBeat => "C2S_UserHeartBeat", 0;
    C2sUserLogin => "C2S_UserLogin", 1;
    S2cUserLogin => "S2C_UserLogin", 2;
    C2sUpdateWatchRoom => "C2S_UpdateWatchRoom", 3;
    S2cUpdateWatchRoom => "S2C_UpdateWatchRoom", 4;
    C2sMessage => "C2S_Message", 5;
    S2cMessage => "S2C_Message", 6;
    S2cKick => "S2C_Kick", 7;
    S2cError => "S2C_Error", 8;
    C2sTyping => "C2S_Typing", 9;
    S2cTyping => "S2C_Typing", 10;
    S2cRoomInfo => "S2C_RoomInfo", 11;
}

/// Whether a payload is one of the room's presence messages (`S2C_Typing`, `S2C_RoomInfo`),
/// in either encoding: a client that does not ask for them ([`Client::presence`]) skips them,
/// so tests written before them read what they always read.
pub fn is_presence(payload: &[u8]) -> bool {
    payload.starts_with(br#"{"S2C_Typing""#)
        || payload.starts_with(br#"{"S2C_RoomInfo""#)
        || payload.starts_with(&[0, 10])
        || payload.starts_with(&[0, 11])
}

/// Encodes one payload (no framing).
pub fn encode<M: Wire>(enc: Enc, msg: &M) -> Vec<u8> {
    match enc {
        Enc::Json => {
            let body = serde_json::to_value(msg).expect("message to JSON");
            assert!(body.is_object(), "{} body is not an object", M::NAME);
            envelope::json(M::NAME, body)
        }
        Enc::Protobuf => envelope::protobuf(M::ID, &msg.encode_to_vec()),
    }
}

/// Something the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    HeartBeat(C2sUserHeartBeat),
    Login(S2cUserLogin),
    Watch(S2cUpdateWatchRoom),
    Message(S2cMessage),
    Kick(S2cKick),
    Error(S2cError),
    Typing(S2cTyping),
    RoomInfo(S2cRoomInfo),
}

fn json_body<M: Wire + serde::de::DeserializeOwned>(body: Value) -> Result<M, String> {
    if !body.is_object() {
        return Err(format!("{} body is not an object: {body}", M::NAME));
    }
    serde_json::from_value(body).map_err(|e| format!("{} body: {e}", M::NAME))
}

fn proto_body<M: Wire>(body: &[u8]) -> Result<M, String> {
    M::decode(body).map_err(|e| format!("{} body: {e}", M::NAME))
}

/// Decodes one payload the server sent. Anything but a server-to-client message (or the
/// heartbeat answer) is an error.
pub fn decode(enc: Enc, payload: &[u8]) -> Result<Reply, String> {
    match enc {
        Enc::Json => {
            let (name, body) = envelope::open_json(payload)?;
            Ok(match name.as_str() {
                "C2S_UserHeartBeat" => Reply::HeartBeat(json_body(body)?),
                "S2C_UserLogin" => Reply::Login(json_body(body)?),
                "S2C_UpdateWatchRoom" => Reply::Watch(json_body(body)?),
                "S2C_Message" => Reply::Message(json_body(body)?),
                "S2C_Kick" => Reply::Kick(json_body(body)?),
                "S2C_Error" => Reply::Error(json_body(body)?),
                "S2C_Typing" => Reply::Typing(json_body(body)?),
                "S2C_RoomInfo" => Reply::RoomInfo(json_body(body)?),
                other => return Err(format!("unexpected message name {other:?}")),
            })
        }
        Enc::Protobuf => {
            let (id, body) = envelope::open_protobuf(payload)?;
            Ok(match id {
                0 => Reply::HeartBeat(proto_body(body)?),
                2 => Reply::Login(proto_body(body)?),
                4 => Reply::Watch(proto_body(body)?),
                6 => Reply::Message(proto_body(body)?),
                7 => Reply::Kick(proto_body(body)?),
                8 => Reply::Error(proto_body(body)?),
                10 => Reply::Typing(proto_body(body)?),
                11 => Reply::RoomInfo(proto_body(body)?),
                other => return Err(format!("unexpected message id {other}")),
            })
        }
    }
}

/// Why no payload came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The server closed the connection (a WebSocket close code, if one came).
    Closed { ws_code: Option<u16>, why: String },
    /// Nothing came in time.
    TimedOut,
}

enum Io {
    Tcp(TcpStream),
    Ws(Box<Ws>),
}

/// One connection to the chat server.
pub struct Client {
    pub transport: Transport,
    pub enc: Enc,
    io: Io,
    /// TCP bytes read but not yet framed.
    buf: Vec<u8>,
    /// Whether the last WebSocket payload came in a text message.
    pub last_was_text: bool,
    /// The room this client watches (kept by [`Client::watch`]), for [`Client::expect_quiet`].
    pub room: u64,
    /// The uid after a successful [`Client::login`].
    pub uid: Option<u64>,
    /// Whether reads return `S2C_Typing` and `S2C_RoomInfo` (off: they are skipped).
    pub presence: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.transport)
            .field("enc", &self.enc)
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects (and for WebSocket, does the handshake) within [`TIMEOUT`].
    pub async fn connect(transport: Transport, enc: Enc, addr: SocketAddr) -> Client {
        Self::try_connect(transport, enc, addr)
            .await
            .unwrap_or_else(|e| panic!("cannot connect {transport:?} to {addr}: {e}"))
    }

    /// Connects, or says why not.
    pub async fn try_connect(
        transport: Transport,
        enc: Enc,
        addr: SocketAddr,
    ) -> Result<Client, String> {
        let work = async {
            let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            Client::over(stream, transport, enc, addr).await
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .map_err(|_| "timed out".to_owned())?
    }

    /// Sends one message.
    pub async fn send<M: Wire>(&mut self, msg: &M) {
        let payload = encode(self.enc, msg);
        self.send_payload(&payload)
            .await
            .unwrap_or_else(|e| panic!("{self:?}: cannot send {}: {e}", M::NAME));
    }

    /// Sends one payload: a TCP frame with a 2-byte big-endian length, or one binary
    /// WebSocket message.
    pub async fn send_payload(&mut self, payload: &[u8]) -> Result<(), String> {
        match &mut self.io {
            Io::Tcp(stream) => write_all(stream, &tcp_frame(payload)?).await,
            Io::Ws(ws) => ws_send(&mut **ws, WsMessage::Binary(payload.to_vec().into())).await,
        }
    }

    /// Sends a text payload: a TCP frame, or one WebSocket text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), String> {
        match &mut self.io {
            Io::Tcp(_) => self.send_payload(text.as_bytes()).await,
            Io::Ws(ws) => ws_send(&mut **ws, WsMessage::Text(text.into())).await,
        }
    }

    /// Writes bytes to the TCP socket as they are (no framing). TCP only.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.io {
            Io::Tcp(stream) => write_all(stream, bytes).await,
            Io::Ws(_) => panic!("send_raw is for TCP"),
        }
    }

    /// Closes the writing half (TCP FIN, or a WebSocket close frame).
    pub async fn shutdown_write(&mut self) {
        match &mut self.io {
            Io::Tcp(stream) => {
                let _ = stream.shutdown().await;
            }
            Io::Ws(ws) => {
                let _ = WebSocketStream::close(&mut **ws, None).await;
            }
        }
    }

    /// The next payload within `within` (presence messages skipped unless
    /// [`Client::presence`]).
    pub async fn recv_payload_within(&mut self, within: Duration) -> Result<Vec<u8>, End> {
        let deadline = Instant::now() + within;
        loop {
            let payload = match &mut self.io {
                Io::Tcp(stream) => recv_tcp(stream, &mut self.buf, deadline).await?,
                Io::Ws(ws) => {
                    let (payload, text) = recv_ws(&mut **ws, deadline).await?;
                    self.last_was_text = text;
                    payload
                }
            };
            if self.presence || !is_presence(&payload) {
                return Ok(payload);
            }
        }
    }

    /// The next payload; panics if none comes within [`TIMEOUT`].
    pub async fn recv_payload(&mut self) -> Vec<u8> {
        match self.recv_payload_within(TIMEOUT).await {
            Ok(p) => p,
            Err(end) => panic!("{self:?}: expected a message, got {end:?}"),
        }
    }

    /// The next message; panics on a close, a timeout or an undecodable payload.
    pub async fn recv(&mut self) -> Reply {
        let payload = self.recv_payload().await;
        decode(self.enc, &payload).unwrap_or_else(|e| panic!("{self:?}: {e}"))
    }

    /// The next message, or how the stream ended.
    pub async fn try_recv(&mut self, within: Duration) -> Result<Reply, End> {
        let payload = self.recv_payload_within(within).await?;
        Ok(decode(self.enc, &payload).unwrap_or_else(|e| panic!("{self:?}: {e}")))
    }

    /// Asserts the server closes the connection (within [`TIMEOUT`]) without sending anything
    /// more. Returns the WebSocket close code, if any.
    pub async fn expect_closed(&mut self) -> Option<u16> {
        match self.recv_payload_within(TIMEOUT).await {
            Err(End::Closed { ws_code, .. }) => ws_code,
            Err(End::TimedOut) => panic!("{self:?}: expected a close, the connection stayed open"),
            Ok(payload) => panic!(
                "{self:?}: expected a close, got {:?}",
                decode(self.enc, &payload)
                    .map_err(|_| String::from_utf8_lossy(&payload).into_owned())
            ),
        }
    }

    /// Sends a heartbeat and returns the server's ptime (asserted near now).
    pub async fn heartbeat(&mut self) -> i64 {
        self.send(&C2sUserHeartBeat { ptime: now_unix() }).await;
        match self.recv().await {
            Reply::HeartBeat(hb) => {
                assert_near_now(hb.ptime, "heartbeat");
                hb.ptime
            }
            other => panic!("{self:?}: expected a heartbeat answer, got {other:?}"),
        }
    }

    /// Logs in with `token` and returns the answer.
    pub async fn login(&mut self, token: &str) -> S2cUserLogin {
        self.send(&C2sUserLogin {
            token: token.to_owned(),
            login_plat: 1,
        })
        .await;
        match self.recv().await {
            Reply::Login(login) => {
                if login.ret == 1 {
                    self.uid = Some(login.uid);
                }
                login
            }
            other => panic!("{self:?}: expected S2C_UserLogin, got {other:?}"),
        }
    }

    /// Logs in as `uid` and asserts success.
    pub async fn login_uid(&mut self, uid: u64) {
        let answer = self.login(&token(uid)).await;
        assert_eq!(
            answer.ret, 1,
            "{self:?}: login as {uid} refused: {answer:?}"
        );
        assert_eq!(answer.uid, uid, "{self:?}: login answer names another uid");
    }

    /// Watches `room` and returns the online count.
    pub async fn watch(&mut self, room: u64) -> u32 {
        self.send(&C2sUpdateWatchRoom { room_id: room }).await;
        match self.recv().await {
            Reply::Watch(w) => {
                assert_eq!(w.room_id, room, "{self:?}: watch confirmed another room");
                self.room = room;
                w.online
            }
            other => panic!("{self:?}: expected S2C_UpdateWatchRoom, got {other:?}"),
        }
    }

    /// Watches `room` again and again until it has `online` watchers (close events reach
    /// the server asynchronously), within [`TIMEOUT`].
    pub async fn watch_until(&mut self, room: u64, online: u32) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let now_online = self.watch(room).await;
            if now_online == online {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{self:?}: room {room} still has {now_online} watchers, expected {online}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Says `text` to `room`.
    pub async fn say(&mut self, room: u64, text: &str) {
        self.send(&C2sMessage {
            room_id: room,
            to_uid: 0,
            text: text.to_owned(),
        })
        .await;
    }

    /// Says `text` to `uid` privately.
    pub async fn tell(&mut self, uid: u64, text: &str) {
        self.send(&C2sMessage {
            room_id: 0,
            to_uid: uid,
            text: text.to_owned(),
        })
        .await;
    }

    /// The next message must be an `S2C_Message`.
    pub async fn expect_message(&mut self) -> S2cMessage {
        match self.recv().await {
            Reply::Message(m) => {
                assert_near_now(m.ts, "S2C_Message.ts");
                m
            }
            other => panic!("{self:?}: expected S2C_Message, got {other:?}"),
        }
    }

    /// The next message must be `S2C_Error` with `code`.
    pub async fn expect_error(&mut self, code: i32) -> S2cError {
        match self.recv().await {
            Reply::Error(e) => {
                assert_eq!(e.code, code, "{self:?}: wrong error code in {e:?}");
                e
            }
            other => panic!("{self:?}: expected S2C_Error {code}, got {other:?}"),
        }
    }

    /// Asserts nothing is queued for this client: sends a request that the chat module
    /// answers (watch the current room again, which changes nothing) and checks that the
    /// answer is the next thing to arrive. Anything the module wrote to this client before is
    /// ahead of it in the queue.
    pub async fn expect_quiet(&mut self) {
        self.send(&C2sUpdateWatchRoom { room_id: self.room }).await;
        let reply = self.recv().await;
        match (&reply, self.uid) {
            (Reply::Watch(w), Some(_)) if w.room_id == self.room => {}
            (Reply::Error(e), None) if e.code == ERR_NOT_LOGGED_IN => {}
            _ => panic!("{self:?}: expected nothing pending, got {reply:?}"),
        }
    }
}

/// One TCP frame: the 2-byte big-endian length, then `payload`.
fn tcp_frame(payload: &[u8]) -> Result<Vec<u8>, String> {
    Framing::default()
        .try_frame(payload)
        .ok_or_else(|| "payload over 65535".to_owned())
}

async fn write_all<W: AsyncWrite + Unpin>(stream: &mut W, bytes: &[u8]) -> Result<(), String> {
    tokio::time::timeout(TIMEOUT, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| "write timed out".to_owned())?
    .map_err(|e| e.to_string())
}

async fn ws_send<S>(ws: &mut S, msg: WsMessage) -> Result<(), String>
where
    S: Sink<WsMessage, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    tokio::time::timeout(TIMEOUT, ws.send(msg))
        .await
        .map_err(|_| "write timed out".to_owned())?
        .map_err(|e| e.to_string())
}

/// The next TCP frame's payload from `stream` by `deadline`; `buf` holds what was read but
/// not yet framed.
async fn recv_tcp<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<Vec<u8>, End> {
    loop {
        if let Some(payload) = Framing::default().take(buf) {
            return Ok(payload);
        }
        // read_buf is cancel safe: nothing read is lost on a timeout.
        match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Err(_) => return Err(End::TimedOut),
            Ok(Ok(0)) => {
                return Err(End::Closed {
                    ws_code: None,
                    why: if buf.is_empty() {
                        "eof".into()
                    } else {
                        format!("eof with {} bytes of a partial frame", buf.len())
                    },
                });
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(End::Closed {
                    ws_code: None,
                    why: format!("read error: {e}"),
                });
            }
        }
    }
}

/// The next WebSocket data message from `ws` by `deadline` (pings and pongs skipped): its
/// payload, and whether it came as text.
async fn recv_ws<S>(ws: &mut S, deadline: Instant) -> Result<(Vec<u8>, bool), End>
where
    S: Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let closed = |ws_code, why| Err(End::Closed { ws_code, why });
    match next_data(ws, deadline).await {
        None => Err(End::TimedOut),
        Some(Ok(WsMessage::Binary(b))) => Ok((b.to_vec(), false)),
        Some(Ok(WsMessage::Text(t))) => Ok((t.as_bytes().to_vec(), true)),
        Some(Ok(other)) => closed(None, format!("unexpected frame {other:?}")),
        Some(Err(WsEnd::Close(code, reason))) => {
            closed(code, format!("close frame {code:?} {reason:?}"))
        }
        Some(Err(WsEnd::Error(e))) => closed(None, format!("read error: {e}")),
        Some(Err(WsEnd::Eof)) => closed(None, "stream ended".into()),
    }
}

/// The sending half of a [`Client`] whose reading runs in another task.
pub enum Tx {
    Tcp(OwnedWriteHalf),
    Ws(SplitSink<Ws, WsMessage>),
}

/// The receiving half of a [`Client`].
pub enum Rx {
    Tcp(OwnedReadHalf, Vec<u8>),
    Ws(SplitStream<Ws>),
}

impl Client {
    /// Splits the connection so that one task can send while another reads.
    pub fn into_split(self) -> (Tx, Rx) {
        match self.io {
            Io::Tcp(stream) => {
                let (r, w) = stream.into_split();
                (Tx::Tcp(w), Rx::Tcp(r, self.buf))
            }
            Io::Ws(ws) => {
                let (sink, stream) = (*ws).split();
                (Tx::Ws(sink), Rx::Ws(stream))
            }
        }
    }
}

impl Tx {
    /// Sends one payload, as [`Client::send_payload`] does.
    pub async fn send(&mut self, payload: Vec<u8>) -> Result<(), String> {
        match self {
            Tx::Tcp(w) => write_all(w, &tcp_frame(&payload)?).await,
            Tx::Ws(sink) => ws_send(sink, WsMessage::Binary(payload.into())).await,
        }
    }
}

impl Rx {
    /// The next payload within `within`, as [`Client::recv_payload_within`] reads it
    /// (presence messages skipped).
    pub async fn recv(&mut self, within: Duration) -> Result<Vec<u8>, End> {
        let deadline = Instant::now() + within;
        loop {
            let payload = match self {
                Rx::Tcp(r, buf) => recv_tcp(r, buf, deadline).await?,
                Rx::Ws(stream) => recv_ws(stream, deadline).await?.0,
            };
            if !is_presence(&payload) {
                return Ok(payload);
            }
        }
    }
}

/// A chat server running in this process on ephemeral ports.
pub struct TestServer {
    pub enc: Enc,
    pub tcp: SocketAddr,
    pub ws: SocketAddr,
    pub stop: longlink::shutdown::StopHandle,
    /// `/metrics` and `/healthz` (an ephemeral port).
    pub admin: Option<SocketAddr>,
    /// The admin console, if the tweak turned it on (`"127.0.0.1:0"`).
    pub console: Option<SocketAddr>,
    task: Option<tokio::task::JoinHandle<Result<(), longlink::app::AppError>>>,
}

impl TestServer {
    /// The embedded default configuration with ephemeral ports and `enc`, and no
    /// `[chat] max_msgs_per_sec` (many tests say things in bursts; the limit's own tests set
    /// it).
    pub async fn start(enc: Enc) -> TestServer {
        Self::start_with(enc, |_| {}).await
    }

    /// Like [`TestServer::start`], with `tweak` applied to the configuration.
    pub async fn start_with(
        enc: Enc,
        tweak: impl FnOnce(&mut longlink_chat::Config),
    ) -> TestServer {
        let mut config = longlink_chat::Config::load(None).expect("embedded config loads");
        config.gate.tcp_addr = "127.0.0.1:0".into();
        config.gate.ws_addr = "127.0.0.1:0".into();
        config.gate.encoding = enc.config();
        // Servers run in parallel: not the fixed default port.
        config.admin.addr = "127.0.0.1:0".into();
        config.chat.max_msgs_per_sec = 0;
        tweak(&mut config);
        let server = longlink_chat::build(config).await.expect("server builds");
        let tcp = server.tcp_addr.expect("TCP listener");
        let ws = server.ws_addr.expect("WebSocket listener");
        let (admin, console) = (server.admin_addr, server.console_addr);
        let stop = server.stop.clone();
        let app = server.app.handle_signals(false);
        let task = tokio::spawn(app.run());
        TestServer {
            enc,
            tcp,
            ws,
            stop,
            admin,
            console,
            task: Some(task),
        }
    }

    /// The address of a transport.
    pub fn addr(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Tcp => self.tcp,
            Transport::Ws => self.ws,
        }
    }

    /// A new connection.
    pub async fn connect(&self, transport: Transport) -> Client {
        Client::connect(transport, self.enc, self.addr(transport)).await
    }

    /// A new WebSocket connection upgraded on `path` (`/chat?token=...`).
    pub async fn connect_ws_path(&self, path: &str) -> Client {
        let stream = TcpStream::connect(self.ws).await.expect("connect");
        Client::over_path(stream, Transport::Ws, self.enc, self.ws, path)
            .await
            .expect("upgrade")
    }

    /// A new connection logged in as `uid`.
    pub async fn login(&self, transport: Transport, uid: u64) -> Client {
        let mut c = self.connect(transport).await;
        c.login_uid(uid).await;
        c
    }

    /// Stops the server and asserts it shuts down cleanly in time.
    pub async fn shutdown(mut self) {
        self.stop.stop();
        let task = self.task.take().expect("running");
        longlink_testkit::stops_within(Duration::from_secs(15), task).await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// A minimal protobuf reader for checking bytes by hand: (field number, value) pairs, where a
/// varint is `Varint` and a length-delimited field is `Bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PbValue {
    Varint(u64),
    Bytes(Vec<u8>),
}

/// Reads one varint at `*pos`.
pub fn read_varint(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = bytes[*pos];
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return value;
        }
    }
    panic!("varint too long");
}

/// Appends a varint.
pub fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Parses a protobuf body with varint and length-delimited fields only.
pub fn pb_fields(body: &[u8]) -> Vec<(u32, PbValue)> {
    let mut pos = 0;
    let mut fields = Vec::new();
    while pos < body.len() {
        let key = read_varint(body, &mut pos);
        let field = (key >> 3) as u32;
        match key & 7 {
            0 => fields.push((field, PbValue::Varint(read_varint(body, &mut pos)))),
            2 => {
                let len = read_varint(body, &mut pos) as usize;
                fields.push((field, PbValue::Bytes(body[pos..pos + len].to_vec())));
                pos += len;
            }
            wt => panic!("unexpected wire type {wt} in {body:?}"),
        }
    }
    fields
}

impl Client {
    /// Like [`Client::try_connect`], with the client's socket bound to `local_ip` (port 0)
    /// first, to connect from another loopback address (127.0.0.2, ...).
    pub async fn try_connect_from(
        transport: Transport,
        enc: Enc,
        local_ip: std::net::IpAddr,
        addr: SocketAddr,
    ) -> Result<Client, String> {
        let work = async {
            let stream = longlink_testkit::connect_from(local_ip, addr)
                .await
                .map_err(|e| format!("connect from {local_ip}: {e}"))?;
            Client::over(stream, transport, enc, addr).await
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .map_err(|_| "timed out".to_owned())?
    }
}

impl Client {
    /// Speaks `transport` over a connected socket (the WebSocket handshake included).
    pub async fn over(
        stream: TcpStream,
        transport: Transport,
        enc: Enc,
        addr: SocketAddr,
    ) -> Result<Client, String> {
        Client::over_path(stream, transport, enc, addr, "/chat").await
    }

    /// Like [`Client::over`], with a WebSocket upgrade for `path` (`/chat?token=...`).
    pub async fn over_path(
        stream: TcpStream,
        transport: Transport,
        enc: Enc,
        addr: SocketAddr,
        path: &str,
    ) -> Result<Client, String> {
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let io = match transport {
            Transport::Tcp => Io::Tcp(stream),
            Transport::Ws => {
                let ws = ws_over(stream, addr, path)
                    .await
                    .map_err(|e| format!("WebSocket handshake: {e}"))?;
                Io::Ws(Box::new(ws))
            }
        };
        Ok(Client {
            transport,
            enc,
            io,
            buf: Vec::new(),
            last_was_text: false,
            room: 0,
            uid: None,
            presence: false,
        })
    }
}
