//! The chat server's `[admin]` listeners, black-box over loopback: `/metrics` counts chat
//! traffic (checked as deltas: the recorder is process-wide), `/healthz` answers, and the
//! console's `stats` shows the chat's sessions and rooms and `kick <uid>` closes a user.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Enc, TIMEOUT, TestServer, Transport, bounded};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path`: the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("admin listener");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut out))
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8(out).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Every sample line of Prometheus text as `name{labels}` to value; each line checked.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(!name.is_empty() && !name.contains(['{', '"']), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        if series.len() > name.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
        }
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        out.insert(series.to_owned(), value);
    }
    out
}

async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    parse(&body)
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}

/// A console session: commands in, answers up to the next prompt out.
struct Console(TcpStream, Vec<u8>);

impl Console {
    async fn until_prompt(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.1.windows(10).position(|w| w == b"longlink> ") {
                let text = String::from_utf8(self.1[..i].to_vec()).unwrap();
                self.1.drain(..i + 10);
                return Some(text);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(TIMEOUT, self.0.read(&mut chunk))
                .await
                .expect("console answers in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.1.extend_from_slice(&chunk[..n]);
        }
    }

    async fn run(&mut self, line: &str) -> String {
        self.0
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.until_prompt().await.expect("an answer")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_healthz_and_console_on_the_chat_server() {
    bounded(async {
        let server = TestServer::start_with(Enc::Json, |c| {
            c.admin.console_addr = "127.0.0.1:0".into();
        })
        .await;
        let admin = server.admin.expect("admin listener");
        assert_eq!(get(admin, "/healthz").await, (200, "ok\n".into()));
        let before = scrape(admin).await;

        // Two users in room 7: one speaks three times, the other hears it.
        let mut ann = server.login(Transport::Tcp, 501).await;
        let mut bob = server.login(Transport::Ws, 502).await;
        ann.watch(7).await;
        bob.watch_until(7, 2).await;
        for i in 0..3 {
            ann.say(7, &format!("hello {i}")).await;
            for c in [&mut ann, &mut bob] {
                assert_eq!(c.expect_message().await.text, format!("hello {i}"));
            }
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let after = loop {
            let now = scrape(admin).await;
            if delta(
                &before,
                &now,
                r#"longlink_handler_seconds_count{msg="C2S_Message"}"#,
            ) >= 3.0
            {
                break now;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "histogram did not move"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let d = |s: &str| delta(&before, &after, s);
        assert!(d(r#"longlink_messages_in_total{msg="C2S_Message"}"#) >= 3.0);
        assert!(d(r#"longlink_messages_in_total{msg="C2S_UserLogin"}"#) >= 2.0);
        assert!(d(r#"longlink_messages_out_total{msg="S2C_Message"}"#) >= 6.0);
        assert!(d(r#"longlink_connections_accepted_total{transport="tcp"}"#) >= 1.0);
        assert!(d(r#"longlink_connections_accepted_total{transport="ws"}"#) >= 1.0);
        assert!(d(r#"longlink_bytes_in_total{transport="ws"}"#) > 0.0);
        assert!(
            after.contains_key(r#"longlink_module_mailbox_depth{module="chat"}"#),
            "mailbox gauge"
        );

        // The console: stats from the chat module, then kick ann.
        let console = server.console.expect("console listener");
        let mut console = Console(TcpStream::connect(console).await.unwrap(), Vec::new());
        assert_eq!(console.until_prompt().await.as_deref(), Some(""));
        let stats = console.run("stats").await;
        assert!(stats.contains("sessions: 2\n"), "{stats}");
        assert!(stats.contains("rooms: 1\n"), "{stats}");
        assert!(stats.contains("connections: 2\n"), "{stats}");
        assert!(stats.contains("messages_per_sec: "), "{stats}");
        assert_eq!(console.run("kick 501").await, "kicked 1\n");
        ann.expect_closed().await;
        let unknown = console.run("reboot").await;
        assert!(unknown.starts_with("unknown command: reboot"), "{unknown}");
        console.0.write_all(b"quit\n").await.unwrap();
        assert_eq!(
            console.until_prompt().await,
            None,
            "quit closes the console"
        );

        server.shutdown().await;
    })
    .await;
}
