//! What an operator looks at, black-box over loopback: `/stats.json` and the live page's
//! HTML on the admin address, the `process_*` and build-info series of `/metrics`, the
//! server API's error codes, and the heap profile of the real binary (jemalloc's profiler,
//! from the console and from `GET /debug/pprof/heap`, decoded as pprof). The page in
//! Chromium is in `browser.rs`.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use common::process::{admin_addr, serve_via};
use common::*;
use longlink_testkit::Console;
use longlink_testkit::http::{http_get, http_request};
use longlink_testkit::prometheus::{scrape, scrape_until, value};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn stats(admin: SocketAddr) -> Value {
    let reply = http_get(admin, "/stats.json").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("Content-Type"), Some("application/json"));
    serde_json::from_str(&reply.body).expect("stats.json is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_json_shows_connections_rates_latency_mailboxes_and_history() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start(Enc::Json).await;
        let admin = server.admin.expect("admin listener");
        let mut ann = server.login(Transport::Tcp, 601).await;
        let mut bob = server.login(Transport::Ws, 602).await;
        ann.watch(3).await;
        bob.watch_until(3, 2).await;
        // Talk until a sample has seen messages go both ways and the history has grown.
        let mut i = 0;
        let s = loop {
            ann.say(3, &format!("tick {i}")).await;
            for c in [&mut ann, &mut bob] {
                c.expect_message().await;
            }
            i += 1;
            let s = stats(admin).await;
            let len = s["history"]["t"].as_array().map_or(0, Vec::len);
            if s["rates"]["messages_in"].as_f64() > Some(0.0)
                && s["rates"]["messages_out"].as_f64() > Some(0.0)
                && len >= 2
            {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(s["connections"]["tcp"].as_f64() >= Some(1.0), "{s}");
        assert!(s["connections"]["ws"].as_f64() >= Some(1.0), "{s}");
        assert!(s["rates"]["bytes_in"].as_f64() > Some(0.0), "{s}");
        assert!(s["latency"]["p99"].as_f64() > Some(0.0), "{s}");
        assert!(
            s["latency"]["p50"].as_f64() <= s["latency"]["p99"].as_f64(),
            "{s}"
        );
        let by_msg = s["latency_by_message"].as_array().expect("rows");
        assert!(by_msg.iter().any(|r| r["msg"] == "C2S_Message"), "{s}");
        assert_eq!(s["mailboxes"][0]["module"], "chat", "{s}");
        assert_eq!(s["nodes"][0]["node"], "local", "{s}");
        assert!(s["nodes"][0]["sessions"].as_u64() >= Some(2), "{s}");
        for key in ["started", "waiting", "resumed"] {
            assert!(s["sessions"][key].is_number(), "sessions.{key}: {s}");
        }
        for reason in ["unknown", "expired", "replaced", "overflow", "retry"] {
            assert!(
                s["sessions"]["refused"][reason].is_number(),
                "refused.{reason}: {s}"
            );
        }
        assert!(s["queue_full"]["drops"].is_number(), "{s}");
        let history = &s["history"];
        let len = history["t"].as_array().unwrap().len();
        for column in [
            "connections_tcp",
            "connections_ws",
            "messages_in",
            "messages_out",
            "bytes_in",
            "bytes_out",
            "queue_full",
            "latency_p50",
            "latency_p99",
        ] {
            assert_eq!(
                history[column].as_array().map(Vec::len),
                Some(len),
                "{column}"
            );
        }

        // The page: one self-contained file that loads nothing but stats.json.
        let page = http_get(admin, "/").await;
        assert_eq!(page.status, 200);
        assert_eq!(
            page.header("Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert!(page.body.contains("fetch('stats.json'"), "polls stats.json");
        for outside in ["http://", "https://", "src=", "@import"] {
            assert!(!page.body.contains(outside), "the page loads {outside}");
        }
        let csp = page.header("Content-Security-Policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_series_and_build_info_parse_and_move() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start(Enc::Json).await;
        let admin = server.admin.expect("admin listener");
        let before = scrape(admin).await; // every line checked by the parser
        let now = now_unix() as f64;
        let v = |m: &_, s: &str| value(m, s);
        assert_eq!(v(&before, "longlink_build_info{version=\"0.1.0\"}"), 1.0);
        let start = v(&before, "process_start_time_seconds");
        assert!(
            start > now - 86_400.0 && start <= now + 1.0,
            "start {start}, now {now}"
        );
        assert!(v(&before, "process_resident_memory_bytes") > 1e6);
        assert!(v(&before, "process_max_fds") >= v(&before, "process_open_fds"));
        assert!(v(&before, "process_open_fds") >= 3.0);

        // This process is the server: burn some CPU and hold more sockets.
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let mut clients = Vec::new();
        for _ in 0..10 {
            clients.push(server.connect(Transport::Tcp).await);
        }
        let after = scrape_until(admin, "more descriptors open", |m| {
            v(m, "process_open_fds") >= v(&before, "process_open_fds") + 10.0
        })
        .await;
        assert!(
            v(&after, "process_cpu_seconds_total") > v(&before, "process_cpu_seconds_total"),
            "CPU time moves"
        );
        drop(clients);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_carry_a_stable_code_beside_the_message() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start_with(Enc::Json, |c| c.admin.api_key = "k".into()).await;
        let admin = server.admin.expect("admin listener");
        let auth = [("Authorization", "Bearer k")];
        for (method, path, headers, body, status, code) in [
            ("POST", "/api/v1/push", &[][..], "{}", 401, "unauthorized"),
            ("POST", "/api/v1/push", &auth[..], "{", 400, "bad_body"),
            (
                "POST",
                "/api/v1/push",
                &auth[..],
                r#"{"uid": "x", "message": {}}"#,
                400,
                "bad_body",
            ),
            (
                "POST",
                "/api/v1/push",
                &auth[..],
                r#"{"uid": 1, "message": {"S2C_Nope": {}}}"#,
                400,
                "bad_message",
            ),
            (
                "POST",
                "/api/v1/broadcast",
                &auth[..],
                r#"{"group": "room", "message": {"S2C_Message": {}}}"#,
                400,
                "bad_group",
            ),
            ("GET", "/api/v1/online/abc", &auth[..], "", 400, "bad_uid"),
            ("GET", "/api/v1/nothing", &auth[..], "", 404, "not_found"),
        ] {
            let reply = http_request(admin, method, path, headers, body.as_bytes()).await;
            assert_eq!(reply.status, status, "{method} {path} {body}: {reply:?}");
            let answer: Value = serde_json::from_str(&reply.body).expect("JSON error");
            assert_eq!(answer["code"], code, "{method} {path} {body}: {answer}");
            assert!(
                answer["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{answer}"
            );
        }
        let big = vec![b' '; 70 * 1024];
        let reply = http_request(admin, "POST", "/api/v1/kick", &auth, &big).await;
        assert_eq!(reply.status, 400);
        assert!(
            reply.body.contains("\"code\":\"body_too_large\""),
            "{reply:?}"
        );
        server.shutdown().await;
    })
    .await;
}

/// `method path` with the key (or without), the status and the raw body (a profile is
/// binary).
async fn http_bytes(
    admin: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(admin)
        .await
        .expect("connect");
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n{auth}\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(TEST_TIMEOUT, s.read_to_end(&mut out))
        .await
        .expect("an answer in time")
        .expect("read");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let status = String::from_utf8_lossy(&out[9..12])
        .parse()
        .expect("a status");
    (status, out[split + 4..].to_vec())
}

/// Checks a gzip-compressed pprof heap profile: its sample types, and that it has samples,
/// locations and the binary's mapping.
fn check_pprof(gz: &[u8]) {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .expect("gzip");
    let fields = pb_fields(&raw);
    let count = |n: u32| fields.iter().filter(|(f, _)| *f == n).count();
    let strings: Vec<String> = fields
        .iter()
        .filter_map(|(f, v)| match (f, v) {
            (6, PbValue::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect();
    assert!(strings.iter().any(|s| s == "inuse_space"), "{strings:?}");
    assert!(strings.iter().any(|s| s == "bytes"), "{strings:?}");
    assert!(count(1) >= 1, "a sample type");
    assert!(count(2) >= 1, "samples");
    assert!(count(4) >= 1, "locations");
    assert!(count(3) >= 1, "mappings");
    assert!(
        strings.iter().any(|s| s.contains("longlink-chat")),
        "the binary's mapping: {strings:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heap_profile_is_written_and_parses_as_pprof() {
    bounded(TEST_TIMEOUT, async {
        let dir = common::process::TempDir::new("heap");
        let profiles = dir.0.join("profiles");
        let extra = format!(
            "[admin]\napi_key = \"k\"\nconsole_addr = \"127.0.0.1:0\"\nprofile_dir = {:?}\n",
            profiles.display().to_string()
        );
        // One sample every 4 KiB allocated rather than 512 KiB: the few connections below
        // hold too little for the default to be sure of a sample.
        let sample_often = ["env", "_RJEM_MALLOC_CONF=lg_prof_sample:12"];
        let served = serve_via(Enc::Json, &extra, &sample_often).await;
        let admin = admin_addr(&served.proc).await;
        let console = console_addr(&served.proc).await;
        let heap = "/debug/pprof/heap";
        assert_eq!(
            http_bytes(admin, "GET", heap, None).await.0,
            401,
            "behind the key"
        );
        let (status, body) = http_bytes(admin, "GET", heap, Some("k")).await;
        assert_eq!(
            status,
            409,
            "off until started: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(String::from_utf8_lossy(&body).contains("heap_profile_inactive"));

        assert_eq!(
            http_bytes(admin, "POST", "/debug/pprof/heap/start", Some("k"))
                .await
                .0,
            200
        );
        // Something to hold: logged-in connections and their messages.
        let mut clients = Vec::new();
        for uid in 0..40 {
            let mut c = Client::connect(Transport::Ws, Enc::Json, served.ws).await;
            c.login(&token(7000 + uid)).await;
            clients.push(c);
        }
        let (status, profile) = http_bytes(admin, "GET", heap, Some("k")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&profile));
        check_pprof(&profile);

        let mut console = Console::connect(console).await;
        let wrote = console.run("prof heap").await;
        let path = wrote
            .trim()
            .strip_prefix("wrote ")
            .unwrap_or_else(|| panic!("{wrote}"));
        assert!(path.starts_with(&profiles.display().to_string()), "{path}");
        check_pprof(&std::fs::read(path).expect("the profile file"));
        assert_eq!(
            console.run("prof heap stop").await,
            "heap sampling stopped\n"
        );
        assert_eq!(http_bytes(admin, "GET", heap, Some("k")).await.0, 409);
        assert!(console.run("prof").await.starts_with("usage: prof heap"));
        drop(clients);
    })
    .await;
}

/// The console address the binary reports on stderr.
async fn console_addr(p: &common::process::Proc) -> SocketAddr {
    let deadline = tokio::time::Instant::now() + TEST_TIMEOUT;
    loop {
        let stderr = p.stderr();
        if let Some(rest) = stderr.split("admin console listening addr=Some(").nth(1) {
            return rest
                .split(')')
                .next()
                .unwrap_or_default()
                .parse()
                .expect("an address");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no console address:\n{stderr}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_stats_json_lists_every_node_with_its_type_and_connections() {
    let Some(nats) = longlink_testkit::NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        // No api_key anywhere: the page's node list does not need the API.
        let l = common::node::Layout::start(&nats).await;
        let _ann = common::node::login_when_ready(&l.g1, 4101).await;
        let id = |n: &common::node::Node| n.cluster.as_ref().unwrap().node_id().to_owned();
        let g1 = id(&l.g1);
        let admin = l.g2.admin.expect("admin listener");
        longlink_testkit::wait_for("g2's stats.json lists the three nodes", || async {
            let s = stats(admin).await;
            let nodes = s["nodes"].as_array().cloned().unwrap_or_default();
            nodes.len() == 3
                && nodes
                    .iter()
                    .any(|n| n["node"] == g1.as_str() && n["connections"] == 1)
        })
        .await;
        let s = stats(admin).await;
        let mut seen: Vec<(String, String)> = s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["node_type"].as_str().unwrap().into(),
                    n["node"].as_str().unwrap().into(),
                )
            })
            .collect();
        seen.sort();
        let mut want = vec![
            ("chat".to_owned(), id(&l.chat)),
            ("gate".to_owned(), g1.clone()),
            ("gate".to_owned(), id(&l.g2)),
        ];
        want.sort();
        assert_eq!(seen, want, "{s}");
        l.shutdown().await;
    })
    .await;
}
