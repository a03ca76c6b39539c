//! [`Live`]: a gate's live state: its open connections, their named groups, the clock of
//! liveness, and the signals and counts of its stop.

use std::collections::HashMap;
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::membership::Membership;
use crate::agent::Agent;

/// What changes while a gate runs.
pub(crate) struct Live {
    /// The clock of liveness: milliseconds since the gate was built.
    epoch: std::time::Instant,
    /// Every announced, not yet closed connection, by id: for the sweep, the stop, the
    /// cluster's commands and the admin's `GateHandle`.
    agents: Mutex<HashMap<u64, Agent>>,
    /// The connections' named groups, for broadcasts that reach the gate itself (from the
    /// cluster or the server API).
    pub(crate) membership: Arc<Membership>,
    /// Cancelled when the gate starts stopping ([`Live::begin_stop`]): accept loops end,
    /// connections stop reading.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the gate stops accepting: at a drain's start (see `drain`), or with
    /// `shutdown`. The accept loops end (their listeners close).
    pub(crate) listening: CancellationToken,
    /// Set with `shutdown`'s cancel: what every connection's loop looks at in every turn
    /// (the token's own check takes a lock that every connection shares).
    stopping: AtomicBool,
    /// Cancelled once the modules have handled every message read before the shutdown.
    pub(crate) drained: CancellationToken,
    /// Connections still reading (counted down as they stop at shutdown).
    pub(crate) reading: AtomicUsize,
    /// Every task of the gate (accept loops, handshakes, connections, sweep): the stop
    /// waits for them.
    pub(crate) tracker: TaskTracker,
}

impl Live {
    /// A gate's state before it runs, its clock started at `epoch`, its groups in
    /// `membership` (which the agents' link shares).
    pub(crate) fn new(epoch: std::time::Instant, membership: Arc<Membership>) -> Live {
        Live {
            epoch,
            agents: Mutex::default(),
            membership,
            shutdown: CancellationToken::new(),
            listening: CancellationToken::new(),
            stopping: AtomicBool::new(false),
            drained: CancellationToken::new(),
            reading: AtomicUsize::new(0),
            tracker: TaskTracker::new(),
        }
    }

    pub(crate) fn register(&self, agent: &Agent) {
        self.lock_agents().insert(agent.id(), agent.clone());
    }

    pub(crate) fn unregister(&self, agent: &Agent) {
        self.lock_agents().remove(&agent.id());
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The stop's first step: connections stop reading, accept loops end.
    pub(crate) fn begin_stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.listening.cancel();
        self.shutdown.cancel();
    }

    /// Milliseconds since the gate was built (the clock of liveness).
    pub(crate) fn now_ms(&self) -> u64 {
        self.ms_at(std::time::Instant::now())
    }

    /// [`now_ms`](Self::now_ms) at `at`.
    pub(crate) fn ms_at(&self, at: std::time::Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// The open connection with this id.
    pub(crate) fn agent(&self, id: u64) -> Option<Agent> {
        self.lock_agents().get(&id).cloned()
    }

    /// The open (not closing) connections bound to `uid`: one, unless a login elsewhere is
    /// being displaced.
    pub(crate) fn agents_of_uid(&self, uid: u64) -> Vec<Agent> {
        let mut found = Vec::new();
        self.for_each_agent(|a| {
            if a.uid() == Some(uid) && a.is_open() {
                found.push(a.clone());
            }
        });
        found
    }

    /// The open connections in the named group `group`.
    pub(crate) fn group_members(&self, group: &str) -> Vec<Agent> {
        let conns = self.membership.members(group);
        let agents = self.lock_agents();
        conns
            .iter()
            .filter_map(|c| agents.get(c).cloned())
            .collect()
    }

    /// Every open connection.
    pub(crate) fn all_agents(&self) -> Vec<Agent> {
        self.lock_agents().values().cloned().collect()
    }

    /// Runs `f` on every open connection, under the table's lock (keep it short).
    pub(crate) fn for_each_agent(&self, mut f: impl FnMut(&Agent)) {
        for agent in self.lock_agents().values() {
            f(agent);
        }
    }

    fn lock_agents(&self) -> MutexGuard<'_, HashMap<u64, Agent>> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }
}
