//! A cluster of a gate forwarding `Ping` to backends of type "svc", over a real
//! `nats-server`: the fixture of the cluster tests (`cluster.rs`, `directory.rs`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Echo, Framing, Running, TcpClient, Wire, run, wait_for};
use longlink::cluster::{Backend, Cluster, ClusterConfig};
use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Module, Processor, Sessions};
use longlink_testkit::NatsServer;
use serde::{Deserialize, Serialize};

/// Forwarded from the gate; the backend answers with an `Echo` of `"<node> <n>"`. `n == 0`
/// logs the connection in as uid `uid`.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub struct Ping {
    #[prost(uint64, tag = "1")]
    pub n: u64,
    #[prost(uint64, tag = "2")]
    pub uid: u64,
}

pub fn registry(p: &mut Processor) {
    p.register::<Ping>().unwrap();
    p.register_outgoing::<Echo>().unwrap();
}

pub fn config(nats: &NatsServer, node_type: &str) -> ClusterConfig {
    ClusterConfig {
        nats_url: nats.url(),
        node_type: node_type.into(),
        request_timeout: Duration::from_millis(500),
        ..ClusterConfig::default()
    }
}

#[derive(Default)]
struct Svc {
    log: Arc<Mutex<Vec<String>>>,
    sessions: Sessions,
}

/// A backend of type "svc" that logs every event and answers pings.
pub async fn backend(nats: &NatsServer) -> (Running, Arc<Mutex<Vec<String>>>, Cluster) {
    let cluster = Cluster::connect(&config(nats, "svc")).await.unwrap();
    let svc = Svc::default();
    let log = Arc::clone(&svc.log);
    let module = Module::new("svc", svc);
    let m = module.module_ref();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    let node = cluster.node_id().to_owned();
    p.route(&m, move |ctx: &mut Ctx<Svc>, ping: Ping, agent: &Agent| {
        ctx.log.lock().unwrap().push(format!("ping {}", ping.n));
        if ping.n == 0 {
            ctx.sessions.bind(ping.uid, agent);
        }
        let _ = agent.write(&Echo {
            text: format!("{node} {}", ping.n),
        });
    })
    .unwrap();
    let backend = Backend::builder(&cluster, "svc", p)
        .on_new_agent(&m, |ctx: &mut Ctx<Svc>, _agent: &Agent| {
            ctx.log.lock().unwrap().push("new".into())
        })
        .on_close_agent(&m, |ctx: &mut Ctx<Svc>, _agent: &Agent| {
            ctx.log.lock().unwrap().push("close".into())
        })
        .build()
        .unwrap();
    let app = App::new().module(module).backend(backend);
    (run(app), log, cluster)
}

/// A gate node that forwards `Ping` to "svc".
pub async fn gate(
    nats: &NatsServer,
) -> (
    Running,
    std::net::SocketAddr,
    Cluster,
    Arc<Mutex<Vec<String>>>,
) {
    gate_with(Cluster::connect(&config(nats, "gate")).await.unwrap()).await
}

/// [`gate`] on a cluster connection of the caller's.
pub async fn gate_with(
    cluster: Cluster,
) -> (
    Running,
    std::net::SocketAddr,
    Cluster,
    Arc<Mutex<Vec<String>>>,
) {
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.forward::<Ping>("svc").unwrap();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let errs = Arc::clone(&errors);
    let gate = Gate::builder(
        GateConfig {
            tcp_addr: "127.0.0.1:0".into(),
            encoding: Encoding::Json,
            ..GateConfig::default()
        },
        p,
    )
    .cluster(&cluster)
    .on_forward_error(move |_agent, name, e| errs.lock().unwrap().push(format!("{name}: {e}")))
    .bind()
    .await
    .unwrap();
    let addr = gate.tcp_addr().unwrap();
    (run(App::new().gate(gate)), addr, cluster, errors)
}

pub async fn client(addr: std::net::SocketAddr) -> TcpClient {
    TcpClient::connect(addr, Framing::default(), Wire(Encoding::Json)).await
}

pub async fn ping(c: &mut TcpClient, n: u64, uid: u64) {
    c.send_msg("Ping", 0, &Ping { n, uid }).await;
}

/// Waits until `uid` is in the directory (the claim is asynchronous).
pub async fn eventually_located(cluster: &Cluster, uid: u64) {
    wait_for(&format!("uid {uid} in the directory"), || async move {
        matches!(cluster.locate(uid).await, Ok(Some(_)))
    })
    .await;
}

/// Waits until `uid` leaves the directory (its connection closed).
pub async fn eventually_none(cluster: &Cluster, uid: u64) {
    wait_for(&format!("uid {uid} out of the directory"), || async move {
        cluster.locate(uid).await == Ok(None)
    })
    .await;
}
