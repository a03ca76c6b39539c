//! Backend nodes that stop under their connections, over a real `nats-server` on 127.0.0.1:
//! a stopping node hands each connection to another node of its type (its messages in order,
//! its user data and the module's own state with it, through the hand-off and adopt hooks),
//! and a message whose handling a node did not finish is answered with an error, never
//! acknowledged as handled.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::pinged::forwarding_gate;
use common::{Echo, Framing, Running, STEP, TcpClient, Wire, bounded, run, wait_for};
use longlink::cluster::{Backend, Cluster, ClusterConfig};
use longlink::{Agent, App, Ctx, Encoding, Module, Processor};
use longlink_testkit::NatsServer;
use serde::{Deserialize, Serialize};

/// Forwarded from the gate. `n == 0` never finishes: its handler starts work that does not
/// end.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Ping {
    #[prost(uint64, tag = "1")]
    n: u64,
}

/// What the backend's module knows of a connection; it moves with it as user data.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Seen {
    /// Pings handled for this connection, on any node.
    count: u64,
}

#[derive(Default)]
struct Svc {
    seen: HashMap<u64, Seen>,
    /// The connection events and hooks that ran here.
    log: Arc<Mutex<Vec<&'static str>>>,
}

fn registry(p: &mut Processor) {
    p.register::<Ping>().unwrap();
    p.register_outgoing::<Echo>().unwrap();
}

fn config(nats: &NatsServer, node_type: &str) -> ClusterConfig {
    ClusterConfig {
        nats_url: nats.url(),
        node_type: node_type.into(),
        request_timeout: Duration::from_millis(500),
        ..ClusterConfig::default()
    }
}

/// A backend of type "svc" that counts each connection's pings and answers each with
/// `"<node> <n> <count>"`; the count moves with the connection. `shutdown` bounds each
/// part of its stop (the moves, the module's drain).
async fn backend(
    nats: &NatsServer,
    shutdown: Duration,
) -> (Running, Arc<Mutex<Vec<&'static str>>>, Cluster) {
    let cluster = Cluster::connect(&config(nats, "svc")).await.unwrap();
    let svc = Svc::default();
    let log = Arc::clone(&svc.log);
    let module = Module::new("svc", svc);
    let m = module.module_ref();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    let node = cluster.node_id().to_owned();
    p.route(&m, move |ctx: &mut Ctx<Svc>, ping: Ping, agent: &Agent| {
        if ping.n == 0 {
            let agent = agent.clone();
            ctx.spawn(std::future::pending::<()>(), move |_, ()| {
                let _ = agent.write(&Echo {
                    text: "never".into(),
                });
            });
            return;
        }
        let seen = ctx.seen.entry(agent.id()).or_default();
        seen.count += 1;
        let text = format!("{node} {} {}", ping.n, seen.count);
        let _ = agent.write(&Echo { text });
    })
    .unwrap();
    let log_event = |what: &'static str| {
        move |ctx: &mut Ctx<Svc>, _agent: &Agent| ctx.log.lock().unwrap().push(what)
    };
    let backend = Backend::builder(&cluster, "svc", p)
        .on_new_agent(&m, log_event("new"))
        .on_close_agent(&m, log_event("close"))
        .user_data::<Seen>()
        .on_hand_off_agent(&m, |ctx: &mut Ctx<Svc>, agent: &Agent| {
            ctx.log.lock().unwrap().push("hand off");
            if let Some(seen) = ctx.seen.remove(&agent.id()) {
                agent.set_user_data(seen);
            }
        })
        .on_adopt_agent(&m, |ctx: &mut Ctx<Svc>, agent: &Agent| {
            ctx.log.lock().unwrap().push("adopt");
            if let Some(seen) = agent.user_data::<Seen>() {
                ctx.seen.insert(agent.id(), seen);
            }
        })
        .build()
        .unwrap();
    let app = App::new()
        .module(module)
        .backend(backend)
        .shutdown_timeout(shutdown);
    (run(app), log, cluster)
}

/// A gate node that forwards `Ping` to "svc"; the forward errors it reports.
async fn gate(nats: &NatsServer) -> (Running, std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let cluster = Cluster::connect(&config(nats, "gate")).await.unwrap();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.forward::<Ping>("svc").unwrap();
    let (running, addr, _, errors) = forwarding_gate(cluster, p).await;
    (running, addr, errors)
}

async fn client(addr: std::net::SocketAddr) -> TcpClient {
    TcpClient::connect(addr, Framing::default(), Wire(Encoding::Json)).await
}

