//! A push to a uid that reaches the session's old gate just as the session leaves it, over a
//! real `nats-server` on 127.0.0.1: the pushing node is slow (what NATS sends it arrives
//! 60 ms late, so a push goes out 60 ms or more after it read the directory: one that read it
//! just before a hand-over pointed it at the new gate reaches the old gate that much later),
//! and the old gate is slow to let a session go (this test's `tracing` subscriber holds the
//! thread for 40 ms at the gate's "session handed over to another gate" event, once the
//! session has left the gate's table of connections). The client resumes on the other gate a
//! little later after each push it reads, a different delay each time, so that some pushes
//! reach the old gate while it lets the session go. Each push reaches the client all the
//! same, once, in order.
//!
//! The subscriber is the process's, so this file holds this one test.

#![allow(unreachable_pub, dead_code)]

#[path = "resume/client.rs"]
mod client;
mod common;
#[path = "common/handover.rs"]
mod handover;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{STEP, bounded};
use handover::{backend, check, config_at, gate, logged_in, pusher, read_and_hop};
use longlink::cluster::Cluster;
use longlink_testkit::NatsServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// How late what NATS sends reaches the pushing node.
const LATE: Duration = Duration::from_millis(60);

/// How long the old gate is held as it lets a session go (less than `LATE`: a push sent on
/// from there still comes before the next one, sent straight to the new gate).
const HELD: Duration = Duration::from_millis(40);

/// The gate's event once a session has left its table of connections, before the gate
/// knows where it went.
const LET_GO: &str = "session handed over to another gate";

/// How many [`LET_GO`] events were held.
static HELD_AT: AtomicU64 = AtomicU64::new(0);

/// A `tracing` subscriber that holds the thread at each [`LET_GO`] event (counted in
/// [`HELD_AT`]); it hears only the events of the gate's hand-over module.
struct HoldAtLetGo;

/// Reads an event's message.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for HoldAtLetGo {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && metadata.module_path() == Some("longlink::gate::handover")
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0 == LET_GO {
            HELD_AT.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(HELD);
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// A TCP proxy on 127.0.0.1 in front of `target` that passes on what the server sends
/// `late` late (in order), and what the client sends at once. Its tasks end with the
/// connections.
async fn slow_proxy(target: SocketAddr, late: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
            });
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                while let Ok(n @ 1..) = from_server.read(&mut buf).await {
                    let due = tokio::time::Instant::now() + late;
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some((due, bytes)) = rx.recv().await {
                    tokio::time::sleep_until(due).await;
                    if to_client.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_reaches_the_old_gate_as_the_session_leaves_it_arrives_once_in_order() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    tracing::subscriber::set_global_default(HoldAtLetGo).expect("the only subscriber");
    bounded(STEP * 12, async {
        let b = backend(&nats).await;
        let (g1, a1) = gate(&nats).await;
        let (g2, a2) = gate(&nats).await;
        let mut c = logged_in(a1, 7).await;
        let nats_addr: SocketAddr = nats.url().trim_start_matches("nats://").parse().unwrap();
        let slow = slow_proxy(nats_addr, LATE).await;
        let other = Cluster::connect(&config_at(format!("nats://{slow}"), "pusher"))
            .await
            .unwrap();
        // One push every 60 to 120 ms (a directory read or two, each `LATE`). A hand-over
        // starts 30 to 130 ms after the push the client read, a different delay each time:
        // the next push read the directory before it, and in a few of the hand-overs (one to
        // four of twenty, in the runs seen) it reaches the old gate while that is held.
        const N: u64 = 150;
        const HOPS: u64 = 20;
        let pushing = pusher(other, vec![7], N);
        let hops = read_and_hop(&mut c, [a1, a2], N, HOPS, |i| {
            Duration::from_millis(30 + (i * 37) % 100)
        })
        .await;
        let refused = pushing.await.unwrap();
        assert!(refused.is_empty(), "pushes refused: {refused:?}");
        assert!(hops >= HOPS - 2, "{hops} hand-overs");
        assert!(
            HELD_AT.load(Ordering::SeqCst) >= hops - 2,
            "the let-go event held"
        );
        check(&c, N, "the client");
        drop(c);
        g2.shutdown().await;
        g1.shutdown().await;
        b.shutdown().await;
    })
    .await;
}
