//! A stopping gate of a cluster (a real `nats-server` on 127.0.0.1) hands its resumable
//! sessions to the other gates: while a room streams to its clients (TCP and WebSocket),
//! every client hears `LL_Move`, resumes on another gate and sees the stream exactly once,
//! in order; a client that ignores `LL_Move` loses its socket and resumes all the same; a
//! new process on the same port (`reuse_port`) takes the sessions of the old one; and a room
//! broadcast during a hand-over reaches the member exactly once.

#![allow(unreachable_pub, dead_code)]

#[path = "resume/client.rs"]
mod client;
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use client::{Client, Msg, Via};
use common::{Echo, Running, STEP, bounded, run};
use longlink::cluster::{Backend, Cluster, ClusterConfig};
use longlink::{Agent, App, Encoding, Gate, GateConfig, Groups, Module, Processor};
use longlink_testkit::NatsServer;
use serde::{Deserialize, Serialize};

/// Forwarded to the backend. `op` 0: join room `group` (answered `Echo{"joined"}`); 1:
/// broadcast `Echo{"<i>"}` to room `group` for `i` in `0..n`, one every `gap_us`
/// microseconds (in a task of its own).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Cmd {
    #[prost(uint64, tag = "1")]
    op: u64,
    #[prost(uint64, tag = "2")]
    n: u64,
    #[prost(string, tag = "3")]
    group: String,
    #[prost(uint64, tag = "4")]
    gap_us: u64,
}

fn wire(c: &Cmd) -> Vec<u8> {
    common::Wire(Encoding::Json).encode("Cmd", 1, c)
}

fn join(room: &str) -> Vec<u8> {
    wire(&Cmd {
        op: 0,
        group: room.into(),
        ..Cmd::default()
    })
}

fn stream(room: &str, n: u64, gap_us: u64) -> Vec<u8> {
    wire(&Cmd {
        op: 1,
        n,
        group: room.into(),
        gap_us,
    })
}

fn registry(p: &mut Processor) {
    p.register_outgoing::<Echo>().unwrap();
    p.register::<Cmd>().unwrap();
}

fn config(url: String, node_type: &str) -> ClusterConfig {
    ClusterConfig {
        nats_url: url,
        node_type: node_type.into(),
        request_timeout: Duration::from_millis(1000),
        ..ClusterConfig::default()
    }
}

struct Svc {
    rooms: Groups<String>,
    cluster: Cluster,
}

fn serve(svc: &mut Svc, c: Cmd, agent: &Agent) {
    match c.op {
        0 => {
            svc.rooms.join(c.group, agent);
            let _ = agent.write(&Echo {
                text: "joined".into(),
            });
        }
        _ => {
            // What `Groups::broadcast` sends for a room in a cluster: one NATS message each.
            let cluster = svc.cluster.clone();
            let group = format!("room.{}", c.group);
            let all: Vec<_> = (0..c.n)
                .map(|i| {
                    agent
                        .codec()
                        .encode(&Echo {
                            text: i.to_string(),
                        })
                        .unwrap()
                })
                .collect();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_micros(c.gap_us.max(1)));
                for encoded in all {
                    tick.tick().await;
                    cluster.broadcast_group(&group, &encoded);
                }
            });
        }
    }
}

async fn backend(nats: &NatsServer) -> Running {
    let cluster = Cluster::connect(&config(nats.url(), "svc")).await.unwrap();
    let svc = Svc {
        rooms: Groups::in_cluster("room", Some(&cluster)),
        cluster: cluster.clone(),
    };
    let module = Module::new("svc", svc);
    let m = module.module_ref();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.route(&m, serve).unwrap();
    let backend = Backend::builder(&cluster, "svc", p).build().unwrap();
    run(App::new().module(module).backend(backend))
}

