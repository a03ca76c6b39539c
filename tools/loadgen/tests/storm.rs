//! Runs the built `longlink-bench storm` against a small cluster started in this process (a
//! real nats-server, a chat node, two gates): its sessions open, resume on random gates after
//! a cut at one instant (SIGUSR1), move off a stopping gate (`LL_Move`), and count their
//! rooms' streams, nothing lost or doubled. No timing is asserted.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use longlink::shutdown::StopHandle;
use longlink_testkit::NatsServer;
use serde_json::Value;
use tokio::process::Command;
use tokio::task::JoinHandle;

const BIN: &str = env!("CARGO_BIN_EXE_longlink-bench");
/// Longest wait for any one state of the load.
const WAIT: Duration = Duration::from_secs(60);

struct Node {
    tcp: Option<std::net::SocketAddr>,
    stop: StopHandle,
    task: JoinHandle<Result<(), longlink::app::AppError>>,
}

/// A node of the cluster: `gate` (TCP on an ephemeral port, `drain_spread` 1 s) or `chat`.
async fn node(nats: &NatsServer, node_type: &str, id: &str) -> Node {
    let mut config = longlink_chat::Config::load(None).expect("embedded config loads");
    config.gate.tcp_addr = match node_type {
        "gate" => "127.0.0.1:0".into(),
        _ => String::new(),
    };
    config.gate.ws_addr = String::new();
    config.gate.drain_spread = Duration::from_secs(1);
    config.admin.addr = "127.0.0.1:0".into();
    config.cluster.nats_url = nats.url();
    config.cluster.node_type = node_type.into();
    config.cluster.node_id = id.into();
    let server = longlink_chat::build(config).await.expect("node builds");
    let (tcp, stop) = (server.tcp_addr, server.stop.clone());
    let task = tokio::spawn(server.app.handle_signals(false).run());
    Node { tcp, stop, task }
}

fn read(status: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(status).ok()?).ok()
}

/// Reads the status file until `done` holds (at most `WAIT`); the last status.
async fn wait_for(status: &Path, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = read(status);
        if let Some(v) = &v
            && done(v)
        {
            return v.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {what} within {WAIT:?}: {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kill(signal: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill {signal} {pid}");
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resume_after_a_cut_and_move_off_a_stopping_gate_losing_nothing() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    let _chat = node(&nats, "chat", "chat1").await;
    let (g1, g2) = (
        node(&nats, "gate", "gate1").await,
        node(&nats, "gate", "gate2").await,
    );
    let gates = format!("{},{}", g1.tcp.unwrap(), g2.tcp.unwrap());
    let dir = std::env::temp_dir().join(format!("longlink-storm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = dir.join("status.json");
    let stream_gate = g2.tcp.unwrap().to_string();
    let args = [
        "--quiet",
        "storm",
        "--gates",
        &gates,
        "--stream-gate",
        &stream_gate,
        "--sessions",
        "20",
        "--sources",
        "4",
        "--rooms",
        "2",
        "--rate",
        "10",
        "--hold",
        "120",
        "--status",
    ];
    let child = Command::new(BIN)
        .args(args)
        .arg(&status)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn longlink-bench storm");
    let pid = child.id().expect("a pid");

    let v = wait_for(&status, "stream", |v| n(v, "stream_ns") > 0).await;
    assert_eq!((n(&v, "ready"), n(&v, "failed")), (20, 0), "{v}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill("-USR1", pid);
    let v = wait_for(&status, "resume of every session", |v| {
        n(v, "resumed") == 20
    })
    .await;
    assert_eq!(n(&v, "cut"), 20, "{v}");

    // Gate 1 stops: whichever sessions resumed on it move to gate 2.
    g1.stop.stop();
    let drained = tokio::time::timeout(WAIT, g1.task).await;
    assert!(drained.is_ok(), "gate 1 did not stop within {WAIT:?}");
    let v = wait_for(&status, "moves", |v| n(v, "moved") == n(v, "moves_told")).await;
    assert!(
        n(&v, "moves_told") > 0,
        "no session on gate 1 after the cut: {v}"
    );

    kill("-USR2", pid);
    let v = wait_for(&status, "the streams' end", |v| {
        n(v, "stopped_ns") > 0 && n(v, "behind") == 0
    })
    .await;
    assert!(n(&v, "stream_received") > 0, "{v}");
    let lost = (n(&v, "gaps"), n(&v, "dups"), n(&v, "lost_sessions"));
    assert_eq!(lost, (0, 0, 0), "{v}");
    assert_eq!(n(&v, "sender_errors"), 0, "{v}");
    drop((child, g2));
    let _ = std::fs::remove_dir_all(&dir);
}
