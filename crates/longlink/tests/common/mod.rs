//! Shared helpers for the black-box gate tests: a small test protocol, a server that runs it
//! on real loopback sockets, and hand-written TCP / WebSocket clients.
//!
//! The framing and payload encoders here are written from the wire specification, not with
//! the library's own codec, so the tests check the bytes independently; what the chat's tests
//! need too (framing, envelopes, bounds, the WebSocket and HTTP clients) is in
//! `longlink-testkit`, re-exported here.

#![allow(dead_code, unused_imports, unreachable_pub, missing_docs)]

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use longlink::agent::Transport;
use longlink::app::AppError;
use longlink::gate::{GateBuilder, GateHandle};
use longlink::shutdown::StopHandle;
use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Module, ModuleRef, Processor};
use longlink_testkit::envelope;
use prost::Message as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub mod pinged;
pub mod running;

pub use longlink_testkit::http::{http_raw, status_line};
pub use longlink_testkit::ws::{
    Ws, WsEnd, next_data, upgrade_request, upgrade_status, ws_connect, ws_over,
};
pub use longlink_testkit::{Framing, STEP, bounded, connect_from, stops_within, wait_for};
pub use running::{Running, run};

/// This process's resident memory, in bytes (Linux's `VmRSS`): the memory bounds of the
/// hostile-client tests (a test and its server share the process).
pub fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Default bound on a whole test body.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// The test protocol. Protobuf ids follow the registration order in `processor`.

/// id 0: routed to the module, written back unchanged.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub struct Echo {
    #[prost(string, tag = "1")]
    pub text: String,
}

/// id 1: routed, written back unchanged (for the `Int32Value{150}` golden bytes).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub struct Num {
    #[prost(int32, tag = "1")]
    pub value: i32,
}

/// id 2: the server writes `n` `Echo` messages of `size` bytes of text from a background
/// task, yielding between writes, and records a [`FloodResult`] in the module state.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub struct Flood {
    #[prost(uint32, tag = "1")]
    pub n: u32,
    #[prost(uint32, tag = "2")]
    pub size: u32,
}

/// id 3: the routed handler panics.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub struct Panic {}

/// id 4: the sync handler (on the reader) panics.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub struct SyncPanic {}

/// id 5: the routed handler writes `n` echoes ("bye0", "bye1", ...) then calls `close`.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub struct CloseAfter {
    #[prost(uint32, tag = "1")]
    pub n: u32,
}

/// id 6: the routed handler writes `n` echoes then calls `destroy`.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub struct DestroyAfter {
    #[prost(uint32, tag = "1")]
    pub n: u32,
}

/// id 7: the routed handler tries to write an `Echo` with `size` bytes of text, then writes
/// back an `Echo` whose text is `"ok"` or `"err:<error>"`.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub struct TooBig {
    #[prost(uint32, tag = "1")]
    pub size: u32,
}

/// id 8: the sync handler (on the reader) writes back an `Echo` "sync:<text>".
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub struct SyncEcho {
    #[prost(string, tag = "1")]
    pub text: String,
}

pub const ID_ECHO: u16 = 0;
pub const ID_NUM: u16 = 1;
pub const ID_FLOOD: u16 = 2;
pub const ID_PANIC: u16 = 3;
pub const ID_SYNC_PANIC: u16 = 4;
pub const ID_CLOSE_AFTER: u16 = 5;
pub const ID_DESTROY_AFTER: u16 = 6;
pub const ID_TOO_BIG: u16 = 7;
pub const ID_SYNC_ECHO: u16 = 8;
/// One past the last registered id.
pub const ID_COUNT: u16 = 9;

/// What the module saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ev {
    pub conn: u64,
    pub transport: Transport,
    pub kind: String,
}

/// What a flood did on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodResult {
    pub conn: u64,
    /// Writes that returned Ok.
    pub sent: u32,
    /// Writes that returned an error.
    pub failed: u32,
    /// The first error, as text.
    pub first_error: Option<String>,
    /// Whether the agent was still open after the flood.
    pub open_after: bool,
    /// `agent.dropped()` after the flood.
    pub dropped: u64,
}

/// The test module's state.
#[derive(Debug, Default)]
pub struct State {
    pub events: Vec<Ev>,
    pub floods: Vec<FloodResult>,
    pub routed: u64,
    /// A copy of `events` readable after the module has stopped.
    pub log: Arc<Mutex<Vec<Ev>>>,
}

impl State {
    fn record(&mut self, e: Ev) {
        self.log.lock().unwrap().push(e.clone());
        self.events.push(e);
    }
}

