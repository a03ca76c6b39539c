//! Session resume (`resume_window`), black-box over real loopback sockets: a client that
//! loses its socket and comes back within the window loses nothing, both ways; one that
//! comes back late, with an old or forged token, or after too much piled up is refused; a
//! client that never speaks the protocol sees leaf's behaviour.

#![allow(unreachable_pub, dead_code)]

mod bounds;
mod client;
#[path = "../common/mod.rs"]
mod common;
mod server;

use std::time::Duration;

use client::{Client, Link, Msg, Proto, Via};
use longlink::Encoding;
use longlink_testkit::{STEP, bounded, wait_for};
use server::{Stream, config, start};

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const WINDOW: Duration = Duration::from_secs(5);

/// The texts `from..to` as the server streams them.
fn numbers(from: u32, to: u32) -> Vec<String> {
    (from..to).map(|i| i.to_string()).collect()
}

fn stream_msg(proto: Proto, n: u32, from: u32) -> Vec<u8> {
    let msg = Stream { n, from };
    common::Wire(proto.0).encode("Stream", 1, &msg)
}

async fn drop_and_resume(via: Via, encoding: Encoding) {
    let server = start(config(encoding, WINDOW, 1024)).await;
    let addr = match via {
        Via::Tcp => server.tcp,
        Via::Ws => server.ws,
    };
    let mut c = Client::start(via, addr, encoding).await;
    let first = server.agents()[0];
    c.sent += 1; // Stream is an application message too
    let _ = c.link.send(stream_msg(c.proto, 300, 0)).await;
    assert!(c.read_until(100).await);
    // The socket drops (no close from the client's side the server could tell from a
    // crash): the session waits.
    c.link = Link::connect(via, addr).await;
    let last = c.resume(addr).await.expect("resumed");
    assert_eq!(last, 1, "the server handled the one Stream message");
    assert!(
        c.read_until(300).await,
        "the rest of the stream after the resume"
    );
    assert_eq!(c.texts, numbers(0, 300), "every message once, in order");
    // Both ways after the resume.
    c.send_echo("after").await;
    loop {
        match c.next(STEP).await.expect("the echo") {
            Msg::Echo(t) => {
                assert_eq!(t, "after");
                break;
            }
            _ => continue,
        }
    }
    server.settle().await;
    assert_eq!(server.events_of(first), ["new", "resume", "msg:after"]);
    let agents = server.agents();
    // Two sockets that came and went without a session: the one replaced above, and the one
    // that resumed (its own agent merges into the session: new, then close).
    for a in &agents[1..] {
        assert_eq!(server.events_of(*a), ["new", "close"]);
    }
    // The session's agent has the new socket's transport.
    let gate_agents = server.gate.agents();
    assert_eq!(gate_agents.len(), 1);
    assert_eq!(gate_agents[0].id(), first);
    server.shutdown().await;
}

#[tokio::test]
async fn a_stream_survives_a_drop_tcp_json() {
    bounded(TEST_TIMEOUT, drop_and_resume(Via::Tcp, Encoding::Json)).await;
}

#[tokio::test]
async fn a_stream_survives_a_drop_tcp_protobuf() {
    bounded(TEST_TIMEOUT, drop_and_resume(Via::Tcp, Encoding::Protobuf)).await;
}

#[tokio::test]
async fn a_stream_survives_a_drop_ws_json() {
    bounded(TEST_TIMEOUT, drop_and_resume(Via::Ws, Encoding::Json)).await;
}

#[tokio::test]
async fn a_stream_survives_a_drop_ws_protobuf() {
    bounded(TEST_TIMEOUT, drop_and_resume(Via::Ws, Encoding::Protobuf)).await;
}

