//! A resumable session that moves between gates while its backend binding moves between
//! nodes (a rolling deploy that stops a gate and a backend node at about the same time),
//! over a real `nats-server` on 127.0.0.1: the connection's state on the backend (its count,
//! moved as user data through the hand-off and adopt hooks) arrives on the new node, for the
//! connection now on the new gate; the messages the client sends meanwhile are handled once
//! each, in order. The timing is forced with hooks that wait: the backend's hand-off hook
//! (the move is under way) and the gate's (the hand-over is under way).

#![allow(unreachable_pub, dead_code)]

#[path = "resume/client.rs"]
mod client;
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::{Client, Link, Msg, Via};
use common::{Echo, Framing, Running, STEP, TcpClient, Wire, bounded, run, wait_for};
use longlink::cluster::{Backend, Cluster, ClusterConfig};
use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Module, Processor};
use longlink_testkit::NatsServer;
use serde::{Deserialize, Serialize};

/// Forwarded to "svc", answered with `"<node> <n> <count>"`.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Ping {
    #[prost(uint64, tag = "1")]
    n: u64,
}

/// What the backend knows of a connection; it moves with it as user data.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Seen {
    count: u64,
}

/// A hook that waits while the test holds it (at most 5 s): it says when it was entered.
#[derive(Default)]
struct Hold {
    on: AtomicBool,
    entered: AtomicU32,
}

impl Hold {
    /// Runs on a module's task: blocks it while held (the module's work waits behind it).
    fn pass(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        while self.on.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn entered(&self) -> bool {
        self.entered.load(Ordering::SeqCst) > 0
    }

    fn hold(&self) {
        self.on.store(true, Ordering::SeqCst);
    }

    fn release(&self) {
        self.on.store(false, Ordering::SeqCst);
    }

    /// Lets go after `after`, from a task of its own.
    fn release_after(self: &Arc<Self>, after: Duration) {
        let hold = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            hold.release();
        });
    }
}

#[derive(Default)]
struct Svc {
    seen: HashMap<u64, Seen>,
    hold: Arc<Hold>,
    log: Arc<Mutex<Vec<&'static str>>>,
}

fn registry(p: &mut Processor) {
    p.register_outgoing::<Echo>().unwrap();
    p.register::<Ping>().unwrap();
}

fn config(nats: &NatsServer, node_type: &str) -> ClusterConfig {
    ClusterConfig {
        nats_url: nats.url(),
        node_type: node_type.into(),
        request_timeout: Duration::from_secs(2),
        ..ClusterConfig::default()
    }
}

struct Node {
    running: Running,
    id: String,
    hold: Arc<Hold>,
    log: Arc<Mutex<Vec<&'static str>>>,
}

