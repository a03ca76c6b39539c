//! Pushes to a uid (`Cluster::push_uid`, what the chat's private messages use when the
//! receiver is bound to another backend node) while the uid's resumable session moves
//! between the gates of a cluster (a real `nats-server` on 127.0.0.1): each push reaches the
//! client exactly once, in order, whether the session moves because the client resumed on
//! the other gate or because its gate stopped (`LL_Move`), and none is refused.

#![allow(unreachable_pub, dead_code)]

#[path = "resume/client.rs"]
mod client;
mod common;
#[path = "common/handover.rs"]
mod handover;

use std::time::Duration;

use client::Msg;
use common::{STEP, bounded};
use handover::{backend, check, config, gate, logged_in, pusher, read_and_hop, resume};
use longlink::cluster::Cluster;
use longlink_testkit::NatsServer;

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
        // The session moves to the other gate every 250 pushes.
        let hops = read_and_hop(&mut c, [a1, a2], N, 11, |_| Duration::ZERO).await;
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