/// A gate's settings: TCP and WebSocket on `tcp` and `ws` (port 0 for any), resume on, a
/// drain spread over 1 s and bounded by 4 s (the sessions of clients a test dropped keep a
/// stopping gate that long); one session waiting per address (every client here is
/// 127.0.0.1: the clients moving away must not push each other's sessions out).
fn gate_config(tcp: SocketAddr, ws: SocketAddr, reuse_port: bool) -> GateConfig {
    GateConfig {
        tcp_addr: tcp.to_string(),
        ws_addr: ws.to_string(),
        encoding: Encoding::Json,
        resume_window: Duration::from_secs(30),
        resume_buffer: 8192,
        pending_write_num: 8192,
        drain_spread: Duration::from_secs(1),
        drain_timeout: Duration::from_secs(4),
        max_waiting_per_ip: 1,
        reuse_port,
        ..GateConfig::default()
    }
}

/// A running gate and its addresses.
struct G {
    app: Running,
    tcp: SocketAddr,
    ws: SocketAddr,
}

impl G {
    fn addr(&self, via: Via) -> SocketAddr {
        match via {
            Via::Tcp => self.tcp,
            Via::Ws => self.ws,
        }
    }
}

async fn gate(nats: &NatsServer, config: GateConfig) -> G {
    let cluster = Cluster::connect(&self::config(nats.url(), "gate"))
        .await
        .unwrap();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.forward::<Cmd>("svc").unwrap();
    let gate = Gate::builder(config, p)
        .cluster(&cluster)
        .bind()
        .await
        .unwrap();
    let (tcp, ws) = (gate.tcp_addr().unwrap(), gate.ws_addr().unwrap());
    G {
        app: run(App::new().gate(gate)),
        tcp,
        ws,
    }
}

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A client of `addr` in room `room`, its `"joined"` read.
async fn member(via: Via, addr: SocketAddr, room: &str) -> Client {
    let mut c = Client::start(via, addr, Encoding::Json).await;
    c.sent += 1;
    c.link.send(join(room)).await;
    assert!(c.read_until(1).await);
    assert_eq!(c.texts, ["joined"]);
    c
}

/// What a client that honours `LL_Move` does while a room streams `n` messages to it: reads,
/// and on `LL_Move` goes on reading for the delay given, then resumes on `next` (by the same
/// transport); until it has the whole stream. Gives how many `LL_Move`s it heard.
async fn follow(c: &mut Client, n: u64, next: SocketAddr, honour: bool) -> usize {
    let mut moves = 0;
    let mut move_at: Option<tokio::time::Instant> = None;
    while c.received < 1 + n {
        let wait = match move_at {
            Some(at) => at.saturating_duration_since(tokio::time::Instant::now()),
            None => STEP,
        };
        let got = if wait.is_zero() {
            None
        } else {
            c.next(wait).await
        };
        match got {
            Some(Msg::Move(after_ms)) => {
                moves += 1;
                if honour {
                    move_at =
                        Some(tokio::time::Instant::now() + Duration::from_millis(after_ms.into()));
                }
            }
            Some(_) => {}
            None => {
                // The delay is over, or the socket is gone: resume on the next gate.
                move_at = None;
                let resumed = c.resume(next).await;
                assert!(resumed.is_ok(), "resumed on the other gate: {resumed:?}");
            }
        }
    }
    moves
}

