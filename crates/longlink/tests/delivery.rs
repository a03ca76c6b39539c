//! Rate limits per incoming type (`MessageOptions::rate_limit`), over real TCP sockets: over
//! its limit a `drop` type's message is dropped and the type's hook answers, the connection
//! and its other types untouched; a `close` type's messages already read are answered, then
//! the connection is closed. And a volatile type sent to a client that does not read: its
//! connection stays, and only what fits behind a short queue is written.
//!
//! The chat example's classes and limits end to end are in `examples/chat/tests/delivery.rs`.

mod common;

use std::time::Duration;

use common::*;
use longlink::processor::{MessageOptions, OverLimit, RateLimit};
use longlink::{App, Encoding, Gate, GateConfig, Processor};
use serde::{Deserialize, Serialize};

/// id 0: echoed; 3 a second per connection, over it dropped (the hook answers `Slow`).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Say {
    #[prost(string, tag = "1")]
    text: String,
}

/// id 1: echoed; 3 a second per connection, over it the connection is closed.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Move {
    #[prost(uint32, tag = "1")]
    n: u32,
}

/// id 2, outgoing: the hook's answer to a `Say` over the limit.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Slow {}

/// id 3: answered with `n` volatile `Blip`s, then one reliable `Say{"done"}`.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Blips {
    #[prost(uint32, tag = "1")]
    n: u32,
}

/// id 4, outgoing, volatile.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Blip {
    #[prost(bytes = "vec", tag = "1")]
    fill: Vec<u8>,
}

const LIMIT: u32 = 3;

fn processor() -> Processor {
    let mut p = Processor::new(Encoding::Json);
    let limit = RateLimit::per_second(LIMIT);
    p.register_with::<Say>(MessageOptions::new().id(0).rate_limit(limit))
        .unwrap();
    p.register_with::<Move>(
        MessageOptions::new()
            .id(1)
            .rate_limit(limit.over(OverLimit::Close)),
    )
    .unwrap();
    p.register_with::<Slow>(MessageOptions::new().id(2).outgoing())
        .unwrap();
    p.register_with::<Blips>(MessageOptions::new().id(3))
        .unwrap();
    p.register_with::<Blip>(MessageOptions::new().id(4).outgoing().volatile())
        .unwrap();
    p.handle(|m: &Say, agent| {
        let _ = agent.write(m);
    })
    .unwrap();
    p.handle(|m: &Move, agent| {
        let _ = agent.write(m);
    })
    .unwrap();
    p.on_limited::<Say>(|agent| {
        let _ = agent.write(&Slow {});
    })
    .unwrap();
    p.handle(|m: &Blips, agent| {
        for _ in 0..m.n {
            let _ = agent.write(&Blip {
                fill: vec![7; 1000],
            });
        }
        let _ = agent.write(&Say {
            text: "done".into(),
        });
    })
    .unwrap();
    p
}

async fn start(config: GateConfig) -> (std::net::SocketAddr, Running) {
    let gate = Gate::builder(config, processor())
        .bind()
        .await
        .expect("gate binds");
    let addr = gate.tcp_addr().expect("tcp");
    let app = App::new().gate(gate).handle_signals(false);
    (addr, run(app))
}

/// The name of a JSON payload's one key.
fn name_of(payload: &[u8]) -> String {
    let (name, _) = longlink_testkit::envelope::open_json(payload).expect("a JSON envelope");
    name
}

