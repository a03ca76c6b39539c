//! A stopping gate's first step in a cluster with `resume_window` on: its resumable
//! sessions move to the other gates instead of ending.
//!
//! The gate stops accepting, tells each client whose session has a socket `LL_Move{after_ms}`
//! (the delays spread evenly over `drain_spread`, so that the other gates are not hit by every
//! reconnection in the same millisecond), and goes on serving each session (reading, writing,
//! keeping what the client has not acknowledged) until another gate takes it over through
//! the hand-over of a resume. A socket still here a second after the spread (a client that
//! ignores `LL_Move`) is dropped and its session kept: the client resumes on another gate, as
//! after any drop. Sessions waiting for their client are not pushed out by
//! `max_waiting_per_ip` meanwhile (clients behind one address all move at once). The drain ends when no session is left, or after `drain_timeout`; the stop
//! then goes on as without it (what is left ends; plain connections get their goodbye). A gate
//! none of whose sessions has a socket at its stop has no client to tell, and no drain; nor
//! has a gate that finds no other live gate in the cluster's directory (the last one, or
//! one whose peers are stopping too): its sessions end at once, as without a cluster.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use super::Shared;
use super::resume::Resumption;
use crate::agent::Agent;

/// How often the drain looks at what is left.
const TICK: Duration = Duration::from_millis(20);

/// How long after the spread a socket that has not moved is dropped.
const GRACE: Duration = Duration::from_secs(1);

/// Hands the gate's resumable sessions to the other gates of its cluster, within
/// `drain_timeout`. Nothing without a cluster, without `resume_window`, or with a
/// `drain_timeout` of 0.
pub(super) async fn hand_over_sessions(shared: &Shared) {
    let (Some(resumption), Some(cluster)) = (&shared.services.resume, &shared.services.cluster)
    else {
        return;
    };
    let settings = &shared.settings;
    if settings.drain_timeout.is_zero() {
        return;
    }
    let attached = resumption
        .agents()
        .iter()
        .filter(|a| a.local().is_some_and(|l| l.outbox.session_attached()))
        .count();
    if attached == 0 {
        // No client to tell: the sessions waiting for theirs end as without a drain.
        return;
    }
    if !cluster.others_alive().await {
        tracing::info!(
            sessions = attached,
            "stopping: no other gate to take the resumable sessions; they end here"
        );
        return;
    }
    shared.live.listening.cancel();
    shared.services.admission.waiting().unbound();
    let started = Instant::now();
    let deadline = started + settings.drain_timeout;
    let drop_at = started + settings.drain_spread + GRACE;
    let mut told = HashSet::new();
    let first = tell_to_move(resumption, &mut told, settings.drain_spread);
    tracing::info!(
        sessions = first,
        spread = ?settings.drain_spread,
        "stopping: resumable sessions asked to move to other gates"
    );
    let mut dropped = false;
    loop {
        tokio::time::sleep(TICK).await;
        let left = resumption.agents();
        if left.is_empty() {
            tracing::info!(took = ?started.elapsed(), "every resumable session moved");
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            tracing::warn!(
                sessions = left.len(),
                "drain_timeout passed: the sessions not taken over end here"
            );
            return;
        }
        // A session that began after the first round (a handshake in progress then).
        tell_to_move(resumption, &mut told, Duration::ZERO);
        if !dropped && now >= drop_at {
            dropped = true;
            drop_sockets(&left);
        }
    }
}

/// Tells each session with a socket that was not yet told to move, after delays spread
/// evenly over `spread`. Returns how many were told.
fn tell_to_move(resumption: &Resumption, told: &mut HashSet<u64>, spread: Duration) -> usize {
    let agents: Vec<Agent> = resumption
        .agents()
        .into_iter()
        .filter(|a| !told.contains(&a.id()))
        .collect();
    let n = agents.len();
    let spread_ms = spread.as_millis();
    let mut sent = 0;
    for (i, agent) in agents.iter().enumerate() {
        let after_ms = u32::try_from(spread_ms * i as u128 / n as u128).unwrap_or(u32::MAX);
        let Some(local) = agent.local() else { continue };
        let Some(notice) = resumption.moving(after_ms) else {
            continue;
        };
        if local.outbox.push_control_attached(notice) {
            told.insert(agent.id());
            sent += 1;
        }
    }
    sent
}

/// Drops the sockets of the sessions still served here: their clients did not move. The
/// sessions wait for them, to be resumed on another gate.
fn drop_sockets(left: &[Agent]) {
    let mut n = 0;
    for agent in left {
        if agent
            .local()
            .is_some_and(|l| l.outbox.request_drop_socket())
        {
            n += 1;
        }
    }
    if n > 0 {
        tracing::info!(
            sockets = n,
            "clients that did not move lose their socket; their sessions wait"
        );
    }
}
