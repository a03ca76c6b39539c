//! Sessions handed over between the gates of a cluster (a real `nats-server` on 127.0.0.1),
//! and what clients put into NATS subjects: a session of 6 MB (far over NATS's 1 MiB
//! `max_payload`) moves whole; a hand-over cut in the middle leaves the session where it was
//! and tells the client to retry; a resume token with a 5,000-character gate name, and a
//! group named with 5,000 characters, leave every node's NATS connection up.

#![allow(unreachable_pub, dead_code)]

#[path = "resume/client.rs"]
mod client;
mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{Client, Link, Msg, Via};
use common::{Echo, Running, STEP, bounded, run};
use longlink::cluster::{Backend, Cluster, ClusterConfig};
use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Groups, Module, Processor, Sessions};
use longlink_testkit::{NatsServer, Proxy};
use serde::{Deserialize, Serialize};

/// Forwarded to the backend. `op` 0: log in as `uid` (answered `Echo{"in"}`); 1: write `n`
/// messages of `size` bytes (`Echo{"<i>:xxx…"}`); 2: join room `group` (answered
/// `Echo{"joined"}`); 3: broadcast `Echo{text}` to room `group`; 4: write `Echo{"s<i>"}` for
/// `i` in `0..n`, one every millisecond or so.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
struct Cmd {
    #[prost(uint64, tag = "1")]
    op: u64,
    #[prost(uint64, tag = "2")]
    uid: u64,
    #[prost(uint64, tag = "3")]
    n: u64,
    #[prost(uint64, tag = "4")]
    size: u64,
    #[prost(string, tag = "5")]
    group: String,
    #[prost(string, tag = "6")]
    text: String,
}

fn cmd(op: u64) -> Cmd {
    Cmd {
        op,
        ..Cmd::default()
    }
}

