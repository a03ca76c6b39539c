//! The demo page in a real browser: Debian's Chromium, driven by playwright-core from
//! `tests/browser/e2e.mjs`, against a chat server started here (JSON, then protobuf). Two
//! pages log in through `/dev/token`, watch one room, and see each other's room messages and
//! a private message.
//!
//! Needs `node`, the npm packages of `tests/browser` (`npm ci` there; or
//! `CHAT_TEST_NODE_MODULES` naming a `node_modules` that has playwright-core) and Chromium
//! (`CHAT_TEST_CHROMIUM`, default `/usr/bin/chromium`); `scripts/test.sh` installs them. When
//! one is missing the test is skipped with the reason, or fails when `CI` is set.
//!
//! The page's session is resumable (the embedded default's `[gate] resume_window = 30`):
//! e2e.mjs also drops a page's socket from inside the page while the other page talks, and
//! checks that it shows "reconnecting…", resumes, and then has every room message exactly once
//! and in order; and that a session that cannot be resumed ends in a new login.
//!
//! Also checks the plain HTTP side of the WebSocket port directly (the page, the scripts, the
//! manifest and `/dev/token` on and off), the protobuf and JSON codecs of the page's client
//! (the npm package `longlink-client` of `clients/typescript`, as build.rs compiled it for
//! the page; [`CLIENT_DIR`]) for the chat messages and the session-resume `LL_` ones against
//! prost and serde through `tests/browser/codec.mjs`, and the client's resume logic with the
//! node unit tests of `tests/browser/resume.mjs` (a fake WebSocket and mock timers); those two
//! need node only (and the package's `node_modules`, for build.rs to compile it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

/// The page's client as build.rs compiled it (`tests/browser/longlink.mjs` imports it).
const CLIENT_DIR: &str = concat!(env!("OUT_DIR"), "/longlink-client");

/// Node, if it runs, and the page's client, if build.rs could compile it.
fn find_node_and_client() -> Result<String, String> {
    let node = find_node()?;
    if !std::path::Path::new(CLIENT_DIR).join("index.js").is_file() {
        return Err(format!(
            "the TypeScript client was not compiled into {CLIENT_DIR}: run `npm ci` in \
             clients/typescript, then rebuild"
        ));
    }
    Ok(node)
}

/// node, node_modules and chromium, or why they are missing.
struct Tools {
    node: String,
    node_modules: PathBuf,
    chromium: PathBuf,
}

/// `CHAT_TEST_NODE` or `node`, if it runs.
fn find_node() -> Result<String, String> {
    let node = std::env::var("CHAT_TEST_NODE").unwrap_or_else(|_| "node".into());
    match std::process::Command::new(&node)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(node),
        Ok(out) => Err(format!("`{node} --version` failed: {:?}", out.status)),
        Err(e) => Err(format!("cannot run {node}: {e}")),
    }
}

