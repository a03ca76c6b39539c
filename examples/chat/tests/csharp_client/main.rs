//! The C# client (`clients/csharp`, for Unity): built with Mono's C# compiler (`mcs`, C#
//! 7.2) together with the code `longlink-codegen --lang csharp` writes from the golden
//! manifest (`clients/typescript/test/golden/kinds.json`) and its test program
//! (`clients/csharp/tests`), then run under `mono`:
//!
//! - the generated classes decode the Rust server's golden bytes (every chat message, every
//!   kind of field) and encode them back exactly, protobuf and JSON;
//! - against this crate's chat server (in process): JSON and protobuf over TCP and
//!   WebSocket, login, rooms, private messages; a dead first address; 2,000 room messages
//!   to a resumable client behind `longlink_testkit::Proxy` cutting at random points
//!   (TCP + JSON, WebSocket + protobuf), each once and in order, with private messages
//!   sent around the cuts each handled once; `SessionLost` after a 1-second window; the
//!   same with the threadless client (`ClientOptions.Threadless`, WebGL's mode) over TCP;
//! - `Send` against a server that never reads: it never blocks, and says when its queue is full;
//! - `LL_Move` against scripted servers, and from a real draining gate (nats-server);
//! - the `.jslib` WebGL bridge in headless Chromium against the chat server (`webgl.mjs`);
//! - the console sample (`clients/csharp/samples/Chat`) logs in, says hello, reads it back;
//!   the Unity sample scene's script compiles.
//!
//! The C# program asks for the proxy's cuts (and a gate's stop) with lines on its stdout
//! (`CTL cuts NAME`, `CTL calm NAME`, `CTL down NAME`, `CTL stop one`) and waits for `OK`
//! on its stdin (control.rs).
//!
//! Needs `mcs` and `mono` (Debian's `mono-devel`, which scripts/test.sh installs), and node
//! with `clients/typescript/node_modules` for the generator: when one is missing the test
//! fails and says so.

mod build;
#[path = "../common/mod.rs"]
mod common;
mod control;
mod exit;
mod scripted;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use build::{CSHARP, build, run, sources};
use control::converse;
use scripted::scripted_move;

use common::{Enc, TestServer, Transport};
use longlink_testkit::Proxy;

const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// LL_Move from a real gate: two gate nodes (resume on) and a chat node in a cluster over a
/// real nats-server (docs/cluster.md's layout), a resumable C# client on the first gate with
/// the second in its addresses, a room streaming from a client on the second; over TCP, then
/// WebSocket. The first gate is stopped
/// while the room streams: it drains, tells the client LL_Move, and the client moves to the
/// second gate and resumes there (the gates hand the session over through NATS): every
/// room message once and in order, and the private messages the client sent around the
/// move each handled once (clients/csharp/tests/MoveReal.cs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csharp_client_moves_off_a_draining_gate() {
    let Some(nats) = longlink_testkit::NatsServer::start_or_skip() else {
        return;
    };
    let dir = build();
    let tweak = |c: &mut longlink_chat::Config| {
        c.gate.ws_addr = "127.0.0.1:0".into();
        c.gate.resume_window = Duration::from_secs(30);
        c.gate.resume_buffer = 8192;
        c.gate.drain_spread = Duration::from_secs(1);
    };
    let chat = common::node::Node::start_with(&nats, "chat", tweak).await;
    for (uid, ws) in [(6001, false), (6003, true)] {
        let one = common::node::Node::start_with(&nats, "gate", tweak).await;
        let two = common::node::Node::start_with(&nats, "gate", tweak).await;
        let addr = |n: &common::node::Node| match ws {
            false => format!("tcp://{}", n.tcp.expect("tcp")),
            true => format!("ws://{}/", n.ws.expect("ws")),
        };
        let args = vec![
            "move".to_string(),
            format!("one={}", addr(&one)),
            format!("two={}", addr(&two)),
            format!("token_a={}", common::token(uid)),
            format!("token_b={}", common::token(uid + 1)),
        ];
        let stop = one.stop.clone();
        let log = converse(&dir.0.join("ChatTests.exe"), &args, |verb, name| {
            assert_eq!((verb, name), ("stop", "one"), "CTL {verb} {name}?");
            stop.stop();
        })
        .await;
        assert!(log.contains("move: all passed"), "{log}");
        one.shutdown().await;
        two.shutdown().await;
    }
    chat.shutdown().await;
}

