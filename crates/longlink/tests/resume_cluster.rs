//! Session resume across the gates of a cluster (a real `nats-server` on 127.0.0.1): a
//! client whose socket to gate 1 drops resumes on gate 2; the backend streams to it all the
//! while; the stream arrives whole and in order, the backend sees neither a close nor a new
//! connection, and the uid is found on gate 2. A gate that is gone takes its sessions with it.

#![allow(unreachable_pub, dead_code)]

#[path = "resume/client.rs"]
mod client;
mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{Client, Link, Via};
use common::{Echo, Running, STEP, bounded, run};
use longlink::cluster::{Backend, Cluster, ClusterConfig};
use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Module, Processor, Sessions};
use longlink_testkit::NatsServer;
use serde::{Deserialize, Serialize};

/// Forwarded to the backend: `n == 0` logs in as `uid` (answered with `Echo{"in"}`); else the
/// backend streams `Echo{"0"}..Echo{"<n-1>"}` to the connection.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Go {
    #[prost(uint64, tag = "1")]
    n: u64,
    #[prost(uint64, tag = "2")]
    uid: u64,
}

fn registry(p: &mut Processor) {
    p.register_outgoing::<Echo>().unwrap();
    p.register::<Go>().unwrap();
}

fn config(nats: &NatsServer, node_type: &str) -> ClusterConfig {
    ClusterConfig {
        nats_url: nats.url(),
        node_type: node_type.into(),
        request_timeout: Duration::from_millis(1000),
        ..ClusterConfig::default()
    }
}

#[derive(Default)]
struct Svc {
    log: Arc<Mutex<Vec<String>>>,
    sessions: Sessions,
}

