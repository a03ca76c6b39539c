//! A gate while it serves: [`GateHandle`] to look at its connections, [`RunningGate`] to
//! drain and stop it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Goodbye, Shared};
use crate::agent::Agent;
use crate::codec::Codec;

/// A read-only view of a gate's connections.
#[derive(Clone)]
pub struct GateHandle {
    shared: Arc<Shared>,
}

impl GateHandle {
    pub(super) fn new(shared: Arc<Shared>) -> GateHandle {
        GateHandle { shared }
    }

    /// The codec the gate's connections encode with.
    pub(crate) fn codec(&self) -> &Arc<Codec> {
        self.shared.services.router.codec()
    }

    /// The open connections bound to `uid`.
    pub(crate) fn agents_of_uid(&self, uid: u64) -> Vec<Agent> {
        self.shared.live.agents_of_uid(uid)
    }

    /// The open connections in the named group `group` (`"room.7"`).
    pub(crate) fn group_members(&self, group: &str) -> Vec<Agent> {
        self.shared.live.group_members(group)
    }

    /// Named groups with a member here.
    pub(crate) fn groups(&self) -> usize {
        self.shared.live.membership.len()
    }

    /// Closes `agent` on the gate's own account: the application's goodbye hook first
    /// (with `why`), then a graceful close.
    pub(crate) fn goodbye(&self, agent: &Agent, why: Goodbye) {
        self.shared.hooks.goodbye(agent, why);
    }
}

impl std::fmt::Debug for GateHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateHandle")
            .field("open", &self.connections())
            .finish()
    }
}

impl GateHandle {
    /// Connections holding a place under `max_conn_num` (including handshakes in progress),
    /// but for the sessions waiting for their client ([`waiting_sessions`](Self::waiting_sessions)),
    /// which hold one too.
    pub fn connections(&self) -> usize {
        let waiting = self.waiting_sessions();
        self.shared
            .services
            .admission
            .open()
            .saturating_sub(waiting)
    }

    /// Resumable sessions whose socket is gone, waiting for their client (`resume_window`).
    /// Each keeps the place its connection held under `max_conn_num` and `max_conn_per_ip`,
    /// and at most `max_waiting_per_ip` wait for one address.
    pub fn waiting_sessions(&self) -> usize {
        self.shared.services.admission.waiting().len()
    }

    /// Every connection that has been announced and not yet closed.
    pub fn agents(&self) -> Vec<Agent> {
        self.shared.live.all_agents()
    }
}

/// A gate that is accepting connections.
pub struct RunningGate {
    shared: Arc<Shared>,
}

impl RunningGate {
    pub(super) fn new(shared: Arc<Shared>) -> RunningGate {
        RunningGate { shared }
    }
}

impl std::fmt::Debug for RunningGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningGate").finish_non_exhaustive()
    }
}

impl RunningGate {
    /// A handle on the gate's connections.
    pub fn handle(&self) -> GateHandle {
        GateHandle::new(Arc::clone(&self.shared))
    }

    /// Drains and stops the gate, within `timeout`:
    ///
    /// 0. in a cluster with `resume_window` on, first hand the resumable sessions to the
    ///    other gates: stop accepting, tell each client `LL_Move` (spread over
    ///    `drain_spread`), serve each session until another gate takes it over, for at most
    ///    `drain_timeout` (not counted in `timeout`); then, for what is left:
    /// 1. stop accepting, and stop reading from every connection (no new message is taken);
    /// 2. let the modules that this gate routes to finish every message already taken (a
    ///    barrier through each mailbox), so their replies are queued;
    /// 3. run the goodbye hook ([`Goodbye::Shutdown`]) and close every connection
    ///    gracefully: queues are flushed, then the sockets closed, then the close events sent.
    ///
    /// Connections still open when `timeout` runs out are reset.
    pub async fn stop(self, timeout: Duration) {
        let shared = self.shared;
        super::drain::hand_over_sessions(&shared).await;
        let deadline = tokio::time::Instant::now() + timeout;
        shared.live.begin_stop();
        shared.live.tracker.close();
        shared.live.for_each_agent(|agent| {
            if let Some(local) = agent.local() {
                local.outbox.wake();
            }
        });
        // 1. Every reader has handed over what it read.
        while shared.live.reading.load(Ordering::Acquire) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // 2. Every message taken has been handled.
        if tokio::time::timeout_at(deadline, shared.barrier())
            .await
            .is_err()
        {
            tracing::warn!("shutdown deadline passed while the modules drained");
        }
        // 3. Goodbye, flush, close.
        shared.live.drained.cancel();
        if tokio::time::timeout_at(deadline, shared.live.tracker.wait())
            .await
            .is_err()
        {
            let left = shared.live.all_agents();
            tracing::warn!(
                connections = left.len(),
                "shutdown deadline passed, resetting the rest"
            );
            for agent in &left {
                agent.destroy();
            }
            shared.live.tracker.wait().await;
        }
        if let Some(link) = &shared.services.cluster {
            link.stop().await;
        }
    }
}