fn wire(c: &Cmd) -> Vec<u8> {
    common::Wire(Encoding::Json).encode("Cmd", 1, c)
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

/// The `i`th message of a fill of `size` bytes.
fn filler(i: u64, size: u64) -> String {
    let head = format!("{i}:");
    let pad = (size as usize).saturating_sub(head.len());
    head + &"x".repeat(pad)
}

struct Svc {
    log: Arc<Mutex<Vec<String>>>,
    sessions: Sessions,
    rooms: Groups<String>,
}

fn serve(ctx: &mut Ctx<Svc>, c: Cmd, agent: &Agent) {
    match c.op {
        0 => {
            ctx.sessions.bind(c.uid, agent);
            let _ = agent.write(&Echo { text: "in".into() });
        }
        1 => {
            for i in 0..c.n {
                let text = filler(i, c.size);
                if agent.write(&Echo { text }).is_err() {
                    break;
                }
            }
        }
        4 => {
            // A slow stream: it goes on while the client is away and while the session moves.
            let agent = agent.clone();
            tokio::spawn(async move {
                for i in 0..c.n {
                    if agent
                        .write(&Echo {
                            text: format!("s{i}"),
                        })
                        .is_err()
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
        }
        2 => {
            ctx.rooms.join(c.group, agent);
            let _ = agent.write(&Echo {
                text: "joined".into(),
            });
        }
        _ => {
            let encoded = agent.codec().encode(&Echo { text: c.text }).unwrap();
            ctx.rooms.broadcast(&c.group, &encoded);
        }
    }
}

async fn backend(nats: &NatsServer) -> (Running, Arc<Mutex<Vec<String>>>, Cluster) {
    let cluster = Cluster::connect(&config(nats.url(), "svc")).await.unwrap();
    let svc = Svc {
        log: Arc::default(),
        sessions: Sessions::default(),
        rooms: Groups::in_cluster("room", Some(&cluster)),
    };
    let log = Arc::clone(&svc.log);
    let module = Module::new("svc", svc);
    let m = module.module_ref();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.route(&m, serve).unwrap();
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

/// A gate whose cluster connection goes to `url`; sessions may keep 16 MiB.
async fn gate(url: String) -> (Running, SocketAddr, Cluster) {
    let cluster = Cluster::connect(&config(url, "gate")).await.unwrap();
    let mut p = Processor::new(Encoding::Json);
    registry(&mut p);
    p.forward::<Cmd>("svc").unwrap();
    let gate = Gate::builder(
        GateConfig {
            tcp_addr: "127.0.0.1:0".into(),
            encoding: Encoding::Json,
            resume_window: Duration::from_secs(30),
            resume_buffer: 4096,
            pending_write_num: 4096,
            pending_write_bytes: 16 * 1024 * 1024,
            max_msg_len: 8192,
            // A stop without the drain (tests/drain.rs has it): the sessions end with it.
            drain_timeout: Duration::ZERO,
            ..GateConfig::default()
        },
        p,
    )
    .cluster(&cluster)
    .bind()
    .await
    .unwrap();
    let addr = gate.tcp_addr().unwrap();
    (run(App::new().gate(gate)), addr, cluster)
}

/// How many times the node's NATS client has connected (1 while it never lost NATS).
fn connects(cluster: &Cluster) -> u64 {
    cluster.nats().statistics().connects.load(Ordering::Relaxed)
}

/// The next application message's text (the server's `LL_Ack`s are skipped).
async fn echo(c: &mut Client) -> String {
    loop {
        match c.next(STEP).await {
            Some(Msg::Echo(text)) => return text,
            Some(_) => continue,
            None => panic!("no message within {STEP:?}"),
        }
    }
}

const FILL: u64 = 1000;
const SIZE: u64 = 6000;
const STREAM: u64 = 2000;

/// A client on `addr` logged in as `uid`, which has received (and not acknowledged) a fill
/// of [`FILL`] × [`SIZE`] bytes (6 MB) and the start of a slow stream of [`STREAM`]
/// messages, then lost its socket and, it says, everything but the login's answer. The
/// stream goes on.
async fn filled_and_dropped(addr: SocketAddr, uid: u64) -> Client {
    let mut c = Client::start(Via::Tcp, addr, Encoding::Json).await;
    c.ack_every = u64::MAX;
    c.sent += 1;
    c.link.send(wire(&Cmd { uid, ..cmd(0) })).await;
    assert!(c.read_until(1).await);
    assert_eq!(c.texts, ["in"]);
    c.sent += 1;
    let fill = Cmd {
        n: FILL,
        size: SIZE,
        ..cmd(1)
    };
    c.link.send(wire(&fill)).await;
    assert!(c.read_until(1 + FILL).await, "the whole fill, first time");
    c.sent += 1;
    c.link
        .send(wire(&Cmd {
            n: STREAM,
            ..cmd(4)
        }))
        .await;
    assert!(c.read_until(1 + FILL + 10).await, "the stream has begun");
    c.link = Link::Gone;
    c.received = 1;
    c.texts.truncate(1);
    c
}

/// Reads the replay and the rest of the stream: every message once, in order, then (a round
/// trip through the backend) nothing but the answer to a new login.
async fn replayed_whole(c: &mut Client, uid: u64) {
    let all = 1 + FILL + STREAM;
    assert!(c.read_until(all).await, "the fill and the stream, whole");
    let want: Vec<String> = std::iter::once("in".to_owned())
        .chain((0..FILL).map(|i| filler(i, SIZE)))
        .chain((0..STREAM).map(|i| format!("s{i}")))
        .collect();
    if c.texts != want {
        let at = c.texts.iter().zip(&want).position(|(a, b)| a != b);
        let at = at.unwrap_or(want.len().min(c.texts.len()));
        let shown = |v: &[String]| v.get(at).map(|t| t.chars().take(12).collect::<String>());
        panic!(
            "every message once, in order: first difference at {at}: got {:?}, want {:?}",
            shown(&c.texts),
            shown(&want)
        );
    }
    c.sent += 1;
    c.link.send(wire(&Cmd { uid, ..cmd(0) })).await;
    assert!(c.read_until(all + 1).await);
    assert_eq!(
        c.texts.last().map(String::as_str),
        Some("in"),
        "nothing twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_of_6_mb_moves_between_gates_whole() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 12, async {
        let (b, log, _bc) = backend(&nats).await;
        let (g1, addr1, _) = gate(nats.url()).await;
        let (g2, addr2, _) = gate(nats.url()).await;
        let mut c = filled_and_dropped(addr1, 7).await;
        let old_token = c.token.clone();
        let started = std::time::Instant::now();
        let handled = c.resume(addr2).await.expect("resumed on the other gate");
        // Reported, not asserted: how long the 6 MB hand-over took (LL_Resume to LL_Resumed).
        eprintln!(
            "hand-over of {FILL} x {SIZE} bytes: {:?}",
            started.elapsed()
        );
        assert_eq!(handled, 3, "gate 1 had handled the three client messages");
        replayed_whole(&mut c, 7).await;
        let events = log.lock().unwrap().clone();
        let session = events[0].trim_start_matches("new ").to_owned();
        assert!(!events.contains(&format!("close {session}")), "{events:?}");
        // Gate 1 let the session go: it is on one gate only.
        let proto = client::Proto(Encoding::Json);
        let mut old = Link::connect(Via::Tcp, addr1).await;
        old.send(proto.resume(&old_token, 1)).await;
        let answer = old.recv_within(STEP).await.expect("an answer");
        assert_eq!(proto.decode(&answer), Msg::Refused("unknown".into()));
        drop(c);
        g2.shutdown().await;
        g1.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_cut_midway_leaves_the_session_where_it_was() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 12, async {
        let (b, log, _bc) = backend(&nats).await;
        let (g1, addr1, _) = gate(nats.url()).await;
        // Gate 2 reaches NATS through a proxy, to cut it in the middle of the transfer.
        let nats_addr: SocketAddr = nats.url().trim_start_matches("nats://").parse().unwrap();
        let proxy = Proxy::start(nats_addr).await.unwrap();
        let (g2, addr2, _) = gate(format!("nats://{}", proxy.addr())).await;
        let mut c = filled_and_dropped(addr1, 7).await;
        // 3 MB more towards gate 2, then its NATS connection breaks: half the session.
        proxy.cut_after(3_000_000);
        assert_eq!(
            c.resume(addr2).await,
            Err("retry".into()),
            "the client is told to retry"
        );
        // The session is still on gate 1, whole, and its backend reaches it there.
        let handled = c
            .resume(addr1)
            .await
            .expect("resumed on the gate that held it");
        assert_eq!(handled, 3);
        replayed_whole(&mut c, 7).await;
        let events = log.lock().unwrap().clone();
        let session = events[0].trim_start_matches("new ").to_owned();
        assert!(!events.contains(&format!("close {session}")), "{events:?}");
        drop(c);
        g2.shutdown().await;
        g1.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_gate_name_in_a_token_leaves_the_nats_connection_up() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 8, async {
        let (b, _log, bc) = backend(&nats).await;
        let (g1, addr1, c1) = gate(nats.url()).await;
        let (g2, addr2, c2) = gate(nats.url()).await;
        let before = [connects(&bc), connects(&c1), connects(&c2)];
        let proto = client::Proto(Encoding::Json);
        let secret = "0123456789abcdef".repeat(3);
        for holder in ["g".repeat(5000), "a.b".into(), "x y".into(), String::new()] {
            let mut link = Link::connect(Via::Tcp, addr2).await;
            link.send(proto.resume(&format!("{holder}.{secret}"), 0))
                .await;
            let answer = link.recv_within(STEP).await.expect("an answer");
            assert_eq!(proto.decode(&answer), Msg::Refused("unknown".into()));
        }
        // Cross-gate traffic goes on: a room on gate 1 hears a client of gate 2, and
        // both log in through the backend.
        let mut a = Client::start(Via::Tcp, addr1, Encoding::Json).await;
        let mut z = Client::start(Via::Tcp, addr2, Encoding::Json).await;
        for round in 0..5 {
            let room = format!("r{round}");
            a.link
                .send(wire(&Cmd {
                    group: room.clone(),
                    ..cmd(2)
                }))
                .await;
            assert_eq!(echo(&mut a).await, "joined");
            let shout = Cmd {
                group: room,
                text: format!("hi {round}"),
                ..cmd(3)
            };
            z.link.send(wire(&shout)).await;
            assert_eq!(echo(&mut a).await, format!("hi {round}"));
        }
        let after = [connects(&bc), connects(&c1), connects(&c2)];
        assert_eq!(before, after, "no node lost its NATS connection");
        drop((a, z));
        g2.shutdown().await;
        g1.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_named_with_5000_characters_reaches_its_members_across_gates() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(STEP * 8, async {
        let (b, _log, bc) = backend(&nats).await;
        let (g1, addr1, c1) = gate(nats.url()).await;
        let (g2, addr2, c2) = gate(nats.url()).await;
        let before = [connects(&bc), connects(&c1), connects(&c2)];
        let mut a = Client::start(Via::Tcp, addr1, Encoding::Json).await;
        let mut z = Client::start(Via::Tcp, addr2, Encoding::Json).await;
        for room in [
            "é".repeat(2500),
            String::new(),
            "~x".into(),
            "a.b c*>".into(),
        ] {
            a.link
                .send(wire(&Cmd {
                    group: room.clone(),
                    ..cmd(2)
                }))
                .await;
            assert_eq!(echo(&mut a).await, "joined");
            let shout = Cmd {
                group: room.clone(),
                text: format!("to {} bytes", room.len()),
                ..cmd(3)
            };
            z.link.send(wire(&shout)).await;
            assert_eq!(echo(&mut a).await, format!("to {} bytes", room.len()));
        }
        let after = [connects(&bc), connects(&c1), connects(&c2)];
        assert_eq!(before, after, "no node lost its NATS connection");
        drop((a, z));
        g2.shutdown().await;
        g1.shutdown().await;
        b.shutdown().await;
    })
    .await;
}