#[tokio::test]
async fn an_old_or_forged_token_is_refused_and_the_connection_stays_fresh() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json, WINDOW, 1024)).await;
        let mut c = Client::start(Via::Tcp, server.tcp, Encoding::Json).await;
        let old = c.token.clone();
        c.resume(server.tcp).await.expect("resumed");
        assert_ne!(c.token, old, "a new token at every resume");
        // Anything sent on the new socket shows the client has the new token.
        c.send_echo("confirm").await;
        assert!(c.read_until(1).await);
        let proto = Proto(Encoding::Json);
        for (token, reason) in [
            (old.clone(), "replaced"),
            ("nope".to_owned(), "unknown"),
            (format!("{}{}", &old[..16], "0".repeat(32)), "replaced"),
            (format!("{}{}", "f".repeat(16), &old[16..]), "unknown"),
        ] {
            let mut l = Link::connect(Via::Tcp, server.tcp).await;
            l.send(proto.resume(&token, 0)).await;
            let answer = proto.decode(&l.recv_within(STEP).await.expect("an answer"));
            assert_eq!(answer, Msg::Refused(reason.into()), "token {token}");
            // Still a working connection.
            l.send(proto.echo("fresh")).await;
            let echo = proto.decode(&l.recv_within(STEP).await.expect("the echo"));
            assert_eq!(echo, Msg::Echo("fresh".into()));
        }
        // The real session was not disturbed by the attempts.
        c.send_echo("still").await;
        assert!(c.read_until(2).await);
        assert_eq!(c.texts, ["confirm", "still"]);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_resume_after_the_window_is_refused_and_the_close_event_fires_once() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json, Duration::from_secs(1), 1024)).await;
        let mut c = Client::start(Via::Tcp, server.tcp, Encoding::Json).await;
        let first = server.agents()[0];
        c.link = Link::connect(Via::Tcp, server.tcp).await; // the first socket drops
        server.settle().await;
        assert_eq!(
            server.events_of(first),
            ["new"],
            "no close event while it waits"
        );
        server.wait_event(first, "close").await;
        assert_eq!(c.resume(server.tcp).await, Err("expired".into()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.settle().await;
        assert_eq!(server.events_of(first), ["new", "close"]);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn messages_sent_around_a_drop_are_handled_exactly_once() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json, WINDOW, 1024)).await;
        let mut c = Client::start(Via::Tcp, server.tcp, Encoding::Json).await;
        let first = server.agents()[0];
        for i in 0..40 {
            c.send_echo(&format!("m{i}")).await;
        }
        // Drop before reading all the answers (and before any acknowledgement of all).
        assert!(c.read_until(5).await);
        c.link = Link::connect(Via::Tcp, server.tcp).await;
        for i in 40..50 {
            // Sent into the void: the client keeps them and resends after the resume.
            c.sent += 1;
            let p = c.proto.echo(&format!("m{i}"));
            c.unacked.push((c.sent, p));
        }
        let handled = c.resume(server.tcp).await.expect("resumed");
        assert!(
            handled <= 40,
            "the server cannot have handled what never reached it"
        );
        assert!(c.read_until(50).await);
        let want: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        assert_eq!(c.texts, want, "every answer once, in order");
        server.settle().await;
        let msgs: Vec<String> = server
            .events_of(first)
            .into_iter()
            .filter_map(|e| e.strip_prefix("msg:").map(str::to_owned))
            .collect();
        assert_eq!(msgs, want, "every message handled once, in order");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn overflow_while_away_ends_the_session_with_its_reason() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json, WINDOW, 50)).await;
        let mut c = Client::start(Via::Tcp, server.tcp, Encoding::Json).await;
        let first = server.agents()[0];
        c.link = Link::Gone; // dropped
        // Pushed while the client is away: more than resume_buffer.
        let agent = server
            .gate
            .agents()
            .into_iter()
            .find(|a| a.id() == first)
            .unwrap();
        let gate = server.gate.clone();
        wait_for("the session without a socket", || {
            let sockets = gate.connections();
            async move { sockets == 0 }
        })
        .await;
        assert!(agent.is_open(), "the session waits");
        let mut refused = None;
        for _ in 0..100 {
            if let Err(e) = agent.write(&common::Echo { text: "p".into() }) {
                refused = Some(e.to_string());
                break;
            }
        }
        assert!(refused.is_some(), "a write over resume_buffer is refused");
        server.wait_event(first, "close").await;
        assert_eq!(c.resume(server.tcp).await, Err("overflow".into()));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_resume_takes_over_a_half_open_socket() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json, WINDOW, 1024)).await;
        let mut c = Client::start(Via::Tcp, server.tcp, Encoding::Json).await;
        let first = server.agents()[0];
        c.send_echo("one").await;
        assert!(c.read_until(1).await);
        // The old socket stays open (the server cannot know it is dead): the resume takes
        // the session from it.
        let old = std::mem::replace(&mut c.link, Link::connect(Via::Tcp, server.tcp).await);
        c.resume(server.tcp)
            .await
            .expect("resumed over the half-open socket");
        c.send_echo("two").await;
        assert!(c.read_until(2).await);
        assert_eq!(c.texts, ["one", "two"]);
        // The old socket was closed by the server.
        let mut old = old;
        assert_eq!(old.recv_within(STEP).await, None);
        server.settle().await;
        assert_eq!(
            server.events_of(first),
            ["new", "msg:one", "resume", "msg:two"]
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_client_without_the_protocol_is_closed_on_a_drop_as_before() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json, WINDOW, 1024)).await;
        let proto = Proto(Encoding::Json);
        let mut l = Link::connect(Via::Tcp, server.tcp).await;
        l.send(proto.echo("hi")).await;
        assert_eq!(
            proto.decode(&l.recv_within(STEP).await.unwrap()),
            Msg::Echo("hi".into())
        );
        let id = server.agents()[0];
        drop(l);
        server.wait_event(id, "close").await;
        assert_eq!(server.events_of(id), ["new", "msg:hi", "close"]);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_server_only_message_from_a_client_closes_it() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json, WINDOW, 1024)).await;
        let proto = Proto(Encoding::Json);
        let mut l = Link::connect(Via::Tcp, server.tcp).await;
        l.send(proto.forbidden_session()).await;
        assert_eq!(l.recv_within(STEP).await, None, "closed");
        server.shutdown().await;
    })
    .await;
}

