//! Pushes to a uid (`Cluster::push_uid`, what the chat's private messages use when the
//! receiver is bound to another backend node) while the uid's resumable session moves
//! between the gates of a cluster (a real `nats-server` on 127.0.0.1): each push reaches the
//! client exactly once, in order, whether the session moves because the client resumed on
//! the other gate or because its gate stopped (`LL_Move`), and none is refused.

#![allow(unreachable_pub, dead_code)]

#[path = "resume/client.rs"]
mod client;
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use client::{Client, Msg, Via};
use common::{Echo, Running, STEP, bounded, run};
use longlink::cluster::{Backend, Cluster, ClusterConfig};
use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Module, Processor, Sessions};
use longlink_testkit::NatsServer;
use serde::{Deserialize, Serialize};

/// Forwarded to the backend: logs the connection in as `uid` (answered `Echo{"in"}`).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Login {
    #[prost(uint64, tag = "1")]
    uid: u64,
}

fn registry(p: &mut Processor) {
    p.register_outgoing::<Echo>().unwrap();
    p.register::<Login>().unwrap();
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
    sessions: Sessions,
}

async fn backend(nats: &NatsServer) -> Running {
    let cluster = Cluster::connect(&config(nats, "svc")).await.unwrap();
    let module = Module::new("svc", Svc::default());
    let m = module.module_ref();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.route(&m, |ctx: &mut Ctx<Svc>, login: Login, agent: &Agent| {
        ctx.sessions.bind(login.uid, agent);
        let _ = agent.write(&Echo { text: "in".into() });
    })
    .unwrap();
    let backend = Backend::builder(&cluster, "svc", p).build().unwrap();
    run(App::new().module(module).backend(backend))
}

/// A gate with resume on and a drain spread over 300 ms.
async fn gate(nats: &NatsServer) -> (Running, SocketAddr) {
    let cluster = Cluster::connect(&config(nats, "gate")).await.unwrap();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.forward::<Login>("svc").unwrap();
    let gate = Gate::builder(
        GateConfig {
            tcp_addr: "127.0.0.1:0".into(),
            encoding: Encoding::Json,
            resume_window: Duration::from_secs(30),
            resume_buffer: 8192,
            pending_write_num: 8192,
            drain_spread: Duration::from_millis(300),
            drain_timeout: Duration::from_secs(4),
            ..GateConfig::default()
        },
        p,
    )
    .cluster(&cluster)
    .bind()
    .await
    .unwrap();
    let addr = gate.tcp_addr().unwrap();
    (run(App::new().gate(gate)), addr)
}

/// A client of the gate at `addr`, logged in as `uid`.
async fn logged_in(addr: SocketAddr, uid: u64) -> Client {
    let mut c = Client::start(Via::Tcp, addr, Encoding::Json).await;
    c.sent += 1;
    c.link
        .send(common::Wire(Encoding::Json).encode("Login", 1, &Login { uid }))
        .await;
    assert!(c.read_until(1).await);
    assert_eq!(c.texts, ["in"]);
    c
}

/// Pushes `Echo{"<i>"}` for `i` in `0..n` to each of `uids` in turn, each push once the
/// one before it has been sent, from a node of its own. Gives the pushes refused.
fn pusher(cluster: Cluster, uids: Vec<u64>, n: u64) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut p = Processor::new(Encoding::Json);
        registry(&mut p);
        // A login's directory entry is written after its answer may have reached the client.
        for &uid in &uids {
            while cluster.locate(uid).await.ok().flatten().is_none() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let mut refused = Vec::new();
        for i in 0..n {
            let msg = p.encode(&Echo {
                text: i.to_string(),
            });
            let msg = msg.unwrap();
            for &uid in &uids {
                if let Err(e) = cluster.push_uid(uid, &msg).await {
                    refused.push(format!("{uid} <- {i}: {e}"));
                }
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        refused
    })
}

