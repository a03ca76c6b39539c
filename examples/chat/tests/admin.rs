//! The chat server's `[admin]` listeners, black-box over loopback: `/metrics` counts chat
//! traffic (checked as deltas: the recorder is process-wide), `/healthz` answers, and the
//! console's `stats` shows the chat's sessions and rooms and `kick <uid>` kicks a user (the
//! chat's goodbye, then the close).

mod common;

use std::time::Duration;

use common::process::{admin_addr, serve_with_ulimit};
use common::{Enc, Reply, TEST_TIMEOUT, TestServer, Transport, bounded};
use longlink_testkit::Console;
use longlink_testkit::http::http_get;
use longlink_testkit::prometheus::{delta, scrape, scrape_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_healthz_and_console_on_the_chat_server() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start_with(Enc::Json, |c| {
            c.admin.console_addr = "127.0.0.1:0".into();
        })
        .await;
        let admin = server.admin.expect("admin listener");
        let healthz = http_get(admin, "/healthz").await;
        assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok\n"));
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
        let after = scrape_until(admin, "the handler histogram", |now| {
            delta(
                &before,
                now,
                r#"longlink_handler_seconds_count{msg="C2S_Message"}"#,
            ) >= 3.0
        })
        .await;
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
        let mut console = Console::connect(console).await;
        let stats = console.run("stats").await;
        assert!(stats.contains("sessions: 2\n"), "{stats}");
        assert!(stats.contains("rooms: 1\n"), "{stats}");
        assert!(stats.contains("connections: 2\n"), "{stats}");
        assert!(stats.contains("messages_per_sec: "), "{stats}");
        assert_eq!(console.run("kick 501").await, "kicked 1\n");
        // The chat's goodbye first (the default reason), then the close.
        match ann.recv().await {
            Reply::Kick(k) => assert_eq!(k.reason, "kicked"),
            other => panic!("expected S2C_Kick, got {other:?}"),
        }
        ann.expect_closed().await;
        let unknown = console.run("reboot").await;
        assert!(unknown.starts_with("unknown command: reboot"), "{unknown}");
        console.send_raw(b"quit\n").await;
        assert!(
            console.until_prompt().await.is_err(),
            "quit closes the console"
        );

        server.shutdown().await;
    })
    .await;
}

/// Issue 14, item 3, on the real binary: with 1,024 open files (soft and hard), 1,100 sockets
/// that send one byte to the admin port and stall would hold every descriptor if all were
/// kept, and `/healthz` would never answer (the accept fails, EMFILE). At most 256 admin
/// connections stay open (a new one closes the oldest) and a head must come within 5 s:
/// `/healthz` answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_1100_stalled_admin_sockets_would_take_every_descriptor() {
    bounded(TEST_TIMEOUT, async {
        use tokio::io::AsyncWriteExt;
        let mut s =
            serve_with_ulimit(Enc::Json, "max_conn_num = 500", "ulimit -S -H -n 1024").await;
        let admin = admin_addr(&s.proc).await;
        let mut slow = Vec::new();
        for _ in 0..1100 {
            let mut c = tokio::net::TcpStream::connect(admin)
                .await
                .expect("connect");
            c.write_all(b"G").await.expect("write one byte");
            slow.push(c);
        }
        let began = std::time::Instant::now();
        let healthz = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                // A connection the server could not accept yet waits in its backlog.
                if let Ok(reply) = longlink_testkit::http::try_http_get(admin, "/healthz").await {
                    return reply;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "/healthz did not answer within 2 s of 1,100 stalled sockets; stderr:\n{}",
                s.proc.stderr()
            )
        });
        assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok\n"));
        eprintln!("/healthz answered in {:?}", began.elapsed());
        drop(slow);
        s.proc.signal("TERM");
        assert_eq!(
            s.proc.wait().await.code(),
            Some(0),
            "stderr:\n{}",
            s.proc.stderr()
        );
    })
    .await;
}