#[test]
fn the_library_uses_no_reflection_and_no_dynamic() {
    for file in sources(&Path::new(CSHARP).join("src")) {
        let text = std::fs::read_to_string(&file).expect("read");
        for word in ["System.Reflection", "dynamic ", "Activator", "GetType()"] {
            assert!(!text.contains(word), "{} uses {word}", file.display());
        }
    }
}

/// Mono aborts its timer thread when the process exits, and an abort while that thread sorts
/// its timers (as it does after one is started or disposed) is an unhandled exception: a game
/// that quits right after `Close` would exit with 1. So the library bounds its waits with
/// `Task.Wait` and threads of its own, and starts no timer.
#[test]
fn the_library_starts_no_timer() {
    for file in sources(&Path::new(CSHARP).join("src")) {
        let text = std::fs::read_to_string(&file).expect("read");
        for word in [
            "new Timer(",
            "Threading.Timer",
            "CancelAfter",
            "Task.Delay",
            "new CancellationTokenSource(",
        ] {
            let stripped = text.replace("new CancellationTokenSource()", "");
            assert!(!stripped.contains(word), "{} uses {word}", file.display());
        }
    }
}

/// A package installed from a git URL is read-only to Unity, which ignores any asset without
/// its `.meta` file (scripts/unity-meta.py writes them).
#[test]
fn every_asset_of_the_unity_package_has_its_meta_file() {
    fn walk(dir: &Path, missing: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('.') || name.ends_with(".meta") {
                continue;
            }
            let mut meta = path.clone().into_os_string();
            meta.push(".meta");
            if !Path::new(&meta).is_file() {
                missing.push(path.clone());
            }
            if path.is_dir() {
                walk(&path, missing);
            }
        }
    }
    let mut missing = Vec::new();
    walk(Path::new(CSHARP), &mut missing);
    assert!(
        missing.is_empty(),
        "no .meta file for {missing:?}: run scripts/unity-meta.py"
    );
}

#[test]
fn generated_csharp_round_trips_the_servers_golden_bytes() {
    let dir = build();
    let out = run(
        std::process::Command::new("mono")
            .arg(dir.0.join("ChatTests.exe"))
            .arg("golden")
            .arg(dir.0.join("kinds.json")),
        "mono ChatTests.exe golden",
    );
    eprintln!("{out}");
    assert!(out.contains("round-trip"), "{out}");
}

/// Against a server that never reads, `Send` returns each time until `MaxQueuedSends` wait,
/// then throws `SendQueueFullException`; once the server reads, every message it took
/// arrives in order (clients/csharp/tests/Backpressure.cs).
#[test]
fn send_never_blocks_the_callers_thread() {
    let dir = build();
    let out = run(
        std::process::Command::new("timeout")
            .arg("120")
            .arg("mono")
            .arg(dir.0.join("ChatTests.exe"))
            .arg("backpressure"),
        "mono ChatTests.exe backpressure",
    );
    eprintln!("{out}");
    assert!(
        out.contains("all") && out.contains("arrived in order"),
        "{out}"
    );
}

