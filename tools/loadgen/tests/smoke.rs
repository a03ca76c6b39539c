//! Runs the built `longlink-bench` briefly in each mode (echo, idle, fanout over TCP and
//! WebSocket, JSON and protobuf; bare-echo over TCP and WebSocket; fanout against bare-fanout)
//! against a chat server
//! started in this process, and checks that the JSON line of results parses and has sane
//! counts. No timing is asserted.

use std::future::Future;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_longlink-bench");
/// Longest a single run of the binary may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// A chat server on ephemeral loopback ports.
struct Server {
    tcp: SocketAddr,
    ws: SocketAddr,
    stop: longlink::shutdown::StopHandle,
    task: tokio::task::JoinHandle<Result<(), longlink::app::AppError>>,
}

impl Server {
    async fn start(encoding: longlink::Encoding) -> Server {
        let mut config = longlink_chat::Config::load(None).expect("embedded config loads");
        config.gate.tcp_addr = "127.0.0.1:0".into();
        config.gate.ws_addr = "127.0.0.1:0".into();
        config.gate.encoding = encoding;
        config.admin.addr = "127.0.0.1:0".into(); // not the fixed default port
        let server = longlink_chat::build(config).await.expect("server builds");
        let (tcp, ws) = (server.tcp_addr.expect("tcp"), server.ws_addr.expect("ws"));
        let stop = server.stop.clone();
        let task = tokio::spawn(server.app.handle_signals(false).run());
        Server {
            tcp,
            ws,
            stop,
            task,
        }
    }

    fn addr(&self, transport: &str) -> String {
        match transport {
            "tcp" => self.tcp.to_string(),
            _ => self.ws.to_string(),
        }
    }

    async fn stop(self) {
        self.stop.stop();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
    }
}