/// Streams `n` numbered messages to a resumable client through a proxy that cuts every
/// socket after a random number of bytes (mid-frame too); the client resumes after each
/// cut. Returns how many sockets it took.
async fn through_random_cuts(via: Via, encoding: Encoding, n: u32, seed: u64) -> usize {
    let server = start(config(encoding, WINDOW, 1024)).await;
    let target = match via {
        Via::Tcp => server.tcp,
        Via::Ws => server.ws,
    };
    let proxy = longlink_testkit::Proxy::start(target).await.unwrap();
    proxy.random_cuts(seed, 300, 6000);
    let mut c = Client::start(via, proxy.addr(), encoding).await;
    let first = server.agents()[0];
    c.sent += 1;
    let _ = c.link.send(stream_msg(c.proto, n, 0)).await;
    let mut resumes = 0;
    while !c.read_until(u64::from(n)).await {
        // Cut: come back until a resume goes through (a cut may hit the resume itself).
        loop {
            match c.resume(proxy.addr()).await {
                Ok(_) => break,
                Err(e) if e == "no answer to LL_Resume" => continue,
                Err(e) => panic!("resume refused: {e}"),
            }
        }
        resumes += 1;
        assert!(resumes < 10_000, "no progress");
    }
    assert_eq!(c.texts, numbers(0, n), "every message once, in order");
    server.settle().await;
    assert_eq!(server.events_of(first)[0], "new");
    assert!(!server.events_of(first).contains(&"close".to_owned()));
    server.shutdown().await;
    proxy.accepted()
}

#[tokio::test]
async fn random_cuts_lose_nothing_tcp_json() {
    bounded(TEST_TIMEOUT, async {
        let sockets = through_random_cuts(Via::Tcp, Encoding::Json, 3000, 1).await;
        assert!(sockets > 5, "the proxy cut {sockets} sockets");
    })
    .await;
}

#[tokio::test]
async fn random_cuts_lose_nothing_tcp_protobuf() {
    bounded(TEST_TIMEOUT, async {
        let sockets = through_random_cuts(Via::Tcp, Encoding::Protobuf, 3000, 2).await;
        assert!(sockets > 5, "the proxy cut {sockets} sockets");
    })
    .await;
}