/// The WebGL bridge (`src/WebGL/longlink.jslib`) as it is, in headless Chromium with the
/// Emscripten runtime's few parts it uses, against the chat server: a resumable session over
/// it, a drop (close code 4000) and the resume on a new socket, a goodbye (1000), a refused
/// connection (1006). Then the C# threadless `Client` over `WebGLSocket` over it (under
/// Mono, the bridge's calls relayed to the page), the page dropping its sockets at random
/// moments while a room streams: every message once and in order. Needs node, playwright-core (`CHAT_TEST_NODE_MODULES`, or
/// tests/browser/node_modules) and Chromium (`CHAT_TEST_CHROMIUM`); scripts/test.sh installs
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webgl_bridge_in_chromium_against_the_chat_server() {
    let node = std::env::var("CHAT_TEST_NODE").unwrap_or_else(|_| "node".into());
    build::require(&node, "--version");
    let modules = std::env::var("CHAT_TEST_NODE_MODULES").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/node_modules").into()
    });
    assert!(
        Path::new(&modules).join("playwright-core").is_dir(),
        "no playwright-core in {modules}: run scripts/test.sh (npm ci in tests/browser)"
    );
    let chromium =
        std::env::var("CHAT_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "no Chromium at {chromium}: run scripts/test.sh"
    );
    let dir = build();
    let server = TestServer::start(Enc::Json).await;
    let webgl = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/csharp_client/webgl.mjs");
    let bridge = vec![format!("ws://{}/", server.ws), common::token(4242)];
    let client = vec![
        "client".to_string(),
        dir.0.join("ChatTests.exe").display().to_string(),
        format!("ws=ws://{}/", server.ws),
        format!("tcp=tcp://{}", server.addr(Transport::Tcp)),
        format!("token_a={}", common::token(4243)),
        format!("token_b={}", common::token(4244)),
    ];
    for (args, ok) in [(bridge, "webgl ok"), (client, "webgl client ok")] {
        let out = tokio::process::Command::new(&node)
            .arg(webgl)
            .args(&args)
            .env("CHAT_TEST_NODE_MODULES", &modules)
            .env("CHAT_TEST_CHROMIUM", &chromium)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(300), out)
            .await
            .expect("webgl.mjs ends in time")
            .expect("node runs");
        let said = String::from_utf8_lossy(&out.stdout);
        let errors = String::from_utf8_lossy(&out.stderr);
        eprintln!("{said}{errors}");
        assert!(
            out.status.success() && said.contains(ok),
            "{said}\n{errors}"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csharp_client_against_the_chat_server() {
    let dir = build();
    let json = TestServer::start(Enc::Json).await;
    let pb = TestServer::start(Enc::Protobuf).await;
    let short = TestServer::start_with(Enc::Json, |c| {
        c.gate.resume_window = Duration::from_secs(1);
    })
    .await;
    let mut proxies = HashMap::new();
    proxies.insert(
        "stream_tcp_json",
        Proxy::start(json.tcp).await.expect("proxy"),
    );
    proxies.insert("stream_ws_pb", Proxy::start(pb.ws).await.expect("proxy"));
    proxies.insert("short", Proxy::start(short.tcp).await.expect("proxy"));
    proxies.insert("threadless_pb", Proxy::start(pb.tcp).await.expect("proxy"));
    let mut args = vec![
        "chat".to_string(),
        format!("json_tcp=tcp://{}", json.addr(Transport::Tcp)),
        format!("json_ws=ws://{}/", json.addr(Transport::Ws)),
        format!("pb_tcp=tcp://{}", pb.addr(Transport::Tcp)),
        format!("pb_ws=ws://{}/", pb.addr(Transport::Ws)),
        format!("http={}", json.ws),
    ];
    args.push(format!(
        "stream_tcp_json=tcp://{}",
        proxies["stream_tcp_json"].addr()
    ));
    args.push(format!(
        "stream_ws_pb=ws://{}/",
        proxies["stream_ws_pb"].addr()
    ));
    args.push(format!("short=tcp://{}", proxies["short"].addr()));
    args.push(format!(
        "threadless_pb=tcp://{}",
        proxies["threadless_pb"].addr()
    ));

    let (move_a, move_b, moved) = scripted_move().await;
    args.push(format!("move_a=tcp://{move_a}"));
    args.push(format!("move_b=tcp://{move_b}"));

    let mut seed = 7;
    let log = converse(&dir.0.join("ChatTests.exe"), &args, |verb, name| {
        let proxy = &proxies[name];
        seed += 1;
        match verb {
            // Cut each connection after a random 0..8 KiB, mid frame too.
            "cuts" => {
                proxy.random_cuts(seed, 0, 8 * 1024);
                proxy.cut_after(2 * 1024);
            }
            "calm" => {
                proxy.no_random_cuts();
                proxy.cut_all();
            }
            // Every connection cut at once: the client cannot resume.
            "down" => {
                proxy.random_cuts(seed, 0, 1);
                proxy.cut_all();
            }
            other => panic!("CTL {other}?"),
        }
    })
    .await;
    assert!(log.contains("chat: all passed"), "{log}");
    moved.await.expect("the scripted servers saw the move");
    // The console sample: logs in, watches room 1, says hello and reads it back.
    let out = tokio::process::Command::new("mono")
        .arg(dir.0.join("ChatSample.exe"))
        .arg(format!("ws://{}/", json.ws))
        .arg(common::token(77))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(RUN_TIMEOUT, out)
        .await
        .expect("the sample ends in time")
        .expect("mono runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the sample: {:?}\n{said}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("logged in as 77") && said.contains("77: hello from C#"),
        "{said}"
    );
    for server in [json, pb, short] {
        server.shutdown().await;
    }
}