async fn backend(nats: &NatsServer) -> (Running, Arc<Mutex<Vec<String>>>, Cluster) {
    let cluster = Cluster::connect(&config(nats, "svc")).await.unwrap();
    let svc = Svc::default();
    let log = Arc::clone(&svc.log);
    let module = Module::new("svc", svc);
    let m = module.module_ref();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.route(&m, |ctx: &mut Ctx<Svc>, go: Go, agent: &Agent| {
        if go.n == 0 {
            ctx.sessions.bind(go.uid, agent);
            let _ = agent.write(&Echo { text: "in".into() });
            return;
        }
        let agent = agent.clone();
        tokio::spawn(async move {
            for i in 0..go.n {
                if agent
                    .write(&Echo {
                        text: i.to_string(),
                    })
                    .is_err()
                {
                    break;
                }
                if i % 4 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
    })
    .unwrap();
    let backend = Backend::builder(&cluster, "svc", p)
        .on_new_agent(&m, |ctx: &mut Ctx<Svc>, a: &Agent| {
            ctx.log.lock().unwrap().push(format!("new {}", a.id()))
        })
        .on_close_agent(&m, |ctx: &mut Ctx<Svc>, a: &Agent| {
            ctx.log.lock().unwrap().push(format!("close {}", a.id()))
        })
        .build()
        .unwrap();
    (
        run(App::new().module(module).backend(backend)),
        log,
        cluster,
    )
}

async fn gate(nats: &NatsServer) -> (Running, SocketAddr) {
    gate_with(nats, None).await
}

/// A gate whose application takes `slow` in its hand-off hook (a module of the gate's own,
/// blocking its thread): a holder slower than `request_timeout` to offer a session.
async fn gate_with(nats: &NatsServer, slow: Option<Duration>) -> (Running, SocketAddr) {
    let cluster = Cluster::connect(&config(nats, "gate")).await.unwrap();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.forward::<Go>("svc").unwrap();
    let module = Module::new("slow", ());
    let m = module.module_ref();
    let builder = Gate::builder(
        GateConfig {
            tcp_addr: "127.0.0.1:0".into(),
            encoding: Encoding::Json,
            resume_window: Duration::from_secs(10),
            // A stop without the drain (tests/drain.rs has it): the sessions end with it.
            drain_timeout: Duration::ZERO,
            ..GateConfig::default()
        },
        p,
    )
    .cluster(&cluster);
    let builder = match slow {
        Some(slow) => builder.on_hand_off_agent(&m, move |_: &mut Ctx<()>, _: &Agent| {
            std::thread::sleep(slow)
        }),
        None => builder,
    };
    let gate = builder.bind().await.unwrap();
    let addr = gate.tcp_addr().unwrap();
    (run(App::new().module(module).gate(gate)), addr)
}

fn go(n: u64, uid: u64) -> Vec<u8> {
    common::Wire(Encoding::Json).encode("Go", 1, &Go { n, uid })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_the_other_gate_keeps_the_stream_whole() {
    across_gates(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_the_other_gate_takes_over_a_half_open_socket() {
    across_gates(true).await;
}

async fn across_gates(half_open: bool) {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 8, async {
        let (b, log, bc) = backend(&nats).await;
        let (g1, addr1) = gate(&nats).await;
        let (g2, addr2) = gate(&nats).await;
        let mut c = Client::start(Via::Tcp, addr1, Encoding::Json).await;
        c.sent += 1;
        c.link.send(go(0, 7)).await;
        assert!(c.read_until(1).await);
        assert_eq!(c.texts, ["in"]);
        c.sent += 1;
        c.link.send(go(2000, 0)).await;
        assert!(c.read_until(300).await);
        // The socket to gate 1 drops mid-stream (or looks open to gate 1 but is dead: kept
        // here, never read again); the client comes back on gate 2.
        let _old = std::mem::replace(&mut c.link, Link::Gone);
        let _old = half_open.then_some(_old);
        let handled = c.resume(addr2).await.expect("resumed on the other gate");
        assert_eq!(handled, 2, "gate 1 had handled both client messages");
        assert!(
            c.read_until(2001).await,
            "the rest of the stream, through gate 2"
        );
        let want: Vec<String> = std::iter::once("in".to_owned())
            .chain((0..2000).map(|i| i.to_string()))
            .collect();
        assert_eq!(c.texts, want, "every message once, in order");
        // The backend's agent went on: no close. (The socket that resumed had an agent of its
        // own until its LL_Resume: it came and went.)
        let events = log.lock().unwrap().clone();
        let session = events[0].clone();
        assert!(session.starts_with("new "), "{events:?}");
        let session_id = session.trim_start_matches("new ").to_owned();
        assert!(
            !events.contains(&format!("close {session_id}")),
            "{events:?}"
        );
        let others: Vec<&String> = events[1..].iter().collect();
        assert!(others.len() == 2 || others.is_empty(), "{events:?}");
        // The uid is found on gate 2 now.
        let mut p = Processor::new(Encoding::Json);
        registry(&mut p);
        let by_uid = p
            .encode(&Echo {
                text: "by uid".into(),
            })
            .unwrap();
        bc.push_uid(7, &by_uid).await.expect("uid 7 online");
        loop {
            match c.next(STEP).await.expect("the push by uid") {
                client::Msg::Echo(t) => {
                    assert_eq!(t, "by uid");
                    break;
                }
                _ => continue,
            }
        }
        // Messages from the client go on to the same backend agent, through gate 2.
        c.sent += 1;
        c.link.send(go(0, 7)).await;
        assert!(c.read_until(2003).await);
        assert_eq!(c.texts.last().map(String::as_str), Some("in"));
        assert!(!log.lock().unwrap().contains(&format!("close {session_id}")));
        drop(c);
        g2.shutdown().await;
        g1.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_that_is_gone_takes_its_sessions_with_it() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 8, async {
        let (b, _log, _bc) = backend(&nats).await;
        let (g1, addr1) = gate(&nats).await;
        let (g2, addr2) = gate(&nats).await;
        let mut c = Client::start(Via::Tcp, addr1, Encoding::Json).await;
        c.link = Link::Gone;
        g1.shutdown().await;
        assert_eq!(c.resume(addr2).await, Err("unknown".into()));
        // The connection to gate 2 is a fresh one.
        let gate2 = addr2;
        let mut fresh = Link::connect(Via::Tcp, gate2).await;
        fresh.send(go(0, 8)).await;
        let answer = c
            .proto
            .decode(&fresh.recv_within(STEP).await.expect("an answer"));
        assert_eq!(answer, client::Msg::Echo("in".into()));
        g2.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

/// A client whose resume got no answer (its socket cut after `LL_Resume`, or its patience
/// ran out while the session moved) still has only the token it resumed with, while the gate
/// it resumed on took the session over. Resuming again with that token finds the session:
/// on the gate that took it, on the gate that let it go, and on a third gate (which the one
/// that let it go sends on). The stream arrives whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_whose_answer_was_lost_across_gates_can_be_made_again() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 12, async {
        let (b, _log, _bc) = backend(&nats).await;
        let (g1, addr1) = gate(&nats).await;
        let (g2, addr2) = gate(&nats).await;
        let (g3, addr3) = gate(&nats).await;
        let mut c = Client::start(Via::Tcp, addr1, Encoding::Json).await;
        c.sent += 1;
        c.link.send(go(0, 7)).await;
        assert!(c.read_until(1).await);
        c.sent += 1;
        c.link.send(go(200, 0)).await;
        assert!(c.read_until(50).await);
        // (where the unanswered resume goes, where the client resumes again)
        for (cut_at, again) in [(addr2, addr2), (addr1, addr2), (addr1, addr3)] {
            c.link = Link::Gone;
            let mut cut = Link::connect(Via::Tcp, cut_at).await;
            assert!(cut.send(c.proto.resume(&c.token, c.received)).await);
            drop(cut);
            // The gate takes the session over without the socket (milliseconds here).
            tokio::time::sleep(Duration::from_millis(500)).await;
            let resumed = c.resume(again).await;
            assert_eq!(
                resumed,
                Ok(2),
                "cut after LL_Resume on {cut_at}, again on {again}"
            );
        }
        assert!(c.read_until(201).await, "the rest of the stream");
        let want: Vec<String> = std::iter::once("in".to_owned())
            .chain((0..200).map(|i| i.to_string()))
            .collect();
        assert_eq!(c.texts, want, "every message once, in order");
        drop(c);
        g3.shutdown().await;
        g2.shutdown().await;
        g1.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

/// A client on gate 1 with a stream under way: logged in as uid 7, 50 of 200 read.
async fn streaming(addr: SocketAddr) -> Client {
    let mut c = Client::start(Via::Tcp, addr, Encoding::Json).await;
    c.sent += 1;
    c.link.send(go(0, 7)).await;
    assert!(c.read_until(1).await);
    c.sent += 1;
    c.link.send(go(200, 0)).await;
    assert!(c.read_until(50).await);
    c
}

/// The rest of the stream: all of it once, in order.
async fn rest_of_stream(c: &mut Client) {
    assert!(c.read_until(201).await, "the rest of the stream");
    let want: Vec<String> = std::iter::once("in".to_owned())
        .chain((0..200).map(|i| i.to_string()))
        .collect();
    assert_eq!(c.texts, want, "every message once, in order");
}

/// A holder slower than `request_timeout` to offer the session (its application's hand-off
/// hook takes 1.5 s; `request_timeout` is 1 s): the new gate waits for the offer as long as
/// the holder may take, and the resume succeeds at the first attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_slower_than_request_timeout_still_hands_the_session_over() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 8, async {
        let (b, _log, _bc) = backend(&nats).await;
        let (g1, addr1) = gate_with(&nats, Some(Duration::from_millis(1500))).await;
        let (g2, addr2) = gate(&nats).await;
        let mut c = streaming(addr1).await;
        c.link = Link::Gone;
        assert_eq!(c.resume(addr2).await, Ok(2), "resumed on gate 2 at once");
        rest_of_stream(&mut c).await;
        drop(c);
        g2.shutdown().await;
        g1.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

/// A client whose `LL_Resumed` from gate 2 was lost still has gate 1's token; gate 1 has
/// stopped since (as a drained gate does once its sessions are gone). Resuming on gate 3
/// with that token finds the session on gate 2, which took it over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_whose_answer_was_lost_finds_its_session_after_the_gate_it_left_stopped() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 8, async {
        let (b, _log, _bc) = backend(&nats).await;
        let (g1, addr1) = gate(&nats).await;
        let (g2, addr2) = gate(&nats).await;
        let (g3, addr3) = gate(&nats).await;
        let mut c = streaming(addr1).await;
        c.link = Link::Gone;
        let mut cut = Link::connect(Via::Tcp, addr2).await;
        assert!(cut.send(c.proto.resume(&c.token, c.received)).await);
        let answer = cut.recv_within(STEP).await.expect("gate 2 answers");
        assert!(
            matches!(c.proto.decode(&answer), client::Msg::Resumed { .. }),
            "gate 2 took the session over"
        );
        drop(cut);
        g1.shutdown().await;
        assert_eq!(c.resume(addr3).await, Ok(2), "resumed on gate 3");
        rest_of_stream(&mut c).await;
        drop(c);
        g3.shutdown().await;
        g2.shutdown().await;
        b.shutdown().await;
    })
    .await;
}
