//! The gate's timed sweeps over its connections: liveness (idle timeouts, WebSocket pings,
//! frames not finished in time), and the acknowledgements of resumable sessions.

use std::sync::Arc;
use std::time::Duration;

use super::{Goodbye, Shared};
use crate::agent::{Agent, Transport};

/// Every so often: closes connections idle past `idle_timeout` (with a goodbye), and those
/// that began a frame and did not finish it within `read_timeout` (no goodbye), pings
/// WebSocket connections silent past `ws_ping_interval`, and drops those that have not
/// answered within `ws_pong_timeout` after that. One task for the whole gate: an idle
/// connection carries no timer of its own.
pub(super) async fn sweep(shared: Arc<Shared>) {
    let read_ms = shared.settings.read_timeout_ms;
    let tick = tick(&shared);
    let idle_ms = shared.settings.idle_timeout.as_millis() as u64;
    let ping_ms = shared.settings.ws_ping_interval.as_millis() as u64;
    let pong_ms = shared.settings.ws_pong_timeout.as_millis() as u64;
    loop {
        tokio::select! {
            _ = shared.live.shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let now = shared.live.now_ms();
        let (mut idle, mut ping, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        let mut stalled = Vec::new();
        shared.live.for_each_agent(|agent| {
            let Some(live) = agent.local().map(|l| &l.liveness) else {
                return;
            };
            if read_ms > 0
                && live
                    .partial_since()
                    .is_some_and(|at| now.saturating_sub(at) >= read_ms)
            {
                stalled.push(agent.clone());
                return;
            }
            // Idle counts application messages only: pongs to our own pings do not count.
            if idle_ms > 0 && now.saturating_sub(live.last_msg_ms()) >= idle_ms {
                idle.push(agent.clone());
            } else if ping_ms > 0 && agent.transport() == Transport::Ws {
                match live.ping_outstanding_since() {
                    // Dead only once a ping was really asked for and went unanswered.
                    Some(at) if now.saturating_sub(at) >= pong_ms => dead.push(agent.clone()),
                    Some(_) => {}
                    None if now.saturating_sub(live.last_seen_ms()) >= ping_ms => {
                        ping.push(agent.clone())
                    }
                    None => {}
                }
            }
        });
        act(&shared, now, idle, stalled, ping, dead);
    }
}

/// What the sweep found, done: a goodbye to the idle, a close of the stalled, a ping asked
/// for, a destroy of the dead.
fn act(
    shared: &Shared,
    now: u64,
    idle: Vec<Agent>,
    stalled: Vec<Agent>,
    ping: Vec<Agent>,
    dead: Vec<Agent>,
) {
    // A resumable session keeps through a timeout: only its socket goes.
    let keeps = |a: &Agent| a.local().is_some_and(|l| l.outbox.request_drop_socket());
    for agent in &idle {
        crate::agent::logged::conn_event!(INFO, agent, "idle timeout");
        if !keeps(agent) {
            shared.hooks.goodbye(agent, Goodbye::Idle);
        }
    }
    for agent in &stalled {
        // Half a frame and silence: a broken or hostile peer; what it still sends is
        // discarded by the close.
        crate::agent::logged::conn_event!(INFO, agent, "frame not finished within read_timeout");
        if !keeps(agent) {
            agent.close();
        }
    }
    for local in ping.iter().filter_map(|a| a.local()) {
        if local.liveness.request_ping(now) {
            local.outbox.wake();
        }
    }
    for agent in &dead {
        crate::agent::logged::conn_event!(INFO, agent, "no pong, closing");
        if !keeps(agent) {
            agent.destroy();
        }
    }
}

/// How often the sweep looks: a quarter of the shortest timeout it keeps, between 10 ms
/// and 1 s.
fn tick(shared: &Shared) -> Duration {
    let ping_on = !shared.settings.ws_ping_interval.is_zero();
    let read_ms = shared.settings.read_timeout_ms;
    let shortest = [
        Duration::from_millis(read_ms),
        shared.settings.idle_timeout,
        shared.settings.ws_ping_interval,
        if ping_on {
            shared.settings.ws_pong_timeout
        } else {
            Duration::ZERO
        },
    ]
    .into_iter()
    .filter(|d| !d.is_zero())
    .min()
    .unwrap_or(Duration::from_secs(1));
    (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// How often the server acknowledges what clients sent, at the latest (and every
/// `ACK_EVERY` messages sooner).
const ACK_PERIOD: Duration = Duration::from_millis(200);

/// Every [`ACK_PERIOD`]: acknowledges to each served session's client what it sent since the
/// last acknowledgement.
pub(crate) async fn acks(shared: Arc<Shared>) {
    let Some(resumption) = &shared.services.resume else {
        return;
    };
    loop {
        tokio::select! {
            _ = shared.live.shutdown.cancelled() => return,
            _ = tokio::time::sleep(ACK_PERIOD) => {}
        }
        for agent in resumption.agents() {
            let Some(local) = agent.local() else { continue };
            if let Some(ack) = local.outbox.due_ack().and_then(|seq| resumption.ack(seq)) {
                local.outbox.push_control(ack);
            }
        }
    }
}
