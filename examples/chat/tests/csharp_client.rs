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
//!   sent around the cuts each handled once; `SessionLost` after a 1-second window;
//! - the console sample (`clients/csharp/samples/Chat`) logs in, says hello, reads it back.
//!
//! The C# program asks for the proxy's cuts with lines on its stdout (`CTL cuts NAME`,
//! `CTL calm NAME`, `CTL down NAME`) and waits for `OK` on its stdin.
//!
//! Needs `mcs` and `mono` (Debian's `mono-devel`, which scripts/test.sh installs), and node
//! with `clients/typescript/node_modules` for the generator: when one is missing the test
//! fails and says so.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Enc, TestServer, Transport};
use longlink_testkit::Proxy;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CSHARP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/csharp");
const TYPESCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/typescript");
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// A tool that must run, or the test fails with what to do.
fn require(tool: &str, arg: &str) {
    let ok = std::process::Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "cannot run `{tool}`: the C# client's tests need Debian's mono-devel and node with \
         clients/typescript/node_modules; run scripts/test.sh (it installs them)"
    );
}

fn run(cmd: &mut std::process::Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The `.cs` files under `dir`, its folders' too.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|x| x == "cs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Generates Messages.cs from the golden manifest and compiles the test program; returns
/// the scratch directory (with ChatTests.exe and kinds.json).
fn build() -> tempdir::Scratch {
    // One build at a time: both tests write clients/typescript/dist.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    require("mcs", "--version");
    require("mono", "--version");
    let node = std::env::var("CHAT_TEST_NODE").unwrap_or_else(|_| "node".into());
    require(&node, "--version");
    let tsc = Path::new(TYPESCRIPT).join("node_modules/typescript/bin/tsc");
    assert!(
        tsc.is_file(),
        "no {}: run scripts/test.sh (npm ci in clients/typescript)",
        tsc.display()
    );
    run(
        std::process::Command::new(&node)
            .arg(&tsc)
            .args(["-p", "tsconfig.json"])
            .current_dir(TYPESCRIPT),
        "tsc -p clients/typescript",
    );
    let dir = tempdir::Scratch::new("longlink-csharp");
    let golden = Path::new(TYPESCRIPT).join("test/golden/kinds.json");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&golden).expect("golden file")).expect("json");
    let manifest = dir.0.join("manifest.json");
    std::fs::write(&manifest, doc["manifest"].to_string()).expect("write manifest");
    run(
        std::process::Command::new(&node)
            .arg(Path::new(TYPESCRIPT).join("dist/codegen/cli.js"))
            .args(["--manifest".as_ref(), manifest.as_os_str()])
            .args(["--lang", "csharp", "--namespace", "Chat", "--out"])
            .arg(&dir.0),
        "longlink-codegen --lang csharp",
    );
    let mut mcs = std::process::Command::new("mcs");
    mcs.args(["-langversion:7.2", "-warnaserror", "-nologo"])
        .arg(format!("-out:{}", dir.0.join("ChatTests.exe").display()))
        .args(sources(&Path::new(CSHARP).join("src")))
        .arg(dir.0.join("Messages.cs"))
        .args(sources(&Path::new(CSHARP).join("tests")));
    run(
        &mut mcs,
        "mcs (the library, the generated messages, the test program)",
    );
    let mut sample = std::process::Command::new("mcs");
    sample
        .args(["-langversion:7.2", "-warnaserror", "-nologo"])
        .arg(format!("-out:{}", dir.0.join("ChatSample.exe").display()))
        .args(sources(&Path::new(CSHARP).join("src")))
        .arg(dir.0.join("Messages.cs"))
        .args(sources(&Path::new(CSHARP).join("samples/Chat")));
    run(&mut sample, "mcs (the console sample)");
    std::fs::copy(&golden, dir.0.join("kinds.json")).expect("copy golden");
    dir
}

mod tempdir {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory removed when dropped.
    pub(crate) struct Scratch(pub(crate) PathBuf);