/// A backend of type "svc" counting each connection's pings; its hand-off hook passes
/// through its hold for a connection with 3 pings or more.
async fn backend(nats: &NatsServer) -> Node {
    let cluster = Cluster::connect(&config(nats, "svc")).await.unwrap();
    let svc = Svc::default();
    let (hold, log) = (Arc::clone(&svc.hold), Arc::clone(&svc.log));
    let module = Module::new("svc", svc);
    let m = module.module_ref();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    let id = cluster.node_id().to_owned();
    let node = id.clone();
    p.route(&m, move |ctx: &mut Ctx<Svc>, ping: Ping, agent: &Agent| {
        let seen = ctx.seen.entry(agent.id()).or_default();
        seen.count += 1;
        let text = format!("{node} {} {}", ping.n, seen.count);
        let _ = agent.write(&Echo { text });
    })
    .unwrap();
    let backend = Backend::builder(&cluster, "svc", p)
        .user_data::<Seen>()
        .on_hand_off_agent(&m, |ctx: &mut Ctx<Svc>, agent: &Agent| {
            // The probes (one ping each) move without waiting.
            if ctx.seen.get(&agent.id()).is_some_and(|s| s.count >= 3) {
                ctx.hold.pass();
            }
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
        // A connection that pinged closing (the socket that resumed has an agent of its
        // own until its LL_Resume: it comes and goes without a ping).
        .on_close_agent(&m, |ctx: &mut Ctx<Svc>, agent: &Agent| {
            if ctx.seen.remove(&agent.id()).is_some() {
                ctx.log.lock().unwrap().push("close");
            }
        })
        .build()
        .unwrap();
    let app = App::new()
        .module(module)
        .backend(backend)
        .shutdown_timeout(Duration::from_secs(8));
    Node {
        running: run(app),
        id,
        hold,
        log,
    }
}

#[derive(Default)]
struct GateMod {
    hold: Arc<Hold>,
}

/// A gate with resumable sessions forwarding `Ping` to "svc"; its hand-off hook (a session
/// leaving for another gate) passes through its hold. The forward errors it reports.
async fn gate(nats: &NatsServer) -> (Running, SocketAddr, Arc<Hold>, Arc<Mutex<Vec<String>>>) {
    let cluster = Cluster::connect(&config(nats, "gate")).await.unwrap();
    let state = GateMod::default();
    let hold = Arc::clone(&state.hold);
    let module = Module::new("gate", state);
    let m = module.module_ref();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.forward::<Ping>("svc").unwrap();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let errs = Arc::clone(&errors);
    let gate = Gate::builder(
        GateConfig {
            tcp_addr: "127.0.0.1:0".into(),
            encoding: Encoding::Json,
            resume_window: Duration::from_secs(10),
            drain_timeout: Duration::ZERO,
            ..GateConfig::default()
        },
        p,
    )
    .cluster(&cluster)
    .on_hand_off_agent(&m, |ctx: &mut Ctx<GateMod>, _agent: &Agent| ctx.hold.pass())
    .on_forward_error(move |_agent, name, e| errs.lock().unwrap().push(format!("{name}: {e}")))
    .bind()
    .await
    .unwrap();
    let addr = gate.tcp_addr().unwrap();
    (
        run(App::new().module(module).gate(gate)),
        addr,
        hold,
        errors,
    )
}

/// Sends ping `n`, kept until acknowledged (a resume sends it again if the gate missed it).
async fn ping(c: &mut Client, n: u64) {
    let payload = Wire(Encoding::Json).encode("Ping", 1, &Ping { n });
    c.sent += 1;
    c.unacked.push((c.sent, payload.clone()));
    let _ = c.link.send(payload).await;
}

/// The answers until ping `n`'s: `(node, n, count)` each.
async fn answers_until(c: &mut Client, n: u64) -> Vec<(String, u64, u64)> {
    let mut got = Vec::new();
    loop {
        match c.next(STEP).await.expect("an answer") {
            Msg::Echo(text) => {
                let mut parts = text.split(' ');
                let node = parts.next().unwrap().to_owned();
                let m: u64 = parts.next().unwrap().parse().unwrap();
                let count: u64 = parts.next().unwrap().parse().unwrap();
                got.push((node, m, count));
                if m == n {
                    return got;
                }
            }
            _ => continue,
        }
    }
}

/// Waits until a connection to `addr` is served by `node` (it serves the type's queue
/// group): the probes are kept open.
async fn served_by(addr: SocketAddr, node: &str, probes: &mut Vec<TcpClient>) {
    loop {
        let mut probe = TcpClient::connect(addr, Framing::default(), Wire(Encoding::Json)).await;
        probe.send_msg("Ping", 1, &Ping { n: 1 }).await;
        let answer = probe.recv_echo().await;
        probes.push(probe);
        if answer.starts_with(node) {
            return;
        }
        assert!(probes.len() < 100, "{node} never served");
    }
}

/// Which of the two races: the backend's move under way when the hand-over starts (with or
/// without a message of the client's held at the old gate for it), or the hand-over under
/// way when the backend node starts stopping.
#[derive(Clone, Copy, PartialEq)]
enum First {
    Move,
    MoveWithHeld,
    Handover,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_handed_over_during_its_backend_move_keeps_its_state() {
    both_at_once(First::Move).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_held_by_a_move_during_a_hand_over_is_handled_once() {
    both_at_once(First::MoveWithHeld).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backend_move_during_a_session_hand_over_keeps_its_state() {
    both_at_once(First::Handover).await;
}

async fn both_at_once(first: First) {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 12, async {
        let b1 = backend(&nats).await;
        let (g1, addr1, g1_hold, g1_errors) = gate(&nats).await;
        let (g2, addr2, _g2_hold, g2_errors) = gate(&nats).await;
        let mut probes = Vec::new();
        served_by(addr1, &b1.id, &mut probes).await;
        // The session binds to the first node, and counts three pings there.
        let mut c = Client::start(Via::Tcp, addr1, Encoding::Json).await;
        for n in 1..=3 {
            ping(&mut c, n).await;
        }
        let before = answers_until(&mut c, 3).await;
        assert_eq!(before.last().unwrap(), &(b1.id.clone(), 3, 3));
        let b2 = backend(&nats).await;
        served_by(addr2, &b2.id, &mut probes).await;

        b1.hold.hold();
        let mut next = 4;
        let stopping = match first {
            First::Move | First::MoveWithHeld => {
                // The first node stops: its hand-off hook holds the move; meanwhile the
                // session leaves gate 1 for gate 2.
                let stopping = tokio::spawn(b1.running.shutdown());
                let b1_hold = Arc::clone(&b1.hold);
                wait_for("the move to be under way", || {
                    let entered = b1_hold.entered();
                    async move { entered }
                })
                .await;
                if first == First::MoveWithHeld {
                    // Gate 1 holds it until the move ends; the claim of the session waits
                    // for it (or, not read before the socket went, the resume sends it again).
                    ping(&mut c, next).await;
                    next += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                c.link = Link::Gone;
                b1.hold.release_after(Duration::from_millis(300));
                let resumed = c.resume(addr2).await.expect("resumed on gate 2");
                assert!(resumed == 3 || resumed == next - 1, "{resumed}");
                stopping
            }
            First::Handover => {
                // The session leaves gate 1: gate 1's hand-off hook holds the hand-over;
                // meanwhile the first node stops (its own hand-off hook holds a move).
                g1_hold.hold();
                c.link = Link::Gone;
                let mut resuming = tokio::spawn(async move {
                    let resumed = c.resume(addr2).await;
                    (c, resumed)
                });
                let g1_entered = Arc::clone(&g1_hold);
                wait_for("the hand-over to be under way", || {
                    let entered = g1_entered.entered();
                    async move { entered }
                })
                .await;
                let stopping = tokio::spawn(b1.running.shutdown());
                let b1_hold = Arc::clone(&b1.hold);
                let move_seen = tokio::time::timeout(Duration::from_millis(500), async {
                    while !b1_hold.entered() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                });
                let _ = move_seen.await;
                g1_hold.release();
                b1.hold.release_after(Duration::from_millis(300));
                let (back, resumed) = (&mut resuming).await.unwrap();
                c = back;
                assert_eq!(resumed, Ok(3), "resumed on gate 2");
                stopping
            }
        };
        // The client goes on through gate 2 while the move ends: each ping once, in order,
        // the count going on where it was, the last ones on the second node.
        for n in next..=10 {
            ping(&mut c, n).await;
        }
        let after = answers_until(&mut c, 10).await;
        let counts: Vec<(u64, u64)> = after.iter().map(|(_, n, count)| (*n, *count)).collect();
        let want: Vec<(u64, u64)> = (4..=10).map(|n| (n, n)).collect();
        assert_eq!(counts, want, "answers {after:?}");
        stopping.await.unwrap();
        ping(&mut c, 11).await;
        let last = answers_until(&mut c, 11).await;
        assert_eq!(
            last,
            [(b2.id.clone(), 11, 11)],
            "the second node serves it now"
        );
        let errors: Vec<String> = [&g1_errors, &g2_errors]
            .iter()
            .flat_map(|e| e.lock().unwrap().clone())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let log = |log: &Mutex<Vec<&'static str>>| log.lock().unwrap().clone();
        assert!(
            !log(&b1.log).contains(&"close"),
            "first node: {:?}",
            log(&b1.log)
        );
        assert!(
            !log(&b2.log).contains(&"close"),
            "second node: {:?}",
            log(&b2.log)
        );
        drop((c, probes));
        g1.shutdown().await;
        g2.shutdown().await;
        b2.running.shutdown().await;
    })
    .await;
}
