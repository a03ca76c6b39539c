//! A benchmark, not run by default: a gate holding `DRAIN_SESSIONS` resumable sessions (4,000
//! unless set; each session is three sockets of this one process at the peak of its move, and
//! the machine allows 20,000 open files) stops, and every session moves to a second gate of
//! the cluster (a real `nats-server`). Prints how long the whole drain took, the rate of
//! resumes the second gate absorbed, and the CPU time of this process (both gates and every
//! client) per session moved.
//!
//! `DRAIN_SESSIONS=4000 cargo test --release -p longlink --test drain_bench -- --ignored --nocapture`

#![allow(unreachable_pub, dead_code)]

#[path = "resume/client.rs"]
mod client;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::{Client, Link, Msg, Via};
use common::{Echo, run};
use longlink::cluster::{Cluster, ClusterConfig};
use longlink::{App, Encoding, Gate, GateConfig, Processor};
use longlink_testkit::NatsServer;

/// This process's user and system CPU time so far (Linux: `/proc/self/stat`, in ticks of
/// 10 ms).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((tick(11) + tick(12)) * 10)
}

async fn gate(nats: &NatsServer) -> (common::Running, std::net::SocketAddr) {
    let config = ClusterConfig {
        nats_url: nats.url(),
        node_type: "gate".into(),
        request_timeout: Duration::from_secs(5),
        ..ClusterConfig::default()
    };
    let cluster = Cluster::connect(&config).await.unwrap();
    let mut p = Processor::new(Encoding::Json);
    p.register_outgoing::<Echo>().unwrap();
    let gate = Gate::builder(
        GateConfig {
            tcp_addr: "127.0.0.1:0".into(),
            encoding: Encoding::Json,
            max_conn_num: 19_000,
            resume_window: Duration::from_secs(60),
            drain_spread: Duration::from_secs(5),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: DRAIN_SESSIONS=4000 cargo test --release -p longlink --test drain_bench -- --ignored --nocapture"]
async fn a_gate_hands_all_its_sessions_over() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    let n: usize = std::env::var("DRAIN_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let (g1, addr1) = gate(&nats).await;
    let (g2, addr2) = gate(&nats).await;
    let mut clients = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(200) {
        let batch = (chunk * 200..n.min(chunk * 200 + 200))
            .map(|_| tokio::spawn(Client::start(Via::Tcp, addr1, Encoding::Json)));
        for c in futures_util::future::join_all(batch).await {
            clients.push(c.unwrap());
        }
    }
    let retries = Arc::new(AtomicU64::new(0));
    let moved: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let retries = Arc::clone(&retries);
            tokio::spawn(async move {
                let after = loop {
                    match c.next(Duration::from_secs(120)).await {
                        Some(Msg::Move(ms)) => break ms,
                        Some(_) => {}
                        None => panic!("no LL_Move"),
                    }
                };
                tokio::time::sleep(Duration::from_millis(after.into())).await;
                c.link = Link::Gone;
                loop {
                    match c.resume(addr2).await {
                        Ok(_) => break,
                        Err(r) if r == "retry" => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(r) => panic!("resume refused: {r}"),
                    }
                }
                (Instant::now(), c)
            })
        })
        .collect();
    let (cpu0, t0) = (cpu(), Instant::now());
    let stopping = tokio::spawn(g1.shutdown());
    let mut last = t0;
    let mut kept = Vec::with_capacity(n);
    for m in moved {
        let (at, c) = m.await.unwrap();
        last = last.max(at);
        kept.push(c);
    }
    let all_resumed = last - t0;
    stopping.await.unwrap();
    let (drain, cpu_used) = (t0.elapsed(), cpu() - cpu0);
    println!(
        "sessions {n}: all resumed on the other gate {all_resumed:.2?} after the stop began, \
         the stop returned after {drain:.2?}; {:.0} resumes/s over the drain_spread of 5 s; \
         retries {}; CPU of this process (both gates, every client) {cpu_used:.2?}, \
         {:.0} µs per session",
        n as f64 / all_resumed.as_secs_f64(),
        retries.load(Ordering::Relaxed),
        cpu_used.as_micros() as f64 / n as f64
    );
    // Gate 2 is left to the end of the test: stopping it would drain its sessions, with no
    // gate to take them.
    drop((kept, g2));
}
