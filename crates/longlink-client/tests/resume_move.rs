//! A resumable client told `LL_Move` by a stopping gate (a bare TCP peer playing the gate):
//! it serves the connection for the delay given, then connects to the next gate address and
//! resumes there; the first gate hears nothing after the move but the close.

mod peer;

use std::time::Duration;

use longlink_client::{ClientConfig, Event, Messages, ResumableClient, ResumeOptions};
use peer::{Hello, TIMEOUT, accept, next, read_json, write_json};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

#[tokio::test]
async fn ll_move_waits_the_delay_then_resumes_on_the_next_address() {
    let gate1 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gate2 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let config = ClientConfig::tcp(gate1.local_addr().unwrap().to_string());
    let mut messages = Messages::new();
    messages.register::<Hello>().unwrap();
    let options = ResumeOptions {
        addresses: vec![gate2.local_addr().unwrap().to_string()],
        ..ResumeOptions::default()
    };
    let server = async {
        let mut first = accept(&gate1).await;
        assert_eq!(read_json(&mut first).await, json!({"LL_SessionStart": {}}));
        let session = json!({"LL_Session": {"token": "t1", "window_s": 30}});
        write_json(&mut first, session).await;
        first
    };
    let (client, mut first) =
        tokio::join!(ResumableClient::connect(config, messages, options), server);
    let mut client = client.expect("a resumable session");
    write_json(&mut first, json!({"LL_Move": {"after_ms": 300}})).await;
    let told = tokio::time::Instant::now();
    match next(&mut client).await {
        Event::Moving { after } => assert_eq!(after, Duration::from_millis(300)),
        other => panic!("expected Moving, got {other:?}"),
    }
    // The connection is served until the move.
    write_json(&mut first, json!({"Hello": {"name": "a"}})).await;
    assert!(matches!(next(&mut client).await, Event::Message(_)));
    assert!(matches!(
        next(&mut client).await,
        Event::Reconnecting { attempt: 1, .. }
    ));
    let mut second = accept(&gate2).await;
    assert!(
        told.elapsed() >= Duration::from_millis(300),
        "not before the delay"
    );
    let resume = json!({"LL_Resume": {"token": "t1", "last_seq": 1}});
    assert_eq!(read_json(&mut second).await, resume);
    write_json(
        &mut second,
        json!({"LL_Resumed": {"token": "t2", "last_seq": 0}}),
    )
    .await;
    assert!(matches!(
        next(&mut client).await,
        Event::Resumed { resent: 0 }
    ));
    write_json(&mut second, json!({"Hello": {"name": "b"}})).await;
    assert!(matches!(next(&mut client).await, Event::Message(_)));
    // The first gate's connection was closed by the move.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(TIMEOUT, first.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(_))), "{closed:?}");
}