fn find_tools() -> Result<Tools, String> {
    let node = find_node_and_client()?;
    let node_modules = std::env::var_os("CHAT_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(BROWSER_DIR).join("node_modules"));
    if !node_modules.join("playwright-core/package.json").is_file() {
        return Err(format!(
            "no playwright-core in {} (run `npm ci` in {BROWSER_DIR})",
            node_modules.display()
        ));
    }
    let chromium = std::env::var_os("CHAT_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.is_file() {
        return Err(format!(
            "no Chromium at {} (apt-get install chromium)",
            chromium.display()
        ));
    }
    Ok(Tools {
        node,
        node_modules,
        chromium,
    })
}

/// The tools, or None to skip (a panic under `CI`).
fn tools_or_skip(test: &str) -> Option<Tools> {
    or_skip(test, find_tools())
}

fn or_skip<T>(test: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(tools) => Some(tools),
        Err(why) if std::env::var_os("CI").is_some() => panic!(
            "CI is set but the browser test cannot run: {why}; scripts/test.sh installs \
             Chromium and the npm packages and sets CHAT_TEST_CHROMIUM / CHAT_TEST_NODE_MODULES"
        ),
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

/// Runs e2e.mjs against `server` with `encoding`; panics with its output on failure.
async fn run_e2e(tools: &Tools, server: &TestServer, encoding: &str) {
    let url = format!("ws://{}/", server.ws);
    let child = tokio::process::Command::new(&tools.node)
        .arg(Path::new(BROWSER_DIR).join("e2e.mjs"))
        .args([url.as_str(), encoding])
        .env("CHAT_TEST_NODE_MODULES", &tools.node_modules)
        .env("CHAT_TEST_CHROMIUM", &tools.chromium)
        .current_dir(BROWSER_DIR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("e2e.mjs finished within 120 s")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "e2e.mjs ({encoding}) failed with {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("e2e ok"),
        "e2e.mjs said: {stdout}\n{stderr}"
    );
    println!("{}", stdout.trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browser_pages_chat_in_json_and_protobuf() {
    let Some(tools) = tools_or_skip("two_browser_pages_chat_in_json_and_protobuf") else {
        return;
    };
    // Chromium's start-up is slow on a busy 2-core machine: a longer bound than `bounded`.
    let work = async {
        for enc in [Enc::Json, Enc::Protobuf] {
            let server = TestServer::start(enc).await;
            let encoding = match enc {
                Enc::Json => "json",
                Enc::Protobuf => "protobuf",
            };
            run_e2e(&tools, &server, encoding).await;
            server.shutdown().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(300), work)
        .await
        .expect("the browser test finished within 300 s");
}

/// Sends one raw HTTP request and returns (status, content type, body).
async fn http_get(addr: std::net::SocketAddr, target: &str) -> (u16, String, String) {
    let reply = longlink_testkit::http::http_get(addr, target).await;
    let content_type = reply.header("Content-Type").unwrap_or_default().to_owned();
    (reply.status, content_type, reply.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_port_serves_the_page_scripts_manifest_and_dev_tokens() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start(Enc::Protobuf).await;
        let ws = server.ws;

        let (status, ctype, body) = http_get(ws, "/").await;
        assert_eq!((status, ctype.as_str()), (200, "text/html; charset=utf-8"));
        assert!(body.contains("<title>longlink chat</title>"), "{body}");
        for (path, needle) in [
            ("/longlink-client/index.js", "from './client.js'"),
            ("/longlink-client/client.js", "export class Client"),
            ("/longlink-client/manifest.js", "export class Manifest"),
            ("/chat.js", "from './longlink-client/index.js'"),
        ] {
            let (status, ctype, body) = http_get(ws, path).await;
            assert_eq!(status, 200, "{path}");
            assert_eq!(ctype, "text/javascript; charset=utf-8", "{path}");
            assert!(body.contains(needle), "{path}: {needle}");
        }
        let (status, _, body) = http_get(ws, "/manifest.json").await;
        assert_eq!(status, 200);
        let manifest: serde_json::Value = serde_json::from_str(&body).expect("JSON manifest");
        assert_eq!(manifest["messages"][1]["name"], "C2S_UserLogin");
        let (status, _, body) = http_get(ws, "/server.json").await;
        assert_eq!((status, body.trim()), (200, r#"{"encoding":"protobuf"}"#));

        // The embedded default has dev tokens on: a token that logs in.
        let (status, _, token) = http_get(ws, "/dev/token?uid=4321").await;
        assert_eq!(status, 200, "{token}");
        let mut c = server.connect(Transport::Ws).await;
        let reply = c.login(&token).await;
        assert_eq!((reply.ret, reply.uid), (1, 4321), "{reply:?}");
        for bad in ["/dev/token", "/dev/token?uid=0", "/dev/token?uid=x"] {
            assert_eq!(http_get(ws, bad).await.0, 400, "{bad}");
        }
        // Another path is still the gate's 400; an upgrade on any path still works.
        assert_eq!(http_get(ws, "/nope").await.0, 400);
        server.shutdown().await;

        // Off when the configuration says so.
        let server = TestServer::start_with(Enc::Json, |c| c.chat.dev_tokens = false).await;
        let (status, _, _) = http_get(server.ws, "/dev/token?uid=5").await;
        assert_eq!(status, 404);
        assert_eq!(http_get(server.ws, "/").await.0, 200);
        server.shutdown().await;
    })
    .await;
}

/// Runs `node codec.mjs tests/manifest.json ARGS..` and returns its output line.
fn codec(node: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(node)
        .env("LONGLINK_CLIENT_DIR", CLIENT_DIR)
        .arg(Path::new(BROWSER_DIR).join("codec.mjs"))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/manifest.json"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "codec.mjs {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Every number of a JSON body as a string (exact 64-bit values for the JS side).
fn numbers_as_strings(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Number(n) => serde_json::Value::String(n.to_string()),
        serde_json::Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| (k, numbers_as_strings(v)))
            .collect(),
        other => other,
    }
}

/// `msg` through the page's client (tests/browser/codec.mjs) both ways, in protobuf and JSON, against prost and serde.
fn agrees<M>(node: &str, name: &str, id: u16, msg: &M)
where
    M: prost::Message
        + serde::Serialize
        + serde::de::DeserializeOwned
        + PartialEq
        + Default
        + std::fmt::Debug,
{
    let expected = serde_json::json!({ name: msg });
    // prost encodes, the JS client decodes.
    let mut payload = id.to_be_bytes().to_vec();
    payload.extend(msg.encode_to_vec());
    let decoded: serde_json::Value =
        serde_json::from_str(&codec(node, &["decode", &hex(&payload)])).expect("JSON");
    assert_eq!(decoded, expected, "JS decode of prost's {msg:?}");
    // the JS client encodes, prost decodes.
    let body = numbers_as_strings(serde_json::to_value(msg).expect("serialize")).to_string();
    let bytes = unhex(&codec(node, &["encode", name, &body]));
    assert_eq!(bytes[..2], id.to_be_bytes(), "{name}: id");
    assert_eq!(
        M::decode(&bytes[2..]).expect("prost decodes"),
        *msg,
        "prost decode of the JS encoding"
    );
    // the JS client's JSON, read by serde.
    let json: serde_json::Value =
        serde_json::from_str(&codec(node, &["json", name, &body])).expect("JSON");
    let back: M = serde_json::from_value(json[name].clone()).expect("serde reads it");
    assert_eq!(back, *msg, "serde read of the JS JSON");
}

#[test]
fn the_js_codec_agrees_with_prost_and_serde() {
    use longlink_chat::msg::*;
    let Some(node) = or_skip(
        "the_js_codec_agrees_with_prost_and_serde",
        find_node_and_client(),
    ) else {
        return;
    };
    agrees(
        &node,
        "S2C_Message",
        6,
        &S2cMessage {
            room_id: u64::MAX,
            from_uid: (1 << 53) + 1,
            to_uid: 0,
            text: "ünïcødé ✓ \"quoted\"".into(),
            ts: i64::MIN,
        },
    );
    agrees(
        &node,
        "S2C_UserLogin",
        2,
        &S2cUserLogin {
            ret: -7,
            msg: String::new(),
            uid: 42,
        },
    );
    agrees(
        &node,
        "S2C_UpdateWatchRoom",
        4,
        &S2cUpdateWatchRoom {
            room_id: 9,
            online: u32::MAX,
        },
    );
    agrees(
        &node,
        "C2S_UserLogin",
        1,
        &C2sUserLogin {
            token: "a.b.c".into(),
            login_plat: i32::MIN,
        },
    );
    agrees(
        &node,
        "C2S_UserHeartBeat",
        0,
        &C2sUserHeartBeat { ptime: -1 },
    );
    agrees(&node, "S2C_Kick", 7, &S2cKick::default());
}

#[test]
fn the_js_resume_messages_agree_with_longlink_wire() {
    use longlink::wire::resume::*;
    let Some(node) = or_skip(
        "the_js_resume_messages_agree_with_longlink_wire",
        find_node_and_client(),
    ) else {
        return;
    };
    agrees(
        &node,
        "LL_SessionStart",
        SESSION_START_ID,
        &LlSessionStart {},
    );
    agrees(
        &node,
        "LL_Session",
        SESSION_ID,
        &LlSession {
            token: "00000000000000a1ffeeddccbbaa99887766554433221100".into(),
            window_s: 30,
        },
    );
    agrees(
        &node,
        "LL_Resume",
        RESUME_ID,
        &LlResume {
            token: "t".into(),
            last_seq: u64::MAX,
        },
    );
    agrees(
        &node,
        "LL_Resumed",
        RESUMED_ID,
        &LlResumed {
            token: "abc".into(),
            last_seq: (1 << 53) + 1,
        },
    );
    agrees(
        &node,
        "LL_ResumeRefused",
        RESUME_REFUSED_ID,
        &LlResumeRefused {
            reason: RefuseReason::Overflow.as_str().into(),
        },
    );
    agrees(&node, "LL_Ack", ACK_ID, &LlAck { seq: 12 });
    // The golden bytes of longlink-wire's resume module.
    assert_eq!(
        codec(&node, &["encode", "LL_Ack", r#"{"seq":"12"}"#]),
        "ffff080c"
    );
    assert_eq!(
        codec(&node, &["json", "LL_Ack", r#"{"seq":"12"}"#]),
        r#"{"LL_Ack":{"seq":12}}"#
    );
}

#[test]
fn the_js_resume_logic_passes_its_node_tests() {
    let Some(node) = or_skip(
        "the_js_resume_logic_passes_its_node_tests",
        find_node_and_client(),
    ) else {
        return;
    };
    let out = std::process::Command::new(&node)
        .args(["--test", "--test-reporter=spec", "resume.mjs"])
        .env("LONGLINK_CLIENT_DIR", CLIENT_DIR)
        .current_dir(BROWSER_DIR)
        .stdin(Stdio::null())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test resume.mjs: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("pass"), "{stdout}");
}

/// The operators' live page (`GET /` on the admin address) in Chromium, through
/// `tests/browser/admin.mjs`, while two users chat: no console error, the figures shown
/// (connections, rates, latency, the mailbox, this node), moving, the charts drawn. Leaves a
/// screenshot at `<target>/tmp/admin-page.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_live_page_shows_moving_figures_in_chromium() {
    let Some(tools) = tools_or_skip("the_admin_live_page_shows_moving_figures_in_chromium") else {
        return;
    };
    let work = async {
        let server = TestServer::start(Enc::Json).await;
        let admin = server.admin.expect("admin listener");
        let mut ann = server.login(Transport::Tcp, 301).await;
        let mut bob = server.login(Transport::Ws, 302).await;
        ann.watch(9).await;
        bob.watch_until(9, 2).await;
        // Load while the page looks: a room message every 20 ms, until the page is done.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let talking = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 20_000 {
                    ann.say(9, &format!("load {i}")).await;
                    ann.expect_message().await;
                    bob.expect_message().await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    i += 1;
                }
            })
        };
        let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-page.png");
        let _ = std::fs::remove_file(&shot);
        let out = tokio::process::Command::new(&tools.node)
            .arg(Path::new(BROWSER_DIR).join("admin.mjs"))
            .arg(format!("http://{admin}/"))
            .arg(&shot)
            .arg("2")
            .env("CHAT_TEST_NODE_MODULES", &tools.node_modules)
            .env("CHAT_TEST_CHROMIUM", &tools.chromium)
            .current_dir(BROWSER_DIR)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .expect("node runs");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        talking.await.expect("the load ran");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("admin ok"),
            "admin.mjs failed with {:?}\n--- stdout\n{stdout}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(shot.is_file(), "a screenshot at {}", shot.display());
        println!("{}\nscreenshot: {}", stdout.trim(), shot.display());
        server.shutdown().await;
    };
    tokio::time::timeout(Duration::from_secs(180), work)
        .await
        .expect("the admin page test finished within 180 s");
}
