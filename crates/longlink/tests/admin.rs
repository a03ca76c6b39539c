//! Black-box tests of the admin listeners: `/metrics` (Prometheus text, counters that move),
//! `/healthz` (200 serving, 503 draining) and the console (help, stats, kick, unknown
//! commands, long lines, quit), over real loopback sockets.
//!
//! The metrics recorder is process-wide and tests run in parallel, so metric checks compare
//! before and after (deltas), and the tests of this file take turns (one lock).

#![allow(missing_docs)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use longlink::admin::{AdminConfig, AdminServer};
use longlink::app::AppError;
use longlink::shutdown::StopHandle;
use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Module, Processor, Sessions};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const STEP: Duration = Duration::from_secs(5);

/// The tests of this file take turns: they read process-wide metrics.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn bounded<F: Future<Output = ()>>(body: F) {
    let _turn = TURN.lock().await;
    tokio::time::timeout(Duration::from_secs(30), body)
        .await
        .expect("test finished in time");
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
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("stopped in time")
            .expect("task")
            .expect("app");
    }
}

// ---------------------------------------------------------------------------------------------
// A leaf TCP client: 2-byte big-endian length, then `{"Name":{...}}`.

struct Client(TcpStream);

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client(TcpStream::connect(addr).await.unwrap())
    }

    async fn send(&mut self, name: &str, body: serde_json::Value) {
        let payload = serde_json::to_vec(&serde_json::json!({ name: body })).unwrap();
        let mut frame = (payload.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        self.0.write_all(&frame).await.unwrap();
    }

    /// The next message, or `None` when the server closed the connection.
    async fn recv(&mut self) -> Option<serde_json::Value> {
        let mut len = [0u8; 2];
        let read = tokio::time::timeout(STEP, self.0.read_exact(&mut len))
            .await
            .expect("a reply or a close in time");
        if read.is_err() {
            return None;
        }
        let mut payload = vec![0u8; u16::from_be_bytes(len) as usize];
        tokio::time::timeout(STEP, self.0.read_exact(&mut payload))
            .await
            .expect("a whole reply in time")
            .ok()?;
        Some(serde_json::from_slice(&payload).unwrap())
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP and Prometheus text.

/// `GET path`: the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    tokio::time::timeout(STEP, s.read_to_end(&mut out))
        .await
        .expect("an answer in time")?;
    let text = String::from_utf8(out).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    Ok((status, body.to_owned()))
}

/// Parses Prometheus text, checking every line; returns `name{labels}` to value.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let parts: Vec<&str> = rest.split(' ').collect();
            assert_eq!(parts.len(), 2, "bad TYPE line: {line}");
            assert!(valid_name(parts[0]), "bad metric name: {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&parts[1]),
                "bad type: {line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "bad metric name in {line:?}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(
                    labels.starts_with('{') && labels.ends_with('}'),
                    "bad labels in {line:?}"
                );
                for pair in labels[1..labels.len() - 1].split(',') {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    assert!(valid_name(k), "bad label name in {line:?}");
                    assert!(
                        v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                        "bad label value in {line:?}"
                    );
                }
            }
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        out.insert(series.to_owned(), value);
    }
    out
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, body) = get(addr, "/metrics").await.expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    parse_prometheus(&body)
}

fn value(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

/// Scrapes until `done(before, now)` holds (metrics recorded just after a reply was sent
/// may lag it a little), up to a bound.
async fn wait_for(
    addr: SocketAddr,
    before: &HashMap<String, f64>,
    what: &str,
    done: impl Fn(&HashMap<String, f64>, &HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let now = scrape(addr).await;
        if done(before, &now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: metrics did not move"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The console.

struct Console(TcpStream, Vec<u8>);

impl Console {
    async fn connect(addr: SocketAddr) -> Console {
        let mut c = Console(TcpStream::connect(addr).await.unwrap(), Vec::new());
        let greeting = c.until_prompt().await.expect("a prompt");
        assert_eq!(greeting, "");
        c
    }

    /// Everything up to the next prompt; `Err(text)` if the console closed first.
    async fn until_prompt(&mut self) -> Result<String, String> {
        const PROMPT: &[u8] = b"longlink> ";
        loop {
            if let Some(i) = self.1.windows(PROMPT.len()).position(|w| w == PROMPT) {
                let text = String::from_utf8(self.1[..i].to_vec()).unwrap();
                self.1.drain(..i + PROMPT.len());
                return Ok(text);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(STEP, self.0.read(&mut chunk))
                .await
                .expect("console answers in time")
                .unwrap_or(0);
            if n == 0 {
                return Err(String::from_utf8_lossy(&self.1).into_owned());
            }
            self.1.extend_from_slice(&chunk[..n]);
        }
    }

    async fn run(&mut self, line: &str) -> String {
        self.0
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.until_prompt().await.expect("an answer, then a prompt")
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_count_connections_and_messages() {
    bounded(async {
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
    bounded(async {
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
        tokio::time::timeout(Duration::from_secs(15), server.task)
            .await
            .expect("stopped in time")
            .expect("task")
            .expect("app");
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
    bounded(async {
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

        assert_eq!(console.run("kick").await, "usage: kick <uid>\n");
        assert_eq!(console.run("kick x").await, "bad uid: x\n");
        assert_eq!(console.run("kick 7").await, "kicked 0\n");
        assert_eq!(console.run("kick 42").await, "kicked 1\n");
        assert!(user.recv().await.is_none(), "the kicked user is closed");

        // quit: bye, then the console closes.
        console.0.write_all(b"quit\n").await.unwrap();
        assert_eq!(console.until_prompt().await, Err("bye\n".into()));

        // A line over 4 KiB closes the session, with a word why.
        let mut long = Console::connect(server.console).await;
        long.0.write_all(&vec![b'a'; 5000]).await.unwrap();
        let closed = long.until_prompt().await.expect_err("closed");
        assert!(closed.contains("line longer than"), "{closed}");

        server.shutdown().await;
    })
    .await;
}
