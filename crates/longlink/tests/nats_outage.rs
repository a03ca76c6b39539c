//! A gate and backends through a NATS outage, over real `nats-server` processes killed and
//! restarted (or a gate's NATS connection cut through a proxy): group broadcasts the gate
//! missed meanwhile reach its members once and in order; a client message the gate refused
//! is never handled later; connections stay bound to their backend node.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Echo, Framing, Running, STEP, TcpClient, Wire, bounded, run, wait_for};
use longlink::cluster::{Backend, Cluster, ClusterConfig};
use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Groups, Module, Processor, Sessions};
use longlink_testkit::{NatsServer, Proxy, free_addr};
use serde::{Deserialize, Serialize};

/// Forwarded from the gate. `n == 0` logs in as `uid` and joins the room; the backend
/// answers `"<node> in"`, else `"<node> <n>"` (from 1000 on, `"later <n>"` 500 ms after;
/// from 2000 on, the handler takes 600 ms; from 3000 on, `"burst <n> <i>"` for `i` in 1 to
/// 20, one right after the other, 500 ms after).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Ping {
    #[prost(uint64, tag = "1")]
    n: u64,
    #[prost(uint64, tag = "2")]
    uid: u64,
}

fn registry(p: &mut Processor) {
    p.register::<Ping>().unwrap();
    p.register_outgoing::<Echo>().unwrap();
}

fn config(url: String, node_type: &str, request_timeout: Duration) -> ClusterConfig {
    ClusterConfig {
        nats_url: url,
        node_type: node_type.into(),
        request_timeout,
        ..ClusterConfig::default()
    }
}

struct Svc {
    /// Every `n` handled here.
    handled: Arc<Mutex<Vec<u64>>>,
    sessions: Sessions,
    rooms: Groups<&'static str>,
}

/// A backend of type "svc": logs in, joins the room, answers and logs every ping.
async fn backend(url: String, timeout: Duration) -> (Running, Arc<Mutex<Vec<u64>>>, Cluster) {
    let cluster = Cluster::connect(&config(url, "svc", timeout))
        .await
        .unwrap();
    let handled = Arc::new(Mutex::new(Vec::new()));
    let svc = Svc {
        handled: Arc::clone(&handled),
        sessions: Sessions::default(),
        rooms: Groups::in_cluster("room", Some(&cluster)),
    };
    let module = Module::new("svc", svc);
    let m = module.module_ref();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    let node = cluster.node_id().to_owned();
    p.route(&m, move |ctx: &mut Ctx<Svc>, ping: Ping, agent: &Agent| {
        if ping.n >= 3000 {
            // Many writes at once, later: queued together, they share NATS messages.
            let agent = agent.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                for i in 1..=20 {
                    let text = format!("burst {} {i}", ping.n);
                    let _ = agent.write(&Echo { text });
                }
            });
        } else if ping.n >= 2000 {
            // A slow handler: it ends (and is acknowledged) later.
            std::thread::sleep(Duration::from_millis(600));
        } else if ping.n >= 1000 {
            // Written later, from the backend (a push to the gate).
            let agent = agent.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let text = format!("later {}", ping.n);
                let _ = agent.write(&Echo { text });
            });
        }
        let text = if ping.n == 0 {
            ctx.sessions.bind(ping.uid, agent);
            ctx.rooms.join("lobby", agent);
            format!("{node} in")
        } else {
            ctx.handled.lock().unwrap().push(ping.n);
            format!("{node} {}", ping.n)
        };
        let _ = agent.write(&Echo { text });
    })
    .unwrap();
    let backend = Backend::builder(&cluster, "svc", p).build().unwrap();
    (
        run(App::new().module(module).backend(backend)),
        handled,
        cluster,
    )
}

