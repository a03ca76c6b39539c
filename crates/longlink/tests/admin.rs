//! Black-box tests of the admin listeners: `/metrics` (Prometheus text, counters that move),
//! `/healthz` (200 serving, 503 draining) and the console (help, stats, kick, unknown
//! commands, long lines, quit), over real loopback sockets; and what slow clients get:
//! stalled and trickled request heads are cut at 5 s without keeping `/healthz` from
//! answering, and idle console sessions cannot lock the operator out.
//!
//! The metrics recorder is process-wide and tests run in parallel, so metric checks compare
//! before and after (deltas), and the tests of this file take turns (one lock).

#![allow(missing_docs)]

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Framing, STEP, TcpClient, Wire, bounded, stops_within};
use longlink::admin::{AdminConfig, AdminServer};
use longlink::app::AppError;
use longlink::shutdown::StopHandle;
use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Module, Processor, Sessions};
use longlink_testkit::prometheus::{Metrics, scrape, scrape_until, value};
use longlink_testkit::{Console, envelope, http};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

/// The tests of this file take turns: they read process-wide metrics.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs a test body within 30 s, once the other tests of this file are done.
async fn in_turn<F: Future<Output = ()>>(body: F) {
    let _turn = TURN.lock().await;
    bounded(Duration::from_secs(30), body).await;
}

/// Routed to the module and echoed back.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct AdminHello {
    #[prost(string, tag = "1")]
    text: String,
}

/// Routed: binds the connection to `uid` and answers with the same message.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct AdminLogin {
    #[prost(uint64, tag = "1")]
    uid: u64,
}

/// Routed: answered at once, then the module sleeps `ms` milliseconds (holds up a drain).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct AdminSlow {
    #[prost(uint64, tag = "1")]
    ms: u64,
}

struct Game {
    sessions: Sessions,
}

struct Server {
    tcp: SocketAddr,
    http: SocketAddr,
    console: SocketAddr,
    stop: StopHandle,
    task: JoinHandle<Result<(), AppError>>,
}

async fn start() -> Server {
    let module = Module::new(
        "admin-game",
        Game {
            sessions: Sessions::new(),
        },
    );
    let game = module.module_ref();
    let mut p = Processor::new(Encoding::Json);
    p.register::<AdminHello>().unwrap();
    p.register::<AdminLogin>().unwrap();
    p.register::<AdminSlow>().unwrap();
    p.route(
        &game,
        |_: &mut Ctx<Game>, msg: AdminHello, agent: &Agent| {
            let _ = agent.write(&msg);
        },
    )
    .unwrap();
    p.route(
        &game,
        |ctx: &mut Ctx<Game>, msg: AdminLogin, agent: &Agent| {
            ctx.sessions.bind(msg.uid, agent);
            let _ = agent.write(&msg);
        },
    )
    .unwrap();
    p.route(&game, |_: &mut Ctx<Game>, msg: AdminSlow, agent: &Agent| {
        let _ = agent.write(&msg);
        std::thread::sleep(Duration::from_millis(msg.ms));
    })
    .unwrap();
    let config = GateConfig {
        tcp_addr: "127.0.0.1:0".into(),
        ..GateConfig::default()
    };
    let gate = Gate::builder(config, p).bind().await.unwrap();
    let admin = AdminServer::bind(&AdminConfig {
        addr: "127.0.0.1:0".into(),
        console_addr: "127.0.0.1:0".into(),
        ..AdminConfig::default()
    })
    .await
    .unwrap();
    let tcp = gate.tcp_addr().unwrap();
    let http = admin.addr().unwrap();
    let console = admin.console_addr().unwrap();
    let stats_ref = game.clone();
    let app = App::new()
        .handle_signals(false)
        .module(module)
        .gate(gate)
        .admin(admin)
        .console_stats(move || {
            let game = stats_ref.clone();
            async move {
                let n = game
                    .call(STEP, |ctx: &mut Ctx<Game>| ctx.sessions.len())
                    .await
                    .unwrap_or(0);
                vec![("sessions".to_string(), n.to_string())]
            }
        })
        .console_command(
            "echo",
            "echo <words>: says them back",
            |args: Vec<String>| async move { args.join(" ") },
        );
    let stop = app.stop_handle();
    let task = tokio::spawn(app.run());
    Server {
        tcp,
        http,
        console,
        stop,
        task,
    }
}

