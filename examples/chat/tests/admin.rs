//! The chat server's `[admin]` listeners, black-box over loopback: `/metrics` counts chat
//! traffic (checked as deltas: the recorder is process-wide), `/healthz` answers, and the
//! console's `stats` shows the chat's sessions and rooms and `kick <uid>` kicks a user (the
//! chat's goodbye, then the close).

mod common;

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