/// A gate on NATS at `url` that forwards `Ping` to "svc"; a refused message is answered
/// with `Echo{"refused"}`, a broadcast lost for good with `Echo{"lost"}`.
async fn gate(url: String, timeout: Duration) -> (Running, SocketAddr, Cluster) {
    let cluster = Cluster::connect(&config(url, "gate", timeout))
        .await
        .unwrap();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.forward::<Ping>("svc").unwrap();
    let gate = Gate::builder(
        GateConfig {
            tcp_addr: "127.0.0.1:0".into(),
            encoding: Encoding::Json,
            ..GateConfig::default()
        },
        p,
    )
    .cluster(&cluster)
    .on_forward_error(|agent, _name, _e| {
        let _ = agent.write(&Echo {
            text: "refused".into(),
        });
    })
    .on_broadcast_loss(|agent| {
        let _ = agent.write(&Echo {
            text: "lost".into(),
        });
    })
    .bind()
    .await
    .unwrap();
    let addr = gate.tcp_addr().unwrap();
    (run(App::new().gate(gate)), addr, cluster)
}

async fn client(addr: SocketAddr) -> TcpClient {
    TcpClient::connect(addr, Framing::default(), Wire(Encoding::Json)).await
}

async fn ping(c: &mut TcpClient, n: u64, uid: u64) {
    c.send_msg("Ping", 0, &Ping { n, uid }).await;
}

fn nats_addr(nats: &NatsServer) -> SocketAddr {
    nats.url().trim_start_matches("nats://").parse().unwrap()
}