fn ev(agent: &Agent, kind: impl Into<String>) -> Ev {
    Ev {
        conn: agent.id(),
        transport: agent.transport(),
        kind: kind.into(),
    }
}

/// The processor for the test protocol, routed to `m`.
pub fn processor(encoding: Encoding, m: &ModuleRef<State>) -> Processor {
    let mut p = Processor::new(encoding);
    p.register::<Echo>().unwrap();
    p.register::<Num>().unwrap();
    p.register::<Flood>().unwrap();
    p.register::<Panic>().unwrap();
    p.register::<SyncPanic>().unwrap();
    p.register::<CloseAfter>().unwrap();
    p.register::<DestroyAfter>().unwrap();
    p.register::<TooBig>().unwrap();
    p.register::<SyncEcho>().unwrap();

    p.route(m, |ctx: &mut Ctx<State>, msg: Echo, agent: &Agent| {
        ctx.routed += 1;
        ctx.record(ev(agent, format!("msg:{}", msg.text)));
        let _ = agent.write(&msg);
    })
    .unwrap();
    p.route(m, |_ctx: &mut Ctx<State>, msg: Num, agent: &Agent| {
        let _ = agent.write(&msg);
    })
    .unwrap();
    p.route(m, |ctx: &mut Ctx<State>, msg: Flood, agent: &Agent| {
        let agent = agent.clone();
        let me = ctx.module_ref();
        tokio::spawn(async move {
            let payload = Echo {
                text: "x".repeat(msg.size as usize),
            };
            let encoded = agent.codec().encode(&payload).unwrap();
            let mut r = FloodResult {
                conn: agent.id(),
                sent: 0,
                failed: 0,
                first_error: None,
                open_after: true,
                dropped: 0,
            };
            for _ in 0..msg.n {
                match agent.write_encoded(&encoded) {
                    Ok(()) => r.sent += 1,
                    Err(e) => {
                        r.failed += 1;
                        r.first_error.get_or_insert_with(|| e.to_string());
                        if !agent.is_open() {
                            break;
                        }
                    }
                }
                tokio::task::yield_now().await;
            }
            r.open_after = agent.is_open();
            r.dropped = agent.dropped();
            let _ = me.cast(move |ctx| ctx.floods.push(r)).await;
        });
    })
    .unwrap();
    p.route(m, |_ctx: &mut Ctx<State>, _msg: Panic, _agent: &Agent| {
        panic!("routed handler panics on purpose");
    })
    .unwrap();
    p.handle::<SyncPanic, _>(|_msg, _agent| panic!("sync handler panics on purpose"))
        .unwrap();
    p.route(
        m,
        |_ctx: &mut Ctx<State>, msg: CloseAfter, agent: &Agent| {
            for i in 0..msg.n {
                let _ = agent.write(&Echo {
                    text: format!("bye{i}"),
                });
            }
            agent.close();
        },
    )
    .unwrap();
    p.route(
        m,
        |_ctx: &mut Ctx<State>, msg: DestroyAfter, agent: &Agent| {
            for i in 0..msg.n {
                let _ = agent.write(&Echo {
                    text: format!("gone{i}"),
                });
            }
            agent.destroy();
        },
    )
    .unwrap();
    p.route(m, |_ctx: &mut Ctx<State>, msg: TooBig, agent: &Agent| {
        let big = Echo {
            text: "y".repeat(msg.size as usize),
        };
        let text = match agent.write(&big) {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("err:{e}"),
        };
        let _ = agent.write(&Echo { text });
    })
    .unwrap();
    p.handle::<SyncEcho, _>(|msg, agent| {
        let _ = agent.write(&Echo {
            text: format!("sync:{}", msg.text),
        });
    })
    .unwrap();
    p
}

/// A running test server.
pub struct Server {
    pub tcp: SocketAddr,
    pub ws: SocketAddr,
    pub gate: GateHandle,
    pub module: ModuleRef<State>,
    pub stop: StopHandle,
    pub app: JoinHandle<Result<(), AppError>>,
    pub encoding: Encoding,
    /// Every event the module recorded, readable after it stopped.
    pub log: Arc<Mutex<Vec<Ev>>>,
}

/// A config on loopback with both listeners on port 0.
pub fn config(encoding: Encoding) -> GateConfig {
    GateConfig {
        tcp_addr: "127.0.0.1:0".into(),
        ws_addr: "127.0.0.1:0".into(),
        encoding,
        ..GateConfig::default()
    }
}