impl Server {
    async fn shutdown(self) {
        self.stop.stop();
        stops_within(Duration::from_secs(15), self.task).await;
    }
}

// ---------------------------------------------------------------------------------------------
// A leaf TCP client (2-byte big-endian length, then `{"Name":{...}}`), and HTTP.

struct Client(TcpClient);

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client(TcpClient::connect(addr, Framing::default(), Wire(Encoding::Json)).await)
    }

    async fn send(&mut self, name: &str, body: serde_json::Value) {
        self.0.send(&envelope::json(name, body)).await;
    }

    /// The next message, or `None` when the server closed the connection.
    async fn recv(&mut self) -> Option<serde_json::Value> {
        let reply = tokio::time::timeout(STEP, self.0.try_recv())
            .await
            .expect("a reply or a close in time");
        Some(serde_json::from_slice(&reply.ok()?).unwrap())
    }
}

/// `GET path`: the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let reply = http::try_http_get(addr, path).await?;
    Ok((reply.status, reply.body))
}

/// Scrapes until `done(before, now)` holds, up to [`STEP`].
async fn wait_for(
    addr: SocketAddr,
    before: &Metrics,
    what: &str,
    done: impl Fn(&Metrics, &Metrics) -> bool,
) -> Metrics {
    scrape_until(addr, what, |now| done(before, now)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_count_connections_and_messages() {
    in_turn(async {
        let server = start().await;
        let before = scrape(server.http).await;

        let mut c = Client::connect(server.tcp).await;
        for i in 0..3 {
            c.send(
                "AdminHello",
                serde_json::json!({ "text": format!("hi {i}") }),
            )
            .await;
            let reply = c.recv().await.expect("a reply");
            assert_eq!(reply["AdminHello"]["text"], format!("hi {i}"));
        }
        let during = wait_for(server.http, &before, "three messages", |b, n| {
            let d = |s: &str| value(n, s) - value(b, s);
            d(r#"longlink_messages_in_total{msg="AdminHello"}"#) >= 3.0
                && d(r#"longlink_messages_out_total{msg="AdminHello"}"#) >= 3.0
                && d(r#"longlink_handler_seconds_count{msg="AdminHello"}"#) >= 3.0
        })
        .await;
        let d = |s: &str| value(&during, s) - value(&before, s);
        assert_eq!(
            d(r#"longlink_messages_in_total{msg="AdminHello"}"#),
            3.0,
            "messages in"
        );
        assert_eq!(
            d(r#"longlink_connections_accepted_total{transport="tcp"}"#),
            1.0
        );
        assert_eq!(d(r#"longlink_connections_open{transport="tcp"}"#), 1.0);
        assert!(d(r#"longlink_bytes_in_total{transport="tcp"}"#) > 0.0);
        assert!(d(r#"longlink_bytes_out_total{transport="tcp"}"#) > 0.0);
        // The histogram renders as a Prometheus histogram, buckets and all.
        assert!(
            during.contains_key(r#"longlink_handler_seconds_bucket{msg="AdminHello",le="+Inf"}"#)
        );
        assert!(
            during
                .keys()
                .any(|k| k.starts_with("longlink_module_mailbox_depth{module=\"admin-game\"")),
            "mailbox gauge"
        );

        // A payload that does not decode: counted, and the connection closed.
        let mut bad = Client::connect(server.tcp).await;
        bad.send("NoSuchMessage", serde_json::json!({})).await;
        assert!(bad.recv().await.is_none(), "closed after a bad message");
        drop(c);
        let after = wait_for(server.http, &during, "decode error and closes", |b, n| {
            value(n, "longlink_decode_errors_total") - value(b, "longlink_decode_errors_total")
                >= 1.0
                && value(n, r#"longlink_connections_open{transport="tcp"}"#)
                    - value(b, r#"longlink_connections_open{transport="tcp"}"#)
                    <= -1.0
        })
        .await;
        assert_eq!(
            value(&after, "longlink_decode_errors_total")
                - value(&during, "longlink_decode_errors_total"),
            1.0
        );

        // Other paths.
        assert_eq!(get(server.http, "/nope").await.unwrap().0, 404);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_200_serving_and_503_draining() {
    in_turn(async {
        let server = start().await;
        assert_eq!(
            get(server.http, "/healthz").await.unwrap(),
            (200, "ok\n".into())
        );

        // A slow handler holds the drain up: the gate waits for the module to finish it.
        let mut c = Client::connect(server.tcp).await;
        c.send("AdminSlow", serde_json::json!({ "ms": 1500 })).await;
        assert!(c.recv().await.is_some(), "the slow handler has started");
        server.stop.stop();
        let (status, body) = get(server.http, "/healthz").await.expect("admin still up");
        assert_eq!((status, body.as_str()), (503, "draining\n"));
        let http = server.http;
        stops_within(Duration::from_secs(15), server.task).await;
        // Once stopped, the admin listener is gone.
        assert!(
            get(http, "/healthz").await.is_err(),
            "admin closed after stop"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_help_stats_kick_unknown_quit() {
    in_turn(async {
        let server = start().await;
        let mut console = Console::connect(server.console).await;

        let help = console.run("help").await;
        for word in ["help", "stats", "kick <uid>", "quit", "echo <words>"] {
            assert!(help.contains(word), "help lacks {word}: {help}");
        }
        assert_eq!(console.run("echo a  b").await, "a b\n");
        assert_eq!(console.run("").await, "");
        let unknown = console.run("frobnicate now").await;
        assert!(
            unknown.starts_with("unknown command: frobnicate"),
            "{unknown}"
        );

        // A user logs in; stats counts them; kick closes their connection.
        let mut user = Client::connect(server.tcp).await;
        user.send("AdminLogin", serde_json::json!({ "uid": 42 }))
            .await;
        assert_eq!(user.recv().await.unwrap()["AdminLogin"]["uid"], 42);
        let stats = console.run("stats").await;
        assert!(stats.contains("connections: 1\n"), "{stats}");
        assert!(stats.contains("sessions: 1\n"), "{stats}");
        assert!(stats.contains("messages_per_sec: "), "{stats}");
        assert!(stats.contains("mailbox admin-game: "), "{stats}");

        assert_eq!(console.run("kick").await, "usage: kick <uid> [reason]\n");
        assert_eq!(console.run("kick x").await, "bad uid: x\n");
        assert_eq!(console.run("kick 7").await, "kicked 0\n");
        assert_eq!(console.run("kick 42").await, "kicked 1\n");
        assert!(user.recv().await.is_none(), "the kicked user is closed");

        // quit: bye, then the console closes.
        console.send_raw(b"quit\n").await;
        assert_eq!(console.until_prompt().await, Err("bye\n".into()));

        // A line over 4 KiB closes the session, with a word why.
        let mut long = Console::connect(server.console).await;
        long.send_raw(&vec![b'a'; 5000]).await;
        let closed = long.until_prompt().await.expect_err("closed");
        assert!(closed.contains("line longer than"), "{closed}");

        server.shutdown().await;
    })
    .await;
}

/// Opens `n` connections to `addr` that each send one byte (`G`) and then stall.
async fn stalled(addr: SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"G").await.expect("write one byte");
        out.push(s);
    }
    out
}

/// `/healthz` on a fresh connection, timed; panics if it takes over `limit`.
async fn healthz_within(addr: SocketAddr, limit: Duration, what: &str) -> Duration {
    let began = std::time::Instant::now();
    let answer = tokio::time::timeout(limit, get(addr, "/healthz"))
        .await
        .unwrap_or_else(|_| panic!("/healthz did not answer within {limit:?} {what}"))
        .expect("/healthz answers");
    assert_eq!(answer, (200, "ok\n".into()), "{what}");
    began.elapsed()
}

/// Issue 14, item 3: slow clients that send one byte and stall must not keep `/healthz` from
/// answering (a load balancer would pull a healthy node), and are closed at a deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_100_and_1000_slow_sockets_stall() {
    in_turn(async {
        use tokio::io::AsyncReadExt;
        let server = start().await;
        let mut slow = stalled(server.http, 100).await;
        let took =
            healthz_within(server.http, Duration::from_secs(2), "with 100 slow sockets").await;
        eprintln!("/healthz with 100 slow sockets: {took:?}");
        slow.extend(stalled(server.http, 900).await);
        let took = healthz_within(
            server.http,
            Duration::from_secs(2),
            "with 1000 slow sockets",
        )
        .await;
        eprintln!("/healthz with 1000 slow sockets: {took:?}");

        let opened = std::time::Instant::now();
        // A head sent one byte every 200 ms (slowloris) is cut at the same deadline: it is
        // one for the whole head, not per byte.
        let trickle = {
            use tokio::io::AsyncWriteExt;
            let mut c = tokio::net::TcpStream::connect(server.http).await.unwrap();
            tokio::spawn(async move {
                let head = format!("GET /healthz HTTP/1.1\r\nX-Pad: {}", "a".repeat(200));
                for b in head.bytes() {
                    if c.write_all(&[b]).await.is_err() {
                        return Some(opened.elapsed());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                None
            })
        };

        // Beyond 256 admin connections the oldest were closed to make room, at once.
        let closed_by = |limit: Duration, mut s: tokio::net::TcpStream| async move {
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(limit, s.read_to_end(&mut answer))
                .await
                .unwrap_or_else(|_| panic!("a slow socket is closed within {limit:?}"));
            let answer = String::from_utf8_lossy(&answer).into_owned();
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
                "closed with nothing or a 408: {answer}"
            );
        };
        let last = slow.pop().expect("slow sockets");
        closed_by(Duration::from_secs(1), slow.swap_remove(0)).await;
        // The newest are closed at the head deadline (5 s), not held forever.
        closed_by(Duration::from_secs(8), last).await;
        let closed = opened.elapsed();
        assert!(
            closed >= Duration::from_secs(3),
            "not long before the deadline: {closed:?}"
        );
        eprintln!("the newest slow socket closed after {closed:?}");
        let cut = trickle.await.unwrap().expect("the trickled head is cut");
        assert!(
            (Duration::from_secs(4)..Duration::from_secs(8)).contains(&cut),
            "the trickled head cut at the head deadline: {cut:?}"
        );
        eprintln!("the trickled head was cut after {cut:?}");
        server.shutdown().await;
    })
    .await;
}

/// Issue 14, item 10b: idle console sessions cannot lock the operator out. Eight sessions
/// that read the prompt and stay silent hold every place; a ninth still gets the prompt and
/// an answer at once (the longest-idle session makes room).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_answers_a_ninth_session_while_eight_sit_idle() {
    in_turn(async {
        let server = start().await;
        let mut idle = Vec::new();
        for _ in 0..8 {
            idle.push(Console::connect(server.console).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let began = std::time::Instant::now();
        let mut ninth =
            tokio::time::timeout(Duration::from_secs(2), Console::connect(server.console))
                .await
                .expect("a ninth console session gets the prompt within 2 s");
        let stats = tokio::time::timeout(Duration::from_secs(2), ninth.run("stats"))
            .await
            .expect("and answers stats within 2 s");
        assert!(stats.contains("connections: "), "{stats}");
        eprintln!(
            "ninth console session answered stats after {:?}",
            began.elapsed()
        );

        // The longest-idle session (the first) was closed with a word why; the others stay.
        let closed = idle[0]
            .until_prompt()
            .await
            .expect_err("the longest-idle is closed");
        assert!(closed.contains("too many console sessions"), "{closed}");
        let stats = idle[7].run("stats").await;
        assert!(stats.contains("connections: "), "{stats}");
        server.shutdown().await;
    })
    .await;
}