    impl Scratch {
        pub(crate) fn new(prefix: &str) -> Scratch {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
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

    let (move_a, move_b, moved) = scripted_move().await;
    args.push(format!("move_a=tcp://{move_a}"));
    args.push(format!("move_b=tcp://{move_b}"));

    let mut child = tokio::process::Command::new("mono")
        .arg(dir.0.join("ChatTests.exe"))
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mono runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s)
            .await
            .ok();
        s
    });
    let mut log = String::new();
    let talk = async {
        let mut seed = 7;
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            let Some(ctl) = line.strip_prefix("CTL ") else {
                eprintln!("{line}");
                log.push_str(&line);
                log.push('\n');
                continue;
            };
            let (verb, name) = ctl.split_once(' ').expect("CTL verb name");
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
            stdin.write_all(b"OK\n").await.expect("answer");
            stdin.flush().await.expect("answer");
        }
    };
    tokio::time::timeout(RUN_TIMEOUT, talk)
        .await
        .expect("the C# tests end in time");
    let status = child.wait().await.expect("mono exits");
    let errors = errors.await.expect("stderr");
    assert!(
        status.success(),
        "mono ChatTests.exe chat: {status}\n{log}\n{errors}"
    );
    assert!(log.contains("chat: all passed"), "{log}\n{errors}");
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

async fn read_frame(s: &mut tokio::net::TcpStream) -> Option<serde_json::Value> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 2];
    s.read_exact(&mut header).await.ok()?;
    let mut body = vec![0; usize::from(u16::from_be_bytes(header))];
    s.read_exact(&mut body).await.ok()?;
    Some(serde_json::from_slice(&body).expect("the client writes JSON"))
}

async fn write_frame(s: &mut tokio::net::TcpStream, v: serde_json::Value) {
    let body = v.to_string().into_bytes();
    let len = u16::try_from(body.len()).expect("short");
    s.write_all(&len.to_be_bytes()).await.expect("write");
    s.write_all(&body).await.expect("write");
}

fn said(text: &str) -> serde_json::Value {
    serde_json::json!({"S2C_Message": {"room_id": 0, "from_uid": 1, "to_uid": 0, "text": text, "ts": 0}})
}

/// Two scripted leaf servers (TCP, JSON) for LL_Move: the first starts a session, sends one
/// message, three volatile ones (not counted) and `LL_Move{after_ms: 100}`, and must see the client's `C2S_Message{"x"}` and its
/// `LL_Ack{seq: 1}` before it leaves; the second must see `LL_Resume{t1, last_seq: 1}` first,
/// answers `LL_Resumed{t2, last_seq: 0}`, must get `"x"` again (never handled), and sends one
/// more message.
async fn scripted_move() -> (
    std::net::SocketAddr,
    std::net::SocketAddr,
    tokio::task::JoinHandle<()>,
) {
    use serde_json::json;
    let a = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let b = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (addr_a, addr_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut s, _) = a.accept().await.expect("accept");
        let first = read_frame(&mut s).await.expect("a first frame");
        assert!(first.get("LL_SessionStart").is_some(), "{first}");
        write_frame(
            &mut s,
            json!({"LL_Session": {"token": "t1", "window_s": 30}}),
        )
        .await;
        write_frame(&mut s, said("before")).await;
        for _ in 0..3 {
            write_frame(&mut s, json!({"S2C_Noise": {}})).await;
        }
        write_frame(&mut s, json!({"LL_Move": {"after_ms": 100}})).await;
        let mut seen = Vec::new();
        while let Some(f) = read_frame(&mut s).await {
            seen.push(f);
        }
        assert!(
            seen.contains(&json!({"C2S_Message": {"room_id": 0, "to_uid": 0, "text": "x"}})),
            "{seen:?}"
        );
        assert_eq!(
            seen.last(),
            Some(&json!({"LL_Ack": {"seq": 1}})),
            "{seen:?}"
        );

        let (mut s, _) = b.accept().await.expect("accept");
        let resume = read_frame(&mut s).await.expect("LL_Resume");
        assert_eq!(resume, json!({"LL_Resume": {"token": "t1", "last_seq": 1}}));
        write_frame(
            &mut s,
            json!({"LL_Resumed": {"token": "t2", "last_seq": 0}}),
        )
        .await;
        let again = read_frame(&mut s).await.expect("the resend");
        assert_eq!(
            again,
            json!({"C2S_Message": {"room_id": 0, "to_uid": 0, "text": "x"}})
        );
        write_frame(&mut s, said("after")).await;
        while read_frame(&mut s).await.is_some() {}
    });
    (addr_a, addr_b, task)
}
