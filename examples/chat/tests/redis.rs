//! The server API from a Redis channel (`[admin] redis_url`), black-box against Debian's
//! `redis-server` on a free loopback port (`CHAT_TEST_REDIS`, default
//! `/usr/bin/redis-server`; `scripts/test.sh` installs it; the test is skipped without it,
//! and fails under `CI`): a push and a kick published on the channel reach their uid, with no
//! `api_key` set, and still do after Redis restarts; a bad command is counted, and the rest
//! go on.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use longlink_testkit::prometheus::{delta, scrape, scrape_until};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CHANNEL: &str = "longlink.api";

/// A `redis-server` child on `addr`, killed on drop.
struct Redis {
    child: tokio::process::Child,
}

fn redis_binary() -> Option<String> {
    let path = std::env::var("CHAT_TEST_REDIS").unwrap_or_else(|_| "/usr/bin/redis-server".into());
    if std::path::Path::new(&path).is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but there is no redis-server at {path}: scripts/test.sh installs it"
    );
    eprintln!("SKIPPED: no redis-server at {path} (apt-get install redis-server)");
    None
}

impl Redis {
    /// Starts one on `addr` (no persistence) and waits until it answers.
    async fn start(binary: &str, addr: SocketAddr) -> Redis {
        let child = tokio::process::Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &addr.port().to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn redis-server");
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while publish(addr, "nobody", "ping").await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server on {addr} did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Redis { child }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `PUBLISH channel payload` in RESP; the number of subscribers that got it.
async fn publish(addr: SocketAddr, channel: &str, payload: &str) -> std::io::Result<i64> {
    let mut s = TcpStream::connect(addr).await?;
    let mut req = b"*3\r\n$7\r\nPUBLISH\r\n".to_vec();
    for arg in [channel, payload] {
        req.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    s.write_all(&req).await?;
    let mut line = String::new();
    tokio::time::timeout(TIMEOUT, BufReader::new(s).read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::other("no answer"))??;
    line.trim()
        .strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("PUBLISH answered {line:?}")))
}

/// Publishes `command` until the server is subscribed (a subscriber got it): exactly one
/// copy reaches it.
async fn command(addr: SocketAddr, command: serde_json::Value) {
    let deadline = tokio::time::Instant::now() + TEST_TIMEOUT;
    loop {
        if publish(addr, CHANNEL, &command.to_string())
            .await
            .unwrap_or(0)
            >= 1
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nobody subscribed to {CHANNEL}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn push(uid: u64, text: &str) -> serde_json::Value {
    json!({"command": "push", "uid": uid, "message": {"S2C_Message": {
        "room_id": 0, "from_uid": 0, "to_uid": uid, "text": text, "ts": now_unix()}}})
}

async fn expect_push(c: &mut Client, text: &str) {
    assert_eq!(c.expect_message().await.text, text);
}

async fn expect_kick(c: &mut Client, reason: &str) {
    match c.recv().await {
        Reply::Kick(k) => assert_eq!(k.reason, reason),
        other => panic!("expected S2C_Kick, got {other:?}"),
    }
    c.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_kick_published_on_redis_reach_their_uid_also_after_a_restart() {
    let Some(binary) = redis_binary() else { return };
    bounded(TEST_TIMEOUT, async {
        let addr = free_addr();
        let redis = Redis::start(&binary, addr).await;
        // No api_key: redis_url set is enough.
        let server = TestServer::start_with(Enc::Protobuf, |c| {
            c.admin.redis_url = format!("redis://{addr}/");
        })
        .await;
        let admin = server.admin.expect("admin listener");
        let before = scrape(admin).await;
        let mut ann = server.login(Transport::Tcp, 901).await;
        let mut bob = server.login(Transport::Ws, 902).await;

        command(addr, push(901, "from redis")).await;
        expect_push(&mut ann, "from redis").await;
        command(
            addr,
            json!({"command": "kick", "uid": 902, "reason": "banned"}),
        )
        .await;
        expect_kick(&mut bob, "banned").await;
        // A bad command and a push to nobody are counted; the next ones still run.
        command(addr, json!({"command": "reboot"})).await;
        command(addr, push(999_999, "nobody")).await;

        // Redis restarts on the same port: the server subscribes again by itself.
        redis.stop().await;
        let redis = Redis::start(&binary, addr).await;
        command(addr, push(901, "after the restart")).await;
        expect_push(&mut ann, "after the restart").await;
        let mut bob = server.login(Transport::Tcp, 902).await;
        command(addr, json!({"command": "kick", "uid": 902})).await;
        expect_kick(&mut bob, "kicked").await;

        let counted = |m: &_, result: &str, command: &str| {
            let series = format!(
                "longlink_redis_commands_total{{command=\"{command}\",result=\"{result}\"}}"
            );
            delta(&before, m, &series)
        };
        let after = scrape_until(admin, "the Redis commands counted", |m| {
            counted(m, "ok", "kick") >= 2.0
        })
        .await;
        assert!(counted(&after, "ok", "push") >= 2.0);
        assert!(counted(&after, "not_online", "push") >= 1.0);
        assert!(counted(&after, "unknown_command", "unknown") >= 1.0);
        assert_eq!(
            after.get("longlink_redis_connected"),
            Some(&1.0),
            "subscribed again"
        );
        server.shutdown().await;
        redis.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_redis_url_is_a_configuration_error() {
    let mut config = longlink_chat::Config::load(None).expect("the default config");
    config.admin.addr = "127.0.0.1:0".into();
    config.admin.redis_url = "http://not-redis".into();
    let err = longlink::admin::AdminServer::bind(&config.admin)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("admin.redis_url"), "{err}");
}