async fn connected(cluster: &Cluster, yes: bool) {
    let what = if yes { "connected" } else { "disconnected" };
    wait_for(&format!("the node {what}"), || async {
        (cluster.nats().connection_state() == async_nats::connection::State::Connected) == yes
    })
    .await;
    // The client's event (what the node acts on) follows its state.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// No message within `d`.
async fn silent(c: &mut TcpClient, d: Duration) {
    if let Ok(Ok(payload)) = tokio::time::timeout(d, c.try_recv()).await {
        panic!("unexpected {:?}", c.wire.decode_echo(&payload));
    }
}

/// A publisher that numbers its broadcasts to the room "lobby".
struct Publisher {
    cluster: Cluster,
    processor: Processor,
}

impl Publisher {
    async fn broadcast(&self, texts: &[&str]) {
        for text in texts {
            let encoded = self
                .processor
                .encode(&Echo {
                    text: (*text).into(),
                })
                .unwrap();
            self.cluster.broadcast_group("room.lobby", &encoded);
        }
        // Out of this process before the test goes on.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = self.cluster.nats().flush().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_a_gate_missed_while_away_from_nats_reach_it_once_in_order() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(Duration::from_secs(60), async {
        let t = Duration::from_secs(2);
        let (b, _handled, _bc) = backend(nats.url(), t).await;
        // The gate reaches NATS through a proxy that can cut it off.
        let proxy = Proxy::start(nats_addr(&nats)).await.unwrap();
        let (g, addr, gc) = gate(format!("nats://{}", proxy.addr()), t).await;
        let mut processor = Processor::new(Encoding::Json);
        registry(&mut processor);
        let publisher = Publisher {
            cluster: Cluster::connect(&config(nats.url(), "pub", t))
                .await
                .unwrap(),
            processor,
        };
        let mut c = client(addr).await;
        ping(&mut c, 0, 1).await;
        assert!(c.recv_echo().await.ends_with(" in"));

        publisher.broadcast(&["b1", "b2"]).await;
        assert_eq!(c.recv_echo().await, "b1");
        assert_eq!(c.recv_echo().await, "b2");

        // Sent while the gate is away: the last ones before a silence.
        proxy.retarget(free_addr()).unwrap();
        proxy.cut_all();
        connected(&gc, false).await;
        publisher.broadcast(&["b3", "b4", "b5"]).await;
        proxy.retarget(nats_addr(&nats)).unwrap();
        connected(&gc, true).await;
        for want in ["b3", "b4", "b5"] {
            assert_eq!(c.recv_echo().await, want);
        }

        // Missed while away, then one more heard live at once.
        proxy.retarget(free_addr()).unwrap();
        proxy.cut_all();
        connected(&gc, false).await;
        publisher.broadcast(&["b6"]).await;
        proxy.retarget(nats_addr(&nats)).unwrap();
        connected(&gc, true).await;
        publisher.broadcast(&["b7"]).await;
        for want in ["b6", "b7"] {
            assert_eq!(c.recv_echo().await, want);
        }
        silent(&mut c, Duration::from_millis(500)).await;
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_backend_wrote_while_its_gate_was_away_from_nats_reaches_the_client() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(Duration::from_secs(60), async {
        let t = Duration::from_secs(2);
        let (b, _handled, _bc) = backend(nats.url(), t).await;
        let proxy = Proxy::start(nats_addr(&nats)).await.unwrap();
        let (g, addr, gc) = gate(format!("nats://{}", proxy.addr()), t).await;
        let mut c = client(addr).await;
        ping(&mut c, 0, 1).await;
        let node = c.recv_echo().await.trim_end_matches(" in").to_owned();
        for round in 1..=2u64 {
            ping(&mut c, 1000 + round, 0).await;
            assert_eq!(c.recv_echo().await, format!("{node} {}", 1000 + round));
            // The backend writes while the gate is away.
            proxy.retarget(free_addr()).unwrap();
            proxy.cut_all();
            connected(&gc, false).await;
            tokio::time::sleep(Duration::from_millis(800)).await;
            proxy.retarget(nats_addr(&nats)).unwrap();
            connected(&gc, true).await;
            assert_eq!(c.recv_echo().await, format!("later {}", 1000 + round));
        }
        silent(&mut c, Duration::from_millis(500)).await;
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_batched_while_their_gate_was_away_from_nats_reach_the_client_once_in_order() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(Duration::from_secs(60), async {
        let t = Duration::from_secs(2);
        let (b, _handled, _bc) = backend(nats.url(), t).await;
        let proxy = Proxy::start(nats_addr(&nats)).await.unwrap();
        let (g, addr, gc) = gate(format!("nats://{}", proxy.addr()), t).await;
        let mut c = client(addr).await;
        ping(&mut c, 0, 1).await;
        let node = c.recv_echo().await.trim_end_matches(" in").to_owned();
        for round in 1..=2u64 {
            let n = 3000 + round;
            ping(&mut c, n, 0).await;
            assert_eq!(c.recv_echo().await, format!("{node} {n}"));
            // The backend writes its burst while the gate is away.
            proxy.retarget(free_addr()).unwrap();
            proxy.cut_all();
            connected(&gc, false).await;
            tokio::time::sleep(Duration::from_millis(800)).await;
            proxy.retarget(nats_addr(&nats)).unwrap();
            connected(&gc, true).await;
            for i in 1..=20 {
                assert_eq!(c.recv_echo().await, format!("burst {n} {i}"));
            }
        }
        silent(&mut c, Duration::from_millis(500)).await;
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_handled_while_its_gate_was_away_from_nats_is_not_refused() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(Duration::from_secs(60), async {
        let t = Duration::from_secs(2);
        let (b, handled, _bc) = backend(nats.url(), t).await;
        let proxy = Proxy::start(nats_addr(&nats)).await.unwrap();
        let (g, addr, gc) = gate(format!("nats://{}", proxy.addr()), t).await;
        let mut c = client(addr).await;
        ping(&mut c, 0, 1).await;
        let node = c.recv_echo().await.trim_end_matches(" in").to_owned();
        // The backend takes it, then handles and acknowledges it while the gate is away:
        // that acknowledgement is lost.
        ping(&mut c, 2001, 0).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.retarget(free_addr()).unwrap();
        proxy.cut_all();
        connected(&gc, false).await;
        wait_for("the backend to handle it", || {
            let done = handled.lock().unwrap().contains(&2001);
            async move { done }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.retarget(nats_addr(&nats)).unwrap();
        connected(&gc, true).await;
        assert_eq!(c.recv_echo().await, format!("{node} 2001"));
        // Not refused once its timeout (counted again from the reconnection) has passed.
        silent(&mut c, t + Duration::from_secs(1)).await;
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_from_a_node_the_gate_had_never_heard_is_asked_for_again() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(Duration::from_secs(60), async {
        let t = Duration::from_secs(2);
        let (b, handled, _bc) = backend(nats.url(), t).await;
        let proxy = Proxy::start(nats_addr(&nats)).await.unwrap();
        let (g, addr, gc) = gate(format!("nats://{}", proxy.addr()), t).await;
        let mut c = client(addr).await;
        // The first message of the connection: nothing the backend sent this gate before its
        // answer and acknowledgement, which go while the gate is away.
        ping(&mut c, 2001, 0).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.retarget(free_addr()).unwrap();
        proxy.cut_all();
        connected(&gc, false).await;
        wait_for("the backend to handle it", || {
            let done = handled.lock().unwrap().contains(&2001);
            async move { done }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.retarget(nats_addr(&nats)).unwrap();
        connected(&gc, true).await;
        // Handled: never refused (its answer, from a publisher the gate had not heard, may
        // be lost: docs/known-gaps.md).
        let until = tokio::time::Instant::now() + t + Duration::from_secs(1);
        while let Ok(Ok(payload)) = tokio::time::timeout_at(until, c.try_recv()).await {
            let text = c.wire.decode_echo(&payload);
            assert_ne!(text, "refused", "a handled message refused");
        }
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_refused_in_a_nats_outage_is_never_handled_and_bindings_stay() {
    let Some(mut nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(Duration::from_secs(60), async {
        let t = Duration::from_millis(500);
        let (b1, handled1, bc1) = backend(nats.url(), t).await;
        let (b2, handled2, bc2) = backend(nats.url(), t).await;
        let (g, addr, gc) = gate(nats.url(), t).await;
        // Clients bound to either node (the queue group picks).
        let mut clients = Vec::new();
        for uid in 1..=8 {
            let mut c = client(addr).await;
            ping(&mut c, 0, uid).await;
            let reply = c.recv_echo().await;
            let node = reply.trim_end_matches(" in").to_owned();
            clients.push((c, node));
        }

        nats.stop();
        connected(&gc, false).await;
        for (c, _) in &mut clients {
            ping(c, 1, 0).await;
        }
        // Refused once `request_timeout` has passed without NATS.
        for (c, _) in &mut clients {
            assert_eq!(c.recv_echo().await, "refused");
        }
        tokio::time::sleep(t).await;
        nats.restart().await;
        for cluster in [&gc, &bc1, &bc2] {
            connected(cluster, true).await;
        }

        // The same node goes on with each connection, and the refused message was never
        // handled.
        for (c, node) in &mut clients {
            ping(c, 2, 0).await;
            assert_eq!(c.recv_echo().await, format!("{node} 2"));
        }
        let handled: Vec<u64> = [&handled1, &handled2]
            .iter()
            .flat_map(|h| h.lock().unwrap().clone())
            .collect();
        assert_eq!(
            handled,
            vec![2; 8],
            "only the messages answered are handled"
        );
        g.shutdown().await;
        b1.shutdown().await;
        b2.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_in_a_short_nats_outage_waits_and_is_handled_once() {
    let Some(mut nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(Duration::from_secs(60), async {
        let t = STEP;
        let (b, handled, bc) = backend(nats.url(), t).await;
        let (g, addr, gc) = gate(nats.url(), t).await;
        let mut c = client(addr).await;
        ping(&mut c, 0, 1).await;
        let node = c.recv_echo().await.trim_end_matches(" in").to_owned();

        nats.stop();
        connected(&gc, false).await;
        ping(&mut c, 1, 0).await;
        ping(&mut c, 2, 0).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        nats.restart().await;
        connected(&bc, true).await;
        assert_eq!(c.recv_echo().await, format!("{node} 1"));
        assert_eq!(c.recv_echo().await, format!("{node} 2"));
        silent(&mut c, Duration::from_millis(500)).await;
        assert_eq!(*handled.lock().unwrap(), [1, 2]);
        g.shutdown().await;
        b.shutdown().await;
    })
    .await;
}