/// Resumes `c` on `addr`, again while the answer is `"retry"` (a hand-over under way gave
/// up, as one may while messages keep reaching the session).
async fn resume(c: &mut Client, addr: SocketAddr) {
    for _ in 0..10 {
        match c.resume(addr).await {
            Ok(_) => return,
            Err(why) if why == "retry" => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(why) => panic!("resume refused: {why}"),
        }
    }
    panic!("resume refused with \"retry\" ten times");
}

/// The pushes as the client must see them: "in", then every one once, in order.
fn check(c: &Client, n: u64, who: &str) {
    let want: Vec<String> = std::iter::once("in".to_owned())
        .chain((0..n).map(|i| i.to_string()))
        .collect();
    if c.texts != want {
        let at = c
            .texts
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len().min(c.texts.len()));
        panic!(
            "{who}: every push once, in order: first difference at {at}: got {:?}, want {:?} ({} received)",
            c.texts.get(at),
            want.get(at),
            c.texts.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_to_a_uid_whose_session_hops_between_gates_arrive_once_in_order() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 12, async {
        let b = backend(&nats).await;
        let (g1, a1) = gate(&nats).await;
        let (g2, a2) = gate(&nats).await;
        let mut c = logged_in(a1, 7).await;
        let other = Cluster::connect(&config(&nats, "pusher")).await.unwrap();
        const N: u64 = 3000;
        let pushing = pusher(other, vec![7], N);
        let mut hops = 0;
        let mut at = [a1, a2].into_iter().cycle().skip(1);
        while c.received < 1 + N {
            if c.next(STEP).await.is_none() {
                break;
            }
            if c.received > (hops + 1) * N / 12 {
                // The session moves to the other gate.
                resume(&mut c, at.next().unwrap()).await;
                hops += 1;
            }
        }
        let refused = pushing.await.unwrap();
        assert!(refused.is_empty(), "pushes refused: {refused:?}");
        assert!(hops >= 8, "{hops} hand-overs");
        check(&c, N, "the client");
        drop(c);
        g2.shutdown().await;
        g1.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_to_uids_whose_gate_stops_arrive_once_in_order() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 12, async {
        let b = backend(&nats).await;
        let (g1, a1) = gate(&nats).await;
        let (g2, a2) = gate(&nats).await;
        let uids: Vec<u64> = (1..=8).collect();
        let mut clients = Vec::new();
        for &uid in &uids {
            clients.push(logged_in(a1, uid).await);
        }
        let other = Cluster::connect(&config(&nats, "pusher")).await.unwrap();
        const N: u64 = 600;
        let pushing = pusher(other, uids, N);
        let followers: Vec<_> = clients
            .into_iter()
            .map(|mut c| {
                tokio::spawn(async move {
                    // On LL_Move (or a dropped socket): go on reading for the delay given,
                    // then resume on gate 2; until every push has come, or none comes there.
                    let mut move_at: Option<tokio::time::Instant> = None;
                    let mut moved = false;
                    while c.received < 1 + N {
                        let wait = move_at.map_or(STEP, |at| {
                            at.saturating_duration_since(tokio::time::Instant::now())
                        });
                        let got = if wait.is_zero() {
                            None
                        } else {
                            c.next(wait).await
                        };
                        match got {
                            Some(Msg::Move(after_ms)) => {
                                move_at = Some(
                                    tokio::time::Instant::now()
                                        + Duration::from_millis(after_ms.into()),
                                );
                            }
                            Some(_) => {}
                            // Nothing more comes on gate 2.
                            None if moved && move_at.is_none() => break,
                            None => {
                                move_at = None;
                                moved = true;
                                resume(&mut c, a2).await;
                            }
                        }
                    }
                    c
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        g1.shutdown().await;
        let refused = pushing.await.unwrap();
        assert!(refused.is_empty(), "pushes refused: {refused:?}");
        for (i, f) in followers.into_iter().enumerate() {
            let c = f.await.unwrap();
            check(&c, N, &format!("client {i}"));
        }
        g2.shutdown().await;
        b.shutdown().await;
    })
    .await;
}
