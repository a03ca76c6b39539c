//! A resumable client against a bare TCP peer that refuses a resume with `"retry"` (what a
//! cluster gate says when moving the session from another gate failed): the client keeps
//! its session, drops that connection, and resumes again after its backoff.

mod peer;

use std::time::Duration;

use longlink_client::{ClientConfig, Event, Messages, ResumableClient, ResumeOptions};
use peer::{Hello, TIMEOUT, accept, next, read_json, write_json};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

#[tokio::test]
async fn a_retry_refusal_keeps_the_session_and_resumes_again_after_the_backoff() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let config = ClientConfig::tcp(listener.local_addr().unwrap().to_string());
    let mut messages = Messages::new();
    messages.register::<Hello>().unwrap();
    let options = ResumeOptions {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..ResumeOptions::default()
    };
    let server = async {
        let mut first = accept(&listener).await;
        assert_eq!(read_json(&mut first).await, json!({"LL_SessionStart": {}}));
        let session = json!({"LL_Session": {"token": "t1", "window_s": 30}});
        write_json(&mut first, session).await;
        first
    };
    let (client, mut first) =
        tokio::join!(ResumableClient::connect(config, messages, options), server);
    let mut client = client.expect("a resumable session");
    write_json(&mut first, json!({"Hello": {"name": "a"}})).await;
    assert!(matches!(next(&mut client).await, Event::Message(_)));
    drop(first);
    assert!(matches!(
        next(&mut client).await,
        Event::Reconnecting { attempt: 1, .. }
    ));
    // The gate cannot resume the session just now: "retry".
    let mut second = accept(&listener).await;
    let resume = json!({"LL_Resume": {"token": "t1", "last_seq": 1}});
    assert_eq!(read_json(&mut second).await, resume);
    write_json(
        &mut second,
        json!({"LL_ResumeRefused": {"reason": "retry"}}),
    )
    .await;
    match next(&mut client).await {
        Event::Reconnecting { attempt: 2, cause } => assert!(cause.contains("retry"), "{cause}"),
        other => panic!("expected a second attempt, got {other:?}"),
    }
    // The refused connection is closed, with nothing more sent on it.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(TIMEOUT, second.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?} {rest:?}");
    // The next attempt resumes the same session.
    let mut third = accept(&listener).await;
    assert_eq!(read_json(&mut third).await, resume);
    let resumed = json!({"LL_Resumed": {"token": "t2", "last_seq": 0}});
    write_json(&mut third, resumed).await;
    assert!(matches!(
        next(&mut client).await,
        Event::Resumed { resent: 0 }
    ));
    write_json(&mut third, json!({"Hello": {"name": "b"}})).await;
    assert!(matches!(next(&mut client).await, Event::Message(_)));
}