/// Runs the binary with `args`, expects success, returns the last stdout line as JSON.
async fn run(args: &[&str]) -> Value {
    let child = Command::new(BIN)
        .args(args)
        .arg("--quiet")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn longlink-bench");
    let out = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("longlink-bench {args:?} ran over {RUN_TIMEOUT:?}"))
        .expect("wait for longlink-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "longlink-bench {args:?} failed: {}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    let line = stdout.lines().last().unwrap_or_default();
    assert_eq!(stdout.lines().count(), 1, "one line on stdout: {stdout}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Starts a chat server in `encoding`, runs `longlink-bench <mode> --addr <its address>
/// --transport <transport> --encoding <encoding> <extra...>` against it, stops it, and
/// returns the JSON line.
async fn run_against(
    mode: &str,
    encoding: longlink::Encoding,
    transport: &str,
    extra: &[&str],
) -> Value {
    let server = Server::start(encoding).await;
    let addr = server.addr(transport);
    let enc = match encoding {
        longlink::Encoding::Json => "json",
        longlink::Encoding::Protobuf => "protobuf",
    };
    let mut args = vec![
        mode,
        "--addr",
        &addr,
        "--transport",
        transport,
        "--encoding",
        enc,
    ];
    args.extend_from_slice(extra);
    let v = run(&args).await;
    server.stop().await;
    v
}

fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {v}"))
}

async fn echo(encoding: longlink::Encoding, enc: &str, transport: &str) {
    let v = run_against(
        "echo",
        encoding,
        transport,
        &["--conns", "4", "--duration", "1"],
    )
    .await;
    assert_eq!(v["mode"], "echo");
    assert_eq!(
        (v["transport"].as_str(), v["encoding"].as_str()),
        (Some(transport), Some(enc))
    );
    assert_eq!(count(&v, "conns"), 4);
    assert!(count(&v, "round_trips") > 0, "{v}");
    assert_eq!(count(&v, "failed_conns"), 0, "{v}");
    assert!(
        v["p50_us"].as_u64().is_some() && v["rtt_per_sec"].as_f64().is_some(),
        "{v}"
    );
}

#[tokio::test]
async fn echo_tcp_json() {
    echo(longlink::Encoding::Json, "json", "tcp").await;
}

#[tokio::test]
async fn echo_ws_json() {
    echo(longlink::Encoding::Json, "json", "ws").await;
}

#[tokio::test]
async fn echo_tcp_protobuf() {
    echo(longlink::Encoding::Protobuf, "protobuf", "tcp").await;
}

#[tokio::test]
async fn echo_ws_protobuf() {
    echo(longlink::Encoding::Protobuf, "protobuf", "ws").await;
}

/// `--message watch`: logged-in connections ping the chat module (not the gate).
#[tokio::test]
async fn echo_watch_tcp_json() {
    let server = Server::start(longlink::Encoding::Json).await;
    let addr = server.addr("tcp");
    let v = run(&[
        "echo",
        "--addr",
        &addr,
        "--message",
        "watch",
        "--conns",
        "4",
        "--duration",
        "1",
    ])
    .await;
    assert_eq!(
        (v["mode"].as_str(), v["message"].as_str()),
        (Some("echo"), Some("watch"))
    );
    assert!(count(&v, "round_trips") > 0, "{v}");
    assert_eq!(count(&v, "failed_conns"), 0, "{v}");
    server.stop().await;
}

async fn idle(encoding: longlink::Encoding, transport: &str) {
    let pid = std::process::id().to_string();
    let extra = ["--conns", "20", "--hold", "1", "--pid", &pid];
    let v = run_against("idle", encoding, transport, &extra).await;
    assert_eq!(v["mode"], "idle");
    assert_eq!(count(&v, "conns"), 20);
    assert_eq!(count(&v, "alive_after_hold"), 20, "{v}");
    assert!(count(&v, "rss_after") > 0, "{v}");
    assert!(v["first_error"].is_null(), "{v}");
}

#[tokio::test]
async fn idle_tcp_json() {
    idle(longlink::Encoding::Json, "tcp").await;
}

#[tokio::test]
async fn idle_ws_protobuf() {
    idle(longlink::Encoding::Protobuf, "ws").await;
}

async fn fanout(encoding: longlink::Encoding, transport: &str) {
    let extra = ["--watchers", "10", "--rounds", "3"];
    let v = run_against("fanout", encoding, transport, &extra).await;
    assert_eq!(v["mode"], "fanout");
    assert_eq!((count(&v, "watchers"), count(&v, "rounds")), (10, 3));
    assert!(count(&v, "max_us") >= count(&v, "p50_us"), "{v}");
}

#[tokio::test]
async fn fanout_tcp_protobuf() {
    fanout(longlink::Encoding::Protobuf, "tcp").await;
}

#[tokio::test]
async fn fanout_ws_json() {
    fanout(longlink::Encoding::Json, "ws").await;
}

/// Starts a bare baseline server (`bare-echo`, `bare-fanout`) with `args` on a free
/// loopback address for 4 s; `body` runs against its address; returns its JSON line.
async fn with_bare<F: Future<Output = ()>>(
    mode: &str,
    args: &[&str],
    body: impl FnOnce(String) -> F,
) -> Value {
    let addr = longlink_testkit::free_addr().to_string();
    let server = Command::new(BIN)
        .args([mode, "--addr", &addr, "--duration", "4"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the bare server");
    longlink_testkit::wait_for(&format!("{mode} to listen on {addr}"), || async {
        tokio::net::TcpStream::connect(&addr).await.is_ok()
    })
    .await;
    body(addr).await;
    let out = tokio::time::timeout(RUN_TIMEOUT, server.wait_with_output())
        .await
        .expect("the bare server stops after its duration")
        .expect("the bare server's output");
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout);
    let b: Value = serde_json::from_str(line.trim()).expect("the bare server's JSON line");
    assert_eq!(b["mode"], mode);
    b
}

async fn bare(transport: &str) {
    let b = with_bare(
        "bare-echo",
        &["--transport", transport],
        |addr| async move {
            let v = run(&[
                "echo",
                "--raw",
                "--addr",
                &addr,
                "--transport",
                transport,
                "--conns",
                "4",
                "--duration",
                "1",
            ])
            .await;
            assert_eq!(
                (v["mode"].as_str(), v["raw"].as_bool()),
                (Some("echo"), Some(true))
            );
            assert!(count(&v, "round_trips") > 0, "{v}");
            assert_eq!(count(&v, "failed_conns"), 0, "{v}");
        },
    )
    .await;
    assert_eq!(b["transport"].as_str(), Some(transport));
    assert!(
        count(&b, "accepted") >= 4 && count(&b, "bytes_echoed") > 0,
        "{b}"
    );
}

#[tokio::test]
async fn bare_fanout_serves_the_fanout_mode() {
    let b = with_bare("bare-fanout", &[], |addr| async move {
        let v = run(&[
            "fanout",
            "--addr",
            &addr,
            "--watchers",
            "20",
            "--rounds",
            "5",
        ])
        .await;
        assert_eq!(
            (v["watchers"].as_u64(), v["rounds"].as_u64()),
            (Some(20), Some(5)),
            "{v}"
        );
        assert!(count(&v, "p50_us") > 0, "{v}");
    })
    .await;
    // Every round reached every watcher (the sender, not watching, got its own copy too).
    assert!(count(&b, "delivered") >= 5 * 20, "{b}");
}

#[tokio::test]
async fn bare_echo_tcp() {
    bare("tcp").await;
}

#[tokio::test]
async fn bare_echo_ws() {
    bare("ws").await;
}

#[tokio::test]
async fn refuses_non_loopback() {
    let out = Command::new(BIN)
        .args(["echo", "--addr", "10.0.0.1:3563", "--transport", "ws"])
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