/// Starts the test protocol behind a gate with `config`.
pub async fn start(config: GateConfig) -> Server {
    start_with(config, |gate| gate).await
}

/// Like [`start`], with `tweak` applied to the gate builder (e.g. an `on_http` or
/// `on_goodbye` hook; see [`say_goodbye`]).
pub async fn start_with(
    config: GateConfig,
    tweak: impl FnOnce(GateBuilder) -> GateBuilder,
) -> Server {
    let encoding = config.encoding;
    let state = State::default();
    let log = Arc::clone(&state.log);
    let module = Module::new("test", state);
    let mref = module.module_ref();
    let builder = Gate::builder(config, processor(encoding, &mref))
        .on_new_agent(&mref, |ctx: &mut Ctx<State>, agent: &Agent| {
            ctx.record(ev(agent, "new"));
        })
        .on_close_agent(&mref, |ctx: &mut Ctx<State>, agent: &Agent| {
            ctx.record(ev(agent, "close"));
        });
    let gate = tweak(builder).bind().await.expect("gate binds");
    let tcp = gate.tcp_addr().expect("tcp listener");
    let ws = gate.ws_addr().expect("ws listener");
    let handle = gate.handle();
    let app = App::new()
        .module(module)
        .gate(gate)
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(5));
    let stop = app.stop_handle();
    let app = tokio::spawn(app.run());
    Server {
        tcp,
        ws,
        gate: handle,
        module: mref,
        stop,
        app,
        encoding,
        log,
    }
}

impl Server {
    /// Stops the app and waits for it to finish.
    pub async fn shutdown(self) {
        self.stop.stop();
        stops_within(STEP * 2, self.app).await;
    }

    /// The module's event log.
    pub async fn events(&self) -> Vec<Ev> {
        self.module
            .call(STEP, |ctx| ctx.events.clone())
            .await
            .expect("module answers")
    }

    /// The module's flood results.
    pub async fn floods(&self) -> Vec<FloodResult> {
        self.module
            .call(STEP, |ctx| ctx.floods.clone())
            .await
            .expect("module answers")
    }

    /// Waits up to `within` until `n` floods have finished; returns their results.
    pub async fn wait_floods(&self, n: usize, within: Duration) -> Vec<FloodResult> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let floods = self.floods().await;
            if floods.len() >= n {
                return floods;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} floods finished within {within:?}",
                floods.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `gate.connections()` is `n`.
    pub async fn wait_connections(&self, n: usize) {
        let gate = self.gate.clone();
        wait_for(&format!("connections() == {n}"), || {
            let gate = gate.clone();
            async move { gate.connections() == n }
        })
        .await;
    }

    /// A TCP client with the default 2-byte big-endian framing.
    pub async fn tcp_client(&self) -> TcpClient {
        TcpClient::connect(self.tcp, Framing::default(), Wire(self.encoding)).await
    }
}

/// An `on_goodbye` hook for [`start_with`]: the gate's goodbye is an `Echo` whose text is
/// `"goodbye:<reason>"` (`"goodbye:idle"`, `"goodbye:rate limit"`, ...).
pub fn say_goodbye(gate: GateBuilder) -> GateBuilder {
    gate.on_goodbye(|agent, why| {
        let _ = agent.write(&Echo {
            text: format!("goodbye:{}", why.reason()),
        });
    })
}

