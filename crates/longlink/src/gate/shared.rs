//! [`Shared`]: what every connection task, the accept loops, the sweep and the stop of one
//! gate share; built once by [`GateBuilder::bind`](super::GateBuilder::bind).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use longlink_wire::LenCodec;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::accept::Admission;
use super::link::ClusterLink;
use super::membership::Membership;
use super::{Goodbye, Rate, http};
use crate::agent::events::EventSink;
use crate::agent::{Agent, AgentSettings, Transport};
use crate::module::Mailbox;
use crate::processor::Router;

/// The application's hook for a connection the gate itself closes.
pub(crate) type Farewell = Box<dyn Fn(&Agent, Goodbye) + Send + Sync>;

/// What every connection of a gate shares.
pub(crate) struct Shared {
    /// Decodes every payload and hands it to its destination.
    pub(crate) router: Router,
    /// TCP framing (`len_msg_len`, `little_endian`, `max_msg_len`).
    pub(crate) frames: LenCodec,
    /// What each new TCP agent is made with (its payload limit is the framing's).
    pub(crate) tcp_settings: AgentSettings,
    /// What each new WebSocket agent is made with (`max_msg_len` as configured).
    pub(crate) ws_settings: AgentSettings,
    /// Where new-connection events go (`on_new_agent`).
    pub(crate) on_new: Option<EventSink>,
    /// Where close events go (`on_close_agent`).
    pub(crate) on_close: Option<EventSink>,
    /// Where resume events go (`on_resume`).
    pub(crate) on_resume: Option<EventSink>,
    /// The application's goodbye before the gate itself closes a connection.
    pub(crate) on_goodbye: Option<Farewell>,
    /// The cluster, when the gate is in one: hears of opens and closes, settles at drain.
    pub(crate) cluster: Option<Arc<dyn ClusterLink>>,
    /// Resumable sessions, when `resume_window` is on.
    pub(crate) resume: Option<super::resume::Resumption>,
    /// Answers plain GETs on the WebSocket port ([`GateBuilder::on_http`](super::GateBuilder::on_http)).
    pub(crate) on_http: Option<Box<http::HttpHandler>>,
    /// How long a closing connection may flush (`close_timeout`) before it is reset.
    pub(crate) close_timeout: Duration,
    /// `max_msg_rate` and `max_msg_burst`, when on.
    pub(crate) rate: Option<Rate>,
    /// `read_timeout` in milliseconds (0: off): the deadline of a frame once begun, kept by
    /// the sweep.
    pub(crate) read_timeout_ms: u64,
    /// `idle_timeout` (zero: off), read by the sweep.
    pub(crate) idle_timeout: Duration,
    /// `ws_ping_interval` (zero: off), read by the sweep.
    pub(crate) ws_ping_interval: Duration,
    /// `ws_pong_timeout`, read by the sweep.
    pub(crate) ws_pong_timeout: Duration,
    /// `tcp_keepalive` (zero: off), set on every accepted socket.
    pub(crate) tcp_keepalive: Duration,
    /// The clock of liveness: milliseconds since the gate was built.
    pub(crate) epoch: std::time::Instant,
    /// TLS on the TCP listener, if configured.
    pub(crate) tls_tcp: Option<super::tls::TlsAcceptor>,
    /// TLS on the WebSocket listener (wss), if configured.
    pub(crate) tls_ws: Option<super::tls::TlsAcceptor>,
    /// Bounds every handshake (TLS, WebSocket upgrade).
    pub(crate) http_timeout: Duration,
    /// Places under `max_conn_num` and `max_conn_per_ip`, and the 503 answers' own cap.
    pub(crate) admission: Arc<Admission>,
    /// Every announced, not yet closed connection, by id: for the sweep, the stop, the
    /// cluster's commands and the admin's `GateHandle`.
    pub(super) agents: Mutex<HashMap<u64, Agent>>,
    /// The connections' named groups, for broadcasts that reach the gate itself (from the
    /// cluster or the server API).
    pub(crate) membership: Membership,
    /// Cancelled when the gate starts stopping ([`Shared::begin_stop`]): accept loops end,
    /// connections stop reading.
    pub(crate) shutdown: CancellationToken,
    /// Set with `shutdown`'s cancel: what every connection's loop looks at in every turn
    /// (the token's own check takes a lock that every connection shares).
    pub(crate) stopping: AtomicBool,
    /// Cancelled once the modules have handled every message read before the shutdown.
    pub(crate) drained: CancellationToken,
    /// Connections still reading (counted down as they stop at shutdown).
    pub(crate) reading: AtomicUsize,
    /// Every task of the gate (accept loops, handshakes, connections, sweep): the stop
    /// waits for them.
    pub(crate) tracker: TaskTracker,
}

impl Shared {
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
        self.shutdown.cancel();
    }

    /// Closes a connection on the gate's own account: the goodbye hook's messages first,
    /// then a graceful close (they are flushed).
    pub(crate) fn goodbye(&self, agent: &Agent, why: Goodbye) {
        if let Some(hook) = &self.on_goodbye {
            let run = std::panic::AssertUnwindSafe(|| hook(agent, why));
            if std::panic::catch_unwind(run).is_err() {
                tracing::error!(conn = agent.id(), "on_goodbye hook panicked");
            }
        }
        agent.close();
    }

    /// The mailboxes of every module this gate sends messages or events to, each once.
    fn mailboxes(&self) -> Vec<Mailbox> {
        let mut all = self.router.mailboxes();
        for sink in [&self.on_new, &self.on_close, &self.on_resume]
            .into_iter()
            .flatten()
        {
            all.push(sink.mailbox().clone());
        }
        let mut unique: Vec<Mailbox> = Vec::new();
        for m in all {
            if !unique.iter().any(|u| u.same_as(&m)) {
                unique.push(m);
            }
        }
        unique
    }

    /// Returns once every module this gate feeds has run every job queued before the call.
    pub(crate) async fn barrier(&self) {
        if let Some(link) = &self.cluster {
            link.settle().await;
        }
        for mailbox in self.mailboxes() {
            mailbox.barrier().await;
        }
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

    /// A new local agent for a connection that came through `transport`.
    pub(crate) fn new_agent(
        &self,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Agent {
        let settings = match transport {
            Transport::Tcp => &self.tcp_settings,
            Transport::Ws => &self.ws_settings,
        };
        Agent::new(
            crate::agent::next_id(),
            transport,
            (local, remote),
            settings,
        )
    }
}