async fn ping(c: &mut TcpClient, n: u64) {
    c.send_msg("Ping", 0, &Ping { n }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_backend_hands_its_connection_to_another_in_order() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        // The connection binds to the only backend there is; then a second one comes.
        let (first, first_log, first_cluster) = backend(&nats, Duration::from_secs(5)).await;
        let (g, addr, errors) = gate(&nats).await;
        let mut c = client(addr).await;
        ping(&mut c, 1).await;
        let answer = c.recv_echo().await;
        assert_eq!(answer, format!("{} 1 1", first_cluster.node_id()));
        let (second, second_log, second_cluster) = backend(&nats, Duration::from_secs(5)).await;
        // The second serves once a new connection binds to it.
        let mut probes = Vec::new();
        loop {
            let mut probe = client(addr).await;
            ping(&mut probe, 1).await;
            let served_by_second = probe
                .recv_echo()
                .await
                .starts_with(second_cluster.node_id());
            probes.push(probe);
            if served_by_second {
                break;
            }
            assert!(probes.len() < 100, "the second backend never served");
        }

        // The first stops while pings stream in.
        let stopping = tokio::spawn(first.shutdown());
        for n in 2..=200 {
            ping(&mut c, n).await;
            if n % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        stopping.await.unwrap();
        let mut nodes = Vec::new();
        for n in 2..=200 {
            let answer = c.recv_echo().await;
            let (node, rest) = answer.split_once(' ').unwrap();
            // In order, each once, and the count went on where it was.
            assert_eq!(rest, format!("{n} {n}"), "answer {answer:?}");
            if nodes.last().map(String::as_str) != Some(node) {
                nodes.push(node.to_owned());
            }
        }
        assert_eq!(
            nodes,
            [first_cluster.node_id(), second_cluster.node_id()],
            "answered by the first node, then by the second"
        );
        assert!(
            errors.lock().unwrap().is_empty(),
            "{:?}",
            errors.lock().unwrap()
        );
        // Every connection of the first moved to the second: no close event, no new one.
        let count = |log: &Mutex<Vec<&str>>, what: &str| {
            log.lock().unwrap().iter().filter(|e| **e == what).count()
        };
        let on_first = count(&first_log, "new");
        assert_eq!(count(&first_log, "hand off"), on_first);
        assert_eq!(count(&first_log, "close"), 0);
        assert_eq!(count(&second_log, "adopt"), on_first);
        assert_eq!(count(&second_log, "close"), 0);
        drop(probes);
        g.shutdown().await;
        second.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_a_stopped_backend_left_unfinished_is_answered_with_an_error() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 6, async {
        let (b, _log, _bc) = backend(&nats, Duration::from_millis(300)).await;
        let (g, addr, errors) = gate(&nats).await;
        let mut c = client(addr).await;
        ping(&mut c, 1).await;
        c.recv_echo().await;
        // Its handler returns at once, but the work it started never finishes: it was not
        // handled, and the gate must not hear that it was.
        ping(&mut c, 0).await;
        b.shutdown().await;
        wait_for("the unfinished message to be reported", || {
            let reported = !errors.lock().unwrap().is_empty();
            async move { reported }
        })
        .await;
        assert_eq!(
            *errors.lock().unwrap(),
            ["Ping: no answer within 500ms"],
            "a timeout for the one unfinished message"
        );
        g.shutdown().await;
    })
    .await;
}

/// How long a backend holding `LONGLINK_MOVE_CONNS` (default 1,000) connections of one gate
/// takes to hand them all to another, and how many answers come back after it. A measurement,
/// not a check: `cargo test -p longlink --test backend_move -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_a_stopping_backend_moving_its_connections() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    let conns: u64 = std::env::var("LONGLINK_MOVE_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (first, first_log, _fc) = backend(&nats, Duration::from_secs(5)).await;
    let (g, addr, errors) = gate(&nats).await;
    let mut clients = Vec::new();
    for _ in 0..conns {
        let mut c = client(addr).await;
        loop {
            ping(&mut c, 1).await;
            let answer = tokio::time::timeout(Duration::from_millis(500), c.try_recv()).await;
            if let Ok(Ok(_)) = answer {
                break;
            }
        }
        clients.push(c);
    }
    errors.lock().unwrap().clear();
    let (second, second_log, _sc) = backend(&nats, Duration::from_secs(5)).await;
    // The second serves once the first's stop finds it (it probes the queue group).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = std::time::Instant::now();
    first.shutdown().await;
    let stopped = started.elapsed();
    let handed = first_log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| **e == "hand off")
        .count();
    // Each connection answers on the new node, its count going on.
    let started = std::time::Instant::now();
    for c in &mut clients {
        ping(c, 2).await;
    }
    for c in &mut clients {
        let answer = c.recv_echo().await;
        assert!(answer.ends_with(" 2 2"), "{answer}");
    }
    let answered = started.elapsed();
    let moved = second_log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| **e == "adopt")
        .count();
    println!(
        "{conns} connections: stop with moves {stopped:?} ({:.0} us each); handed off {handed}, \
         adopted {moved}; one more ping each answered by the new node in {answered:?}; \
         errors {}",
        stopped.as_micros() as f64 / conns as f64,
        errors.lock().unwrap().len()
    );
    g.shutdown().await;
    second.shutdown().await;
}