/// The module's events for connection `conn`, in order (`"new"`, `"msg:<text>"`, `"close"`).
pub fn kinds_of(events: &[Ev], conn: u64) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.conn == conn)
        .map(|e| e.kind.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Payloads.

/// The payload encoding, client side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire(pub Encoding);

impl Wire {
    /// Encodes a message as `{"name":body}` or `| id BE | body |`.
    pub fn encode<T: Serialize + prost::Message>(&self, name: &str, id: u16, msg: &T) -> Vec<u8> {
        match self.0 {
            Encoding::Json => envelope::json(name, serde_json::to_value(msg).unwrap()),
            Encoding::Protobuf => envelope::protobuf(id, &msg.encode_to_vec()),
        }
    }

    pub fn echo(&self, text: &str) -> Vec<u8> {
        self.encode("Echo", ID_ECHO, &Echo { text: text.into() })
    }

    /// The text of an `Echo` payload; panics on anything else.
    pub fn decode_echo(&self, payload: &[u8]) -> String {
        match self.0 {
            Encoding::Json => {
                let (name, body) = envelope::open_json(payload).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(name, "Echo", "not an Echo: {body}");
                serde_json::from_value::<Echo>(body).unwrap().text
            }
            Encoding::Protobuf => {
                let (id, body) = envelope::open_protobuf(payload).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(id, ID_ECHO, "not an Echo");
                Echo::decode(body).unwrap().text
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TCP, with [`Framing`] (from the testkit).

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Eof,
    Reset,
}

/// A raw TCP client speaking the length-prefixed framing.
pub struct TcpClient {
    pub stream: TcpStream,
    pub framing: Framing,
    pub wire: Wire,
}

impl TcpClient {
    pub async fn connect(addr: SocketAddr, framing: Framing, wire: Wire) -> TcpClient {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        TcpClient {
            stream,
            framing,
            wire,
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    pub async fn send(&mut self, payload: &[u8]) {
        let frame = self.framing.frame(payload);
        self.send_raw(&frame).await;
    }

    /// Reads exactly `n` raw bytes.
    pub async fn recv_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        tokio::time::timeout(STEP, self.stream.read_exact(&mut buf))
            .await
            .expect("reply in time")
            .expect("read");
        buf
    }

    /// Reads one frame's payload; `Err` when the connection ended first.
    pub async fn try_recv(&mut self) -> Result<Vec<u8>, Ended> {
        let mut h = vec![0; self.framing.len];
        read_exact_or_end(&mut self.stream, &mut h).await?;
        let n = self.framing.parse_len(&h);
        let mut payload = vec![0; n];
        read_exact_or_end(&mut self.stream, &mut payload).await?;
        Ok(payload)
    }

    /// Reads one frame's payload, within [`STEP`].
    pub async fn recv(&mut self) -> Vec<u8> {
        tokio::time::timeout(STEP, self.try_recv())
            .await
            .expect("reply in time")
            .expect("connection still open")
    }

    /// Reads one frame and returns its `Echo` text.
    pub async fn recv_echo(&mut self) -> String {
        let reply = self.recv().await;
        self.wire.decode_echo(&reply)
    }

    /// Sends an `Echo` and returns the text of the reply.
    pub async fn echo(&mut self, text: &str) -> String {
        let payload = self.wire.echo(text);
        self.send(&payload).await;
        let reply = self.recv().await;
        self.wire.decode_echo(&reply)
    }

    /// Sends a message of the test protocol.
    pub async fn send_msg<T: Serialize + prost::Message>(&mut self, name: &str, id: u16, msg: &T) {
        let payload = self.wire.encode(name, id, msg);
        self.send(&payload).await;
    }

    /// Reads `Echo` replies until the server ends the connection, each within `within`
    /// (panics if one does not come): their texts, and how it ended.
    pub async fn echoes_to_end(&mut self, within: Duration) -> (Vec<String>, Ended) {
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout(within, self.try_recv()).await {
                Ok(Ok(payload)) => got.push(self.wire.decode_echo(&payload)),
                Ok(Err(end)) => return (got, end),
                Err(_) => panic!(
                    "no reply nor end within {within:?} after {} replies",
                    got.len()
                ),
            }
        }
    }

    /// Reads (and discards) until the server ends the connection; panics if it does not
    /// within [`STEP`]. Returns the bytes discarded and how it ended.
    pub async fn expect_closed(&mut self) -> (usize, Ended) {
        tokio::time::timeout(STEP, read_to_end(&mut self.stream))
            .await
            .expect("the server closes the connection")
    }
}

async fn read_exact_or_end(stream: &mut TcpStream, buf: &mut [u8]) -> Result<(), Ended> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Err(Ended::Eof),
        Err(_) => Err(Ended::Reset),
    }
}

/// Reads until EOF or an error; returns the byte count and how it ended.
pub async fn read_to_end(stream: &mut TcpStream) -> (usize, Ended) {
    let mut total = 0;
    let mut buf = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return (total, Ended::Eof),
            Ok(n) => total += n,
            Err(_) => return (total, Ended::Reset),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket.

/// The next data message, or how the connection ended; panics if neither comes within
/// [`STEP`].
pub async fn ws_next(ws: &mut Ws) -> Result<WsMessage, WsEnd> {
    next_data(ws, tokio::time::Instant::now() + STEP)
        .await
        .expect("a websocket message in time")
}

/// Sends an `Echo` as a binary message and returns the reply's text; checks that the reply
/// is binary.
pub async fn ws_echo(ws: &mut Ws, wire: Wire, text: &str) -> String {
    ws.send(WsMessage::binary(wire.echo(text)))
        .await
        .expect("ws send");
    match ws_next(ws).await {
        Ok(WsMessage::Binary(b)) => wire.decode_echo(&b),
        other => panic!("expected a binary reply, got {other:?}"),
    }
}
