//! Tests of the binary's logs (`[log]`): JSON lines, the connection's fields on its events,
//! `[log] level` under `RUST_LOG`, and colour only on a terminal.

mod common;

use common::process::*;
use common::*;
use serde_json::Value;

/// The escape byte that starts every ANSI colour sequence.
const ESC: char = '\u{1b}';

/// Runs the binary with `log` (TOML lines) in its config file, through `wrapper` (to set or unset
/// variables); connects over TCP and WebSocket, logs in and talks, then stops it with
/// SIGTERM. Returns its stderr.
async fn served_log(log: &str, wrapper: &[&str]) -> String {
    let mut s = serve_via(Enc::Json, log, wrapper).await;
    let mut a = Client::connect(Transport::Tcp, Enc::Json, s.tcp).await;
    a.login_uid(1).await;
    a.watch(3).await;
    let mut b = Client::connect(Transport::Ws, Enc::Json, s.ws).await;
    b.login_uid(2).await;
    a.say(3, "hello").await;
    assert_eq!(a.expect_message().await.text, "hello");
    drop(b);
    s.proc.signal("TERM");
    let status = s.proc.wait().await;
    let stderr = s.proc.stderr();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    stderr
}

/// Every line of `stderr` as a JSON object with the fields the format promises.
fn json_lines(stderr: &str) -> Vec<serde_json::Map<String, Value>> {
    assert!(!stderr.trim().is_empty(), "no log lines");
    stderr
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nstderr:\n{stderr}"));
            let Value::Object(object) = value else {
                panic!("not an object: {line}");
            };
            for key in ["timestamp", "level", "target", "message"] {
                assert!(
                    object.get(key).is_some_and(Value::is_string),
                    "no string {key:?}: {line}"
                );
            }
            assert!(object["fields"].is_object(), "no fields object: {line}");
            assert!(object["spans"].is_array(), "no spans array: {line}");
            object
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_the_connections_fields() {
    bounded(TEST_TIMEOUT, async {
        // RUST_LOG unset: `[log] level` decides, and debug shows the connections' events.
        let stderr = served_log(
            "[log]\nformat = \"json\"\nlevel = \"debug\"",
            &["env", "-u", "RUST_LOG"],
        )
        .await;
        let lines = json_lines(&stderr);
        assert!(
            lines.iter().any(|l| l["level"] == "DEBUG"),
            "[log] level = \"debug\" did not apply:\n{stderr}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l["level"] == "INFO" && l["message"] == "longlink-chat serving"),
            "{stderr}"
        );
        for transport in ["tcp", "ws"] {
            let opened = lines
                .iter()
                .find(|l| {
                    l["message"] == "connection opened" && l["fields"]["transport"] == transport
                })
                .unwrap_or_else(|| panic!("no {transport} \"connection opened\":\n{stderr}"));
            let fields = &opened["fields"];
            assert!(fields["id"].is_u64(), "{opened:?}");
            let remote = fields["remote"].as_str().unwrap_or_default();
            assert!(remote.starts_with("127.0.0.1:"), "{opened:?}");
            assert_eq!(opened["spans"], serde_json::json!(["conn"]), "{opened:?}");
        }
    })
    .await;
}

/// The line at `level` with `message` about the connection on `transport` whose address is
/// `remote` (or, if `None`, any `127.0.0.1` address); it carries the connection's `id`.
fn conn_line<'a>(
    lines: &'a [serde_json::Map<String, Value>],
    level: &str,
    message: &str,
    transport: &str,
    remote: Option<std::net::SocketAddr>,
    stderr: &str,
) -> &'a serde_json::Map<String, Value> {
    let line = lines
        .iter()
        .find(|l| l["message"] == message && l["fields"]["transport"] == transport)
        .unwrap_or_else(|| panic!("no {transport} {message:?} line:\n{stderr}"));
    assert_eq!(line["level"], level, "{line:?}");
    let fields = &line["fields"];
    assert!(fields["id"].is_u64(), "no connection id: {line:?}");
    let logged = fields["remote"].as_str().unwrap_or_default();
    match remote {
        Some(remote) => assert_eq!(logged, remote.to_string(), "{line:?}"),
        None => assert!(logged.starts_with("127.0.0.1:"), "{line:?}"),
    }
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_info_a_connection_closed_for_bad_input_or_idleness_is_named_by_its_fields() {
    bounded(TEST_TIMEOUT, async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // The default level (RUST_LOG=info from the test runner), JSON lines.
        let mut s = serve_via(Enc::Json, "idle_timeout = 1\n[log]\nformat = \"json\"", &[]).await;
        // A TCP frame longer than max_msg_len (a 2-byte length of 65535, then nothing).
        let mut raw = tokio::net::TcpStream::connect(s.tcp).await.unwrap();
        let oversized_from = raw.local_addr().unwrap();
        raw.write_all(&[0xff, 0xff]).await.unwrap();
        let mut rest = Vec::new();
        let _ = raw.read_to_end(&mut rest).await; // the gate closes it
        // A WebSocket message that is not a message of the chat.
        let mut ws = Client::connect(Transport::Ws, Enc::Json, s.ws).await;
        ws.send_text("not json").await.unwrap();
        ws.expect_closed().await;
        // A TCP connection that says nothing: kicked after idle_timeout.
        let mut idle = tokio::net::TcpStream::connect(s.tcp).await.unwrap();
        let idle_from = idle.local_addr().unwrap();
        let _ = idle.read_to_end(&mut rest).await;
        s.proc.signal("TERM");
        let status = s.proc.wait().await;
        let stderr = s.proc.stderr();
        assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
        let lines = json_lines(&stderr);
        assert!(lines.iter().all(|l| l["level"] != "DEBUG"), "{stderr}");
        let bad = conn_line(
            &lines,
            "INFO",
            "protocol error, closing",
            "tcp",
            Some(oversized_from),
            &stderr,
        );
        assert!(bad["fields"]["reason"].is_string(), "{bad:?}");
        conn_line(
            &lines,
            "INFO",
            "protocol error, closing",
            "ws",
            None,
            &stderr,
        );
        conn_line(
            &lines,
            "INFO",
            "idle timeout",
            "tcp",
            Some(idle_from),
            &stderr,
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_remote_in_the_log_is_the_forwarded_address() {
    bounded(TEST_TIMEOUT, async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let extra = "trusted_proxies = [\"127.0.0.1\"]\n[log]\nformat = \"json\"";
        let mut s = serve_via(Enc::Json, extra, &[]).await;
        // An upgrade from the trusted proxy, for 203.0.113.9; then a message that is not JSON.
        let mut raw = tokio::net::TcpStream::connect(s.ws).await.unwrap();
        let upgrade = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             X-Forwarded-For: 203.0.113.9\r\n\r\n",
            s.ws
        );
        raw.write_all(upgrade.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            assert_eq!(raw.read(&mut byte).await.unwrap(), 1, "{answer:?}");
            answer.push(byte[0]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 101"), "{answer:?}");
        // A masked text frame (mask key 0): "not json".
        let mut frame = vec![0x81, 0x80 | 8, 0, 0, 0, 0];
        frame.extend_from_slice(b"not json");
        raw.write_all(&frame).await.unwrap();
        let _ = raw.read_to_end(&mut Vec::new()).await; // the gate closes it
        s.proc.signal("TERM");
        let status = s.proc.wait().await;
        let stderr = s.proc.stderr();
        assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
        let lines = json_lines(&stderr);
        let real = "203.0.113.9:0".parse().ok();
        conn_line(
            &lines,
            "INFO",
            "protocol error, closing",
            "ws",
            real,
            &stderr,
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_wins_over_log_level() {
    bounded(TEST_TIMEOUT, async {
        // The test runner sets RUST_LOG=info.
        let stderr = served_log("[log]\nformat = \"json\"\nlevel = \"debug\"", &[]).await;
        let lines = json_lines(&stderr);
        assert!(lines.iter().any(|l| l["level"] == "INFO"), "{stderr}");
        assert!(
            lines.iter().all(|l| l["level"] != "DEBUG"),
            "RUST_LOG=info did not win over [log] level:\n{stderr}"
        );
        // And `[log] level` alone, above info, keeps info out.
        let stderr = served_log("[log]\nlevel = \"warn\"", &["env", "-u", "RUST_LOG"]).await;
        assert!(
            !stderr.contains("INFO") && !stderr.contains("DEBUG"),
            "[log] level = \"warn\" let lower levels through:\n{stderr}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_escape_codes_reach_a_redirected_log() {
    bounded(TEST_TIMEOUT, async {
        // No [log] section (text is the default), NO_COLOR unset: only the file being no
        // terminal keeps colour out.
        let stderr = served_log("", &["env", "-u", "NO_COLOR", "RUST_LOG=debug"]).await;
        assert!(
            !stderr.contains(ESC),
            "escape codes in the file:\n{stderr:?}"
        );
        assert!(stderr.contains(" INFO "), "{stderr}");
        // A connection's events carry its span's fields, on the same line.
        let opened = stderr
            .lines()
            .find(|l| l.contains("connection opened") && l.contains("transport=tcp"))
            .unwrap_or_else(|| panic!("no tcp \"connection opened\":\n{stderr}"));
        assert!(
            opened.contains("conn{id=") && opened.contains("remote=127.0.0.1:"),
            "{opened}"
        );
    })
    .await;
}

/// The processes whose parent is `pid`, from `/proc/*/stat`.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid ...`; comm may hold spaces, so count after its `)`.
        let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
        if after.split(' ').nth(1) == Some(&pid.to_string()) {
            found.push(child);
        }
    }
    found
}

/// Runs the binary on a terminal (`script` gives it one) until it serves (answers a
/// heartbeat), stops it with SIGTERM, and returns what the terminal showed.
async fn on_a_terminal(no_color: Option<&str>) -> String {
    let dir = TempDir::new("tty");
    let (tcp, ws) = (free_addr(), free_addr());
    let config = dir.write(
        "chat.toml",
        &format!("[gate]\ntcp_addr = \"{tcp}\"\nws_addr = \"{ws}\"\n"),
    );
    let env = match no_color {
        Some(v) => format!("NO_COLOR={v}"),
        None => "-u NO_COLOR".into(),
    };
    // script(1) runs the command on a new pseudo-terminal and copies what it shows to its
    // stdout: the binary is script's child.
    let script = format!("exec script -qec \"exec env {env} $(printf '%q ' \"$@\")\" /dev/null");
    let mut p = Proc::spawn_via(
        &dir,
        &["bash", "-c", &script, "sh"],
        &["--config", config.to_str().unwrap()],
        &[],
    );
    // Serving (answering heartbeats), so its signal handlers are in place.
    if let Err(why) = wait_serving(&mut p, Enc::Json, tcp, ws).await {
        panic!("{why}\n{}", p.stdout());
    }
    let server = children(p.pid());
    assert_eq!(server.len(), 1, "script's children: {server:?}");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server[0].to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = p.wait().await;
    let shown = p.stdout();
    assert_eq!(status.code(), Some(0), "{shown:?}\n{}", p.stderr());
    assert!(shown.contains("longlink-chat serving"), "{shown:?}");
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_only_on_a_terminal_without_no_color() {
    bounded(TEST_TIMEOUT, async {
        let shown = on_a_terminal(None).await;
        assert!(shown.contains(ESC), "no colour on a terminal:\n{shown:?}");
        let shown = on_a_terminal(Some("1")).await;
        assert!(
            !shown.contains(ESC),
            "colour despite NO_COLOR=1:\n{shown:?}"
        );
    })
    .await;
}
