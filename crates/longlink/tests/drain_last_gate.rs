//! A stopping gate of a cluster (a real `nats-server` on 127.0.0.1) with resumable sessions
//! and no other live gate to take them does not drain: no `LL_Move`, its sessions end at
//! once, and the stop does not wait for `drain_timeout` (a minute here; the tests' bound on
//! a stop is ten seconds). The last gate of a cluster, and one whose peer has stopped.

#![allow(unreachable_pub, dead_code)]

#[path = "resume/client.rs"]
mod client;
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use client::{Client, Msg, Via};
use common::{Echo, Running, STEP, bounded, run};
use longlink::cluster::{Backend, Cluster, ClusterConfig};
use longlink::{Agent, App, Encoding, Gate, GateConfig, Module, Processor};
use longlink_testkit::NatsServer;

fn config(nats: &NatsServer, node_type: &str) -> ClusterConfig {
    ClusterConfig {
        nats_url: nats.url(),
        node_type: node_type.into(),
        request_timeout: Duration::from_millis(1000),
        ..ClusterConfig::default()
    }
}

/// A backend that echoes.
async fn backend(nats: &NatsServer) -> Running {
    let cluster = Cluster::connect(&config(nats, "svc")).await.unwrap();
    let module = Module::new("svc", ());
    let m = module.module_ref();
    let mut p = Processor::new(Encoding::Json);
    p.register::<Echo>().unwrap();
    p.route(&m, |_: &mut longlink::Ctx<()>, e: Echo, agent: &Agent| {
        let _ = agent.write(&e);
    })
    .unwrap();
    let backend = Backend::builder(&cluster, "svc", p).build().unwrap();
    run(App::new().module(module).backend(backend))
}

/// A gate with resume on and a drain bounded by a minute.
async fn gate(nats: &NatsServer) -> (Running, SocketAddr) {
    let cluster = Cluster::connect(&config(nats, "gate")).await.unwrap();
    let mut p = Processor::new(Encoding::Json);
    p.register::<Echo>().unwrap();
    p.forward::<Echo>("svc").unwrap();
    let gate = Gate::builder(
        GateConfig {
            tcp_addr: "127.0.0.1:0".into(),
            encoding: Encoding::Json,
            resume_window: Duration::from_secs(30),
            drain_spread: Duration::from_millis(200),
            drain_timeout: Duration::from_secs(60),
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

/// Resumable clients of the gate at `addr`, each with one message echoed.
async fn clients(addr: SocketAddr) -> Vec<Client> {
    let mut out = Vec::new();
    for _ in 0..3 {
        let mut c = Client::start(Via::Tcp, addr, Encoding::Json).await;
        c.send_echo("hi").await;
        assert!(c.read_until(1).await);
        out.push(c);
    }
    out
}

/// Reads each client's socket to its end: none may hear `LL_Move`.
async fn no_move(clients: Vec<Client>) {
    for (i, mut c) in clients.into_iter().enumerate() {
        while let Some(msg) = c.next(STEP).await {
            assert!(!matches!(msg, Msg::Move(_)), "client {i} was told to move");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_gate_of_a_cluster_stops_without_waiting_for_drain_timeout() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let b = backend(&nats).await;
        let (g, addr) = gate(&nats).await;
        let clients = clients(addr).await;
        // Within ten seconds, not the minute of drain_timeout.
        g.shutdown().await;
        no_move(clients).await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_whose_peer_has_stopped_stops_without_waiting_for_drain_timeout() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let b = backend(&nats).await;
        let (g1, a1) = gate(&nats).await;
        let (g2, _) = gate(&nats).await;
        let clients = clients(a1).await;
        g2.shutdown().await;
        g1.shutdown().await;
        no_move(clients).await;
        b.shutdown().await;
    })
    .await;
}