#[tokio::test]
async fn random_cuts_lose_nothing_ws_json() {
    bounded(TEST_TIMEOUT, async {
        let sockets = through_random_cuts(Via::Ws, Encoding::Json, 3000, 3).await;
        assert!(sockets > 5, "the proxy cut {sockets} sockets");
    })
    .await;
}

#[tokio::test]
async fn random_cuts_lose_nothing_ws_protobuf() {
    bounded(TEST_TIMEOUT, async {
        let sockets = through_random_cuts(Via::Ws, Encoding::Protobuf, 3000, 4).await;
        assert!(sockets > 5, "the proxy cut {sockets} sockets");
    })
    .await;
}

#[tokio::test]
async fn a_resume_whose_answer_was_lost_can_be_tried_again_with_the_same_token() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json, WINDOW, 1024)).await;
        let mut c = Client::start(Via::Tcp, server.tcp, Encoding::Json).await;
        c.send_echo("one").await;
        assert!(c.read_until(1).await);
        let token = c.token.clone();
        // A resume whose socket drops before the client reads the answer (its new token).
        let mut lost = Link::connect(Via::Tcp, server.tcp).await;
        lost.send(c.proto.resume(&token, 1)).await;
        let gate = server.gate.clone();
        wait_for("the server's answer to be sent", || {
            let n = gate.agents().len();
            async move { n == 1 } // the resuming socket's own agent merged away
        })
        .await;
        drop(lost);
        // The client only has the old token: it still resumes, once.
        assert_eq!(c.token, token);
        c.resume(server.tcp)
            .await
            .expect("resumed with the token before the lost answer");
        c.send_echo("two").await;
        assert!(c.read_until(2).await);
        assert_eq!(c.texts, ["one", "two"]);
        // The client has shown it has the newest token: the old one is dead now.
        let mut l = Link::connect(Via::Tcp, server.tcp).await;
        l.send(c.proto.resume(&token, 2)).await;
        let answer = c.proto.decode(&l.recv_within(STEP).await.unwrap());
        assert_eq!(answer, Msg::Refused("replaced".into()));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_resumed_socket_starts_with_fresh_liveness() {
    bounded(TEST_TIMEOUT, async {
        let mut config = config(Encoding::Json, WINDOW, 1024);
        config.idle_timeout = Duration::from_secs(1);
        let server = start(config).await;
        let mut c = Client::start(Via::Tcp, server.tcp, Encoding::Json).await;
        // Silent past idle_timeout: the server drops the socket, the session waits.
        assert_eq!(
            c.next(Duration::from_secs(3)).await,
            None,
            "dropped for idleness"
        );
        c.resume(server.tcp).await.expect("resumed");
        // The new socket is not idle: it lives as long as a new connection would.
        tokio::time::sleep(Duration::from_millis(700)).await;
        c.send_echo("alive").await;
        assert!(
            c.read_until(1).await,
            "the resumed socket was dropped at once"
        );
        assert_eq!(c.texts, ["alive"]);
        server.shutdown().await;
    })
    .await;
}

/// Closes the client's WebSocket with `code`.
async fn ws_close(link: &mut Link, code: u16) {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let Link::Ws(ws) = link else {
        panic!("not a WebSocket")
    };
    let frame = CloseFrame {
        code: code.into(),
        reason: "".into(),
    };
    ws.close(Some(frame)).await.expect("close frame sent");
}

#[tokio::test]
async fn a_websocket_closed_normally_ends_its_session_any_other_close_keeps_it() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json, WINDOW, 1024)).await;
        // 4000 (an application's own code, e.g. a page going to the background): kept.
        let mut c = Client::start(Via::Ws, server.ws, Encoding::Json).await;
        let first = server.agents()[0];
        ws_close(&mut c.link, 4000).await;
        c.resume(server.ws).await.expect("kept after close 4000");
        server.settle().await;
        assert!(!server.events_of(first).contains(&"close".to_owned()));
        // 1000, normal closure: the client's goodbye for good.
        ws_close(&mut c.link, 1000).await;
        server.wait_event(first, "close").await;
        assert_eq!(c.resume(server.ws).await, Err("unknown".into()));
        server.shutdown().await;
    })
    .await;
}