#[tokio::test]
async fn a_drop_type_over_its_limit_is_answered_by_its_hook_and_a_close_type_closes() {
    bounded(Duration::from_secs(60), async {
        let (addr, running) = start(config(Encoding::Json)).await;
        let wire = Wire(Encoding::Json);
        let mut c = TcpClient::connect(addr, Framing::default(), wire).await;
        // Ten at once: the burst is echoed, the rest answered by the hook, in order read.
        let mut burst = Vec::new();
        for i in 0..10 {
            burst.extend(Framing::default().frame(&wire.encode(
                "Say",
                0,
                &Say {
                    text: format!("s{i}"),
                },
            )));
        }
        c.send_raw(&burst).await;
        let mut names = Vec::new();
        for _ in 0..10 {
            names.push(name_of(&c.recv().await));
        }
        let echoed = names.iter().filter(|n| *n == "Say").count();
        let slowed = names.iter().filter(|n| *n == "Slow").count();
        assert_eq!(echoed + slowed, 10, "{names:?}");
        assert!(
            (LIMIT as usize..=LIMIT as usize + 1).contains(&echoed),
            "the burst is echoed (a token may have come back meanwhile): {names:?}"
        );
        assert_eq!(names[..LIMIT as usize], ["Say", "Say", "Say"], "{names:?}");

        // The other type has its own bucket; the connection is still served.
        c.send_msg("Move", 1, &Move { n: 100 }).await;
        assert_eq!(name_of(&c.recv().await), "Move");

        // Over the close type's limit: what was read is answered, then the close.
        let mut flood = Vec::new();
        for n in 0..20 {
            flood.extend(Framing::default().frame(&wire.encode("Move", 1, &Move { n })));
        }
        c.send_raw(&flood).await;
        let mut moves = 0;
        loop {
            match tokio::time::timeout(STEP, c.try_recv()).await {
                Ok(Ok(payload)) => {
                    assert_eq!(name_of(&payload), "Move");
                    moves += 1;
                }
                Ok(Err(_)) => break,
                Err(_) => panic!("neither a reply nor the close after {moves} moves"),
            }
        }
        // One token was spent above: the rest of the burst (a token may have come back).
        assert!(
            (1..=LIMIT as usize).contains(&moves),
            "{moves} moves answered"
        );
        running.shutdown().await;
    })
    .await;
}

/// A client that never reads is sent thousands of 1 KB volatile messages: the connection
/// stays (with `queue_full = "disconnect"` and a queue of 64), the reliable message after
/// them arrives, and only a part of the volatile ones were written.
#[tokio::test]
async fn volatile_messages_never_disconnect_a_client_that_does_not_read() {
    bounded(Duration::from_secs(60), async {
        let (addr, running) = start(GateConfig {
            pending_write_num: 64,
            ..config(Encoding::Json)
        })
        .await;
        let wire = Wire(Encoding::Json);
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("small buffer");
        let stream = socket.connect(addr).await.expect("connect");
        let mut c = TcpClient {
            stream,
            framing: Framing::default(),
            wire,
        };
        const N: u32 = 5000;
        c.send_msg("Blips", 3, &Blips { n: N }).await;
        // Not reading for a while: the server's writes back up.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut blips = 0;
        loop {
            let payload = c.recv().await;
            match name_of(&payload).as_str() {
                "Blip" => blips += 1,
                "Say" => break,
                other => panic!("unexpected {other}"),
            }
        }
        assert!(blips < N, "all {N} volatile messages were written");
        // Still served.
        c.send_msg("Move", 1, &Move { n: 1 }).await;
        assert_eq!(name_of(&c.recv().await), "Move");
        running.shutdown().await;
    })
    .await;
}

/// `volatile_queue`: a handler writes 100 volatile `Blip`s at once, then a reliable `Say`;
/// the client reads everything. Exactly `volatile_queue` of them are queued (the
/// connection's task takes the queue only once the handler returns), the default 16, or 3.
#[tokio::test]
async fn volatile_queue_bounds_the_volatile_messages_one_burst_queues() {
    bounded(Duration::from_secs(60), async {
        for (volatile_queue, expected) in [(None, 16), (Some(3), 3)] {
            let mut config = config(Encoding::Json);
            if let Some(n) = volatile_queue {
                config.volatile_queue = n;
            }
            let (addr, running) = start(config).await;
            let mut c = TcpClient::connect(addr, Framing::default(), Wire(Encoding::Json)).await;
            c.send_msg("Blips", 3, &Blips { n: 100 }).await;
            let mut blips = 0;
            loop {
                let payload = c.recv().await;
                match name_of(&payload).as_str() {
                    "Blip" => blips += 1,
                    "Say" => break,
                    other => panic!("unexpected {other}"),
                }
            }
            assert_eq!(blips, expected, "volatile_queue {volatile_queue:?}");
            running.shutdown().await;
        }
    })
    .await;
}