/// The stream as a client must see it: "joined", then every message once, in order.
fn check_stream(c: &Client, n: u64, who: &str) {
    let want: Vec<String> = std::iter::once("joined".to_owned())
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
            "{who}: every message once, in order: first difference at {at}: got {:?}, want {:?} ({} received)",
            c.texts.get(at),
            want.get(at),
            c.texts.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_gate_moves_its_sessions_and_the_room_stream_arrives_once_in_order() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 12, async {
        let b = backend(&nats).await;
        let g1 = gate(&nats, gate_config(any(), any(), false)).await;
        let g2 = gate(&nats, gate_config(any(), any(), false)).await;
        const N: u64 = 3000;
        let mut clients = Vec::new();
        for i in 0..8 {
            let via = if i % 2 == 0 { Via::Tcp } else { Via::Ws };
            clients.push((via, member(via, g1.addr(via), "r").await));
        }
        // The stream comes from a client of gate 2: 3 s of it, one message a millisecond.
        let mut source = member(Via::Tcp, g2.tcp, "src").await;
        source.link.send(stream("r", N, 1000)).await;
        let followers: Vec<_> = clients
            .into_iter()
            .map(|(via, mut c)| {
                let next = g2.addr(via);
                tokio::spawn(async move {
                    let moves = follow(&mut c, N, next, true).await;
                    (c, moves)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stopping = tokio::spawn(g1.app.shutdown());
        for (i, f) in followers.into_iter().enumerate() {
            let (c, moves) = f.await.unwrap();
            assert_eq!(moves, 1, "client {i} heard LL_Move once");
            check_stream(&c, N, &format!("client {i} ({:?})", c.via));
        }
        stopping.await.unwrap();
        drop(source);
        g2.app.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_ignores_ll_move_resumes_after_its_socket_drops() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 12, async {
        let b = backend(&nats).await;
        let g1 = gate(&nats, gate_config(any(), any(), false)).await;
        let g2 = gate(&nats, gate_config(any(), any(), false)).await;
        const N: u64 = 3000;
        let mut clients = Vec::new();
        for via in [Via::Tcp, Via::Ws] {
            clients.push(member(via, g1.addr(via), "r").await);
        }
        let mut source = member(Via::Tcp, g2.tcp, "src").await;
        source.link.send(stream("r", N, 1000)).await;
        let followers: Vec<_> = clients
            .into_iter()
            .map(|mut c| {
                let next = g2.addr(c.via);
                tokio::spawn(async move {
                    let moves = follow(&mut c, N, next, false).await;
                    (c, moves)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stopping = tokio::spawn(g1.app.shutdown());
        for f in followers {
            let (c, moves) = f.await.unwrap();
            assert_eq!(moves, 1, "{:?}: LL_Move came (and was ignored)", c.via);
            check_stream(&c, N, &format!("{:?}", c.via));
        }
        stopping.await.unwrap();
        drop(source);
        g2.app.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_on_the_same_port_takes_the_sessions_of_the_old_one() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 12, async {
        let b = backend(&nats).await;
        let old = gate(&nats, gate_config(any(), any(), true)).await;
        let mut clients = Vec::new();
        for via in [Via::Tcp, Via::Ws, Via::Tcp, Via::Ws] {
            clients.push(member(via, old.addr(via), "r").await);
        }
        // The new one binds the same addresses while the old one still listens.
        let new = gate(&nats, gate_config(old.tcp, old.ws, true)).await;
        assert_eq!((new.tcp, new.ws), (old.tcp, old.ws));
        const N: u64 = 2000;
        let mut source = member(Via::Tcp, new.tcp, "src").await;
        source.link.send(stream("r", N, 1000)).await;
        let followers: Vec<_> = clients
            .into_iter()
            .map(|mut c| {
                // The same address: the old process no longer listens on it.
                let next = old.addr(c.via);
                tokio::spawn(async move {
                    let moves = follow(&mut c, N, next, true).await;
                    (c, moves)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        old.app.shutdown().await;
        for f in followers {
            let (c, moves) = f.await.unwrap();
            assert_eq!(moves, 1);
            check_stream(&c, N, &format!("{:?}", c.via));
        }
        drop(source);
        new.app.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_broadcast_during_hand_overs_reaches_the_member_exactly_once() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 12, async {
        let b = backend(&nats).await;
        let g1 = gate(&nats, gate_config(any(), any(), false)).await;
        let g2 = gate(&nats, gate_config(any(), any(), false)).await;
        const N: u64 = 6000;
        let mut c = member(Via::Tcp, g1.tcp, "r").await;
        let mut source = member(Via::Tcp, g2.tcp, "src").await;
        // A message every 200 µs: each hand-over's last round trip has some in flight.
        source.link.send(stream("r", N, 200)).await;
        let mut hops = 0;
        let mut at = [g1.tcp, g2.tcp].into_iter().cycle().skip(1);
        while c.received < 1 + N {
            if c.next(Duration::from_millis(500)).await.is_none() && c.received < 1 + N {
                break;
            }
            if c.received > (hops + 1) * N / 12 {
                // The session moves to the other gate.
                let to = at.next().unwrap();
                c.resume(to).await.expect("resumed on the other gate");
                hops += 1;
            }
        }
        assert!(hops >= 8, "{hops} hand-overs");
        check_stream(&c, N, "the member");
        drop((c, source));
        g2.app.shutdown().await;
        g1.app.shutdown().await;
        b.shutdown().await;
    })
    .await;
}
