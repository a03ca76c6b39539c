//! The fixtures of the tests of pushes to a uid whose session moves between gates
//! (`handover_push.rs`, `handover_race.rs`): a backend that logs connections in by uid,
//! gates with resume on, a client logged in, a pusher, and the check of what it received.

use std::net::SocketAddr;
use std::time::Duration;

use super::client::{Client, Via};
use super::common::{self, Echo, Running, run};
use longlink::cluster::{Backend, Cluster, ClusterConfig};
use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Module, Processor, Sessions};
use longlink_testkit::NatsServer;
use serde::{Deserialize, Serialize};

/// Forwarded to the backend: logs the connection in as `uid` (answered `Echo{"in"}`).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub struct Login {
    #[prost(uint64, tag = "1")]
    pub uid: u64,
}

pub fn registry(p: &mut Processor) {
    p.register_outgoing::<Echo>().unwrap();
    p.register::<Login>().unwrap();
}

pub fn config(nats: &NatsServer, node_type: &str) -> ClusterConfig {
    config_at(nats.url(), node_type)
}

/// A node's settings for the NATS server at `nats_url`.
pub fn config_at(nats_url: String, node_type: &str) -> ClusterConfig {
    ClusterConfig {
        nats_url,
        node_type: node_type.into(),
        request_timeout: Duration::from_millis(1000),
        ..ClusterConfig::default()
    }
}

#[derive(Default)]
pub struct Svc {
    sessions: Sessions,
}

pub async fn backend(nats: &NatsServer) -> Running {
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
pub async fn gate(nats: &NatsServer) -> (Running, SocketAddr) {
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
pub async fn logged_in(addr: SocketAddr, uid: u64) -> Client {
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
pub fn pusher(cluster: Cluster, uids: Vec<u64>, n: u64) -> tokio::task::JoinHandle<Vec<String>> {
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
pub async fn resume(c: &mut Client, addr: SocketAddr) {
    for _ in 0..10 {
        match c.resume(addr).await {
            Ok(_) => return,
            Err(why) if why == "retry" => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(why) => panic!("resume refused: {why}"),
        }
    }
    panic!("resume refused with \"retry\" ten times");
}

/// Reads `c` until it has its login's answer and `n` pushes (or nothing came for `STEP`),
/// moving its session to the other of `gates` after every `n / (hops + 1)` of them, `pause(i)`
/// after the push that calls for the i-th move. Gives the moves made.
pub async fn read_and_hop(
    c: &mut Client,
    gates: [SocketAddr; 2],
    n: u64,
    hops: u64,
    pause: impl Fn(u64) -> Duration,
) -> u64 {
    let mut made = 0;
    let mut at = gates.into_iter().cycle().skip(1);
    while c.received < 1 + n {
        if c.next(common::STEP).await.is_none() {
            break;
        }
        if c.received > (made + 1) * n / (hops + 1) {
            let wait = pause(made);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            resume(c, at.next().expect("a cycle")).await;
            made += 1;
        }
    }
    made
}

/// The pushes as the client must see them: "in", then every one once, in order.
pub fn check(c: &Client, n: u64, who: &str) {
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
