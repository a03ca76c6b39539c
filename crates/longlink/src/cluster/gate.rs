//! The gate node's side of the cluster: forwarding client messages to backends, and acting
//! on what any node asks of the connections this gate holds.
//!
//! Each connection is bound, per backend type, to the backend node that answered its open
//! event on the type's queue group; its messages then go to that node's own subject, in
//! order, each with a reply subject for the "handled" acknowledgement. An acknowledgement
//! that does not come within `request_timeout`, or NATS's "no responders", fails that message
//! (the gate's `on_forward_error` hook tells the client) and unbinds the connection, so its
//! next message finds a live backend.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::wire::{Holder, ToBackend, ToGate};
use super::{Cluster, ClusterError, group_token, node_key, uid_key};
use crate::agent::{Agent, Transport};
use crate::gate::{Goodbye, Shared};

/// The gate's hook for a forwarded message that failed: the agent, the message name, why.
pub(crate) type ForwardErrorHook = Box<dyn Fn(&Agent, &str, &ClusterError) + Send + Sync>;

/// A future the connection's reader waits on (binding to a backend first).
pub(crate) type ForwardWait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One connection's backends: node type -> node id.
type Bound = HashMap<Arc<str>, Arc<str>>;

struct Inflight {
    conn: u64,
    node_type: Arc<str>,
    name: Arc<str>,
    deadline: Instant,
}

/// One gate's link to the cluster.
pub(crate) struct GateLink {
    cluster: Cluster,
    /// The backend types this gate forwards to.
    types: Vec<Arc<str>>,
    shared: OnceLock<Weak<Shared>>,
    /// conn -> (backend type -> node id).
    bindings: Mutex<HashMap<u64, Bound>>,
    inflight: Mutex<HashMap<u64, Inflight>>,
    seq: AtomicU64,
    /// Cluster group (as a subject token) -> this gate's connections in it.
    groups: Mutex<HashMap<String, HashSet<u64>>>,
    /// Subscribed in `subscribe`, served from `start`.
    subs: Mutex<Vec<(async_nats::Subscriber, Sub)>>,
    /// conn -> (uid, when it logged in): what this gate holds in the directory.
    claims: Mutex<HashMap<u64, (u64, u64)>>,
    on_error: Option<ForwardErrorHook>,
    stop: CancellationToken,
    /// Directory claims and removals in flight, finished before the gate goes.
    directory_work: TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn request_error(
    target: &str,
    timeout: Duration,
    e: async_nats::RequestError,
) -> ClusterError {
    use async_nats::RequestErrorKind;
    match e.kind() {
        RequestErrorKind::NoResponders => ClusterError::NoResponders(target.to_owned()),
        RequestErrorKind::TimedOut => ClusterError::Timeout(timeout),
        _ => ClusterError::Nats(e.to_string()),
    }
}

impl GateLink {
    pub(crate) fn new(
        cluster: Cluster,
        types: Vec<Arc<str>>,
        on_error: Option<ForwardErrorHook>,
    ) -> Arc<GateLink> {
        Arc::new(GateLink {
            cluster,
            types,
            shared: OnceLock::new(),
            bindings: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(1),
            groups: Mutex::new(HashMap::new()),
            subs: Mutex::new(Vec::new()),
            claims: Mutex::new(HashMap::new()),
            on_error,
            stop: CancellationToken::new(),
            directory_work: TaskTracker::new(),
        })
    }

    pub(crate) fn attach(&self, shared: &Arc<Shared>) {
        let _ = self.shared.set(Arc::downgrade(shared));
    }

    fn agent(&self, conn: u64) -> Option<Agent> {
        self.shared.get()?.upgrade()?.agent(conn)
    }

    fn agents(&self) -> Vec<Agent> {
        self.shared
            .get()
            .and_then(Weak::upgrade)
            .map(|s| s.all_agents())
            .unwrap_or_default()
    }

    fn me(&self, conn: u64, at: u64) -> Holder {
        Holder {
            gate: self.cluster.node_id().to_owned(),
            conn,
            at,
        }
    }

    /// Subscribes to everything this gate listens to: its commands, group and all-gates
    /// broadcasts, acknowledgements. Awaited before the gate accepts its first connection, so
    /// no answer to one of its connections can come before the gate listens.
    pub(crate) async fn subscribe(&self) -> Result<(), ClusterError> {
        let c = &self.cluster;
        let subjects = [
            (
                c.subject(format_args!("gate.{}", c.node_id())),
                Sub::Commands,
            ),
            (c.subject(format_args!("grp.>")), Sub::Groups),
            (c.subject(format_args!("all")), Sub::All),
            (c.subject(format_args!("ack.{}.*", c.node_id())), Sub::Acks),
        ];
        let mut subs = Vec::new();
        for (subject, kind) in subjects {
            let sub = c
                .nats()
                .subscribe(subject.clone())
                .await
                .map_err(|e| ClusterError::Nats(format!("subscribe {subject}: {e}")))?;
            subs.push((sub, kind));
        }
        c.sync().await;
        *lock(&self.subs) = subs;
        Ok(())
    }

    /// Starts serving the subscriptions, and the timers: expired forwards, directory refresh.
    pub(crate) fn start(self: &Arc<Self>) {
        let group_prefix = self.cluster.subject(format_args!("grp."));
        for (mut sub, kind) in std::mem::take(&mut *lock(&self.subs)) {
            let link = Arc::clone(self);
            let group_prefix = group_prefix.clone();
            tokio::spawn(async move {
                loop {
                    let msg = tokio::select! {
                        _ = link.stop.cancelled() => break,
                        msg = sub.next() => match msg { Some(m) => m, None => break },
                    };
                    match kind {
                        Sub::Commands => match ToGate::decode(msg.payload) {
                            Ok(cmd) => link.apply(cmd),
                            Err(e) => tracing::warn!(error = %e, "bad gate command dropped"),
                        },
                        Sub::Groups => {
                            let group = msg.subject.strip_prefix(group_prefix.as_str());
                            let members: Vec<u64> = group
                                .and_then(|g| {
                                    lock(&link.groups)
                                        .get(g)
                                        .map(|m| m.iter().copied().collect())
                                })
                                .unwrap_or_default();
                            let encoded = super::encoded(msg.payload);
                            for conn in members {
                                if let Some(agent) = link.agent(conn) {
                                    let _ = agent.write_encoded(&encoded);
                                }
                            }
                        }
                        Sub::All => {
                            let encoded = super::encoded(msg.payload);
                            for agent in link.agents() {
                                let _ = agent.write_encoded(&encoded);
                            }
                        }
                        Sub::Acks => link.acked(&msg),
                    }
                }
                let _ = sub.unsubscribe().await;
            });
        }
        let link = Arc::clone(self);
        tokio::spawn(async move { link.expire_loop().await });
        let link = Arc::clone(self);
        tokio::spawn(async move { link.refresh_loop().await });
    }

    /// The last step of the gate's stop, after its connections have closed: their directory
    /// removals finish, the gate says goodbye in the directory (a killed gate's key
    /// expires instead), its subscriptions and timers stop, and what it sent (close events
    /// to backends) leaves the process. Each wait on NATS is bounded by `request_timeout`:
    /// NATS may be down.
    pub(crate) async fn stop(&self) {
        let timeout = self.cluster.config().request_timeout;
        self.directory_work.close();
        let _ = tokio::time::timeout(timeout, self.directory_work.wait()).await;
        let retire = async {
            if let Ok(store) = self.cluster.directory().await {
                let _ = store.delete(node_key(self.cluster.node_id())).await;
            }
        };
        let _ = tokio::time::timeout(timeout, retire).await;
        self.stop.cancel();
        lock(&self.groups).clear();
        self.cluster.flush_outgoing().await;
    }

    /// Waits (within the request timeout) until every forwarded message is acknowledged or
    /// failed: part of the gate's drain.
    pub(crate) async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + self.cluster.config().request_timeout;
        while !lock(&self.inflight).is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A connection opened: it is bound to a backend of every type this gate forwards to.
    pub(crate) async fn opened(self: &Arc<Self>, agent: &Agent) {
        for ty in self.types.clone() {
            if let Err(e) = self.bind(agent, &ty).await {
                tracing::warn!(conn = agent.id(), node_type = %ty, error = %e, "no backend for a new connection yet");
            }
        }
    }

    /// Asks the type's queue group which node takes this connection.
    async fn bind(&self, agent: &Agent, ty: &Arc<str>) -> Result<Arc<str>, ClusterError> {
        let open = ToBackend::Open {
            gate: self.cluster.node_id().to_owned(),
            conn: agent.id(),
            transport: match agent.transport() {
                Transport::Tcp => 0,
                Transport::Ws => 1,
            },
            local: agent.local_addr().to_string(),
            remote: agent.remote_addr().to_string(),
        };
        let timeout = self.cluster.config().request_timeout;
        let subject = self.cluster.subject(format_args!("svc.{ty}"));
        let reply =
            tokio::time::timeout(timeout, self.cluster.nats().request(subject, open.encode()))
                .await
                .map_err(|_| ClusterError::Timeout(timeout))?
                .map_err(|e| request_error(ty, timeout, e))?;
        let node: Arc<str> = String::from_utf8_lossy(&reply.payload).into();
        tracing::debug!(conn = agent.id(), node_type = %ty, node = %node, "connection bound");
        lock(&self.bindings)
            .entry(agent.id())
            .or_default()
            .insert(Arc::clone(ty), Arc::clone(&node));
        Ok(node)
    }

    /// Forwards one client message to the connection's backend of type `ty`. Returns a
    /// future to wait on when the connection must be bound first (so that its messages stay
    /// in order).
    pub(crate) fn forward(
        self: &Arc<Self>,
        agent: &Agent,
        ty: &Arc<str>,
        name: &Arc<str>,
        payload: Bytes,
    ) -> Option<ForwardWait> {
        let node = lock(&self.bindings)
            .get(&agent.id())
            .and_then(|b| b.get(ty).cloned());
        if let Some(node) = node {
            self.send_bound(agent.id(), ty, &node, name, payload);
            return None;
        }
        let (link, agent, ty, name) = (
            Arc::clone(self),
            agent.clone(),
            Arc::clone(ty),
            Arc::clone(name),
        );
        Some(Box::pin(async move {
            match link.bind(&agent, &ty).await {
                Ok(node) => link.send_bound(agent.id(), &ty, &node, &name, payload),
                Err(e) => link.report(&agent, &name, &e),
            }
        }))
    }

    fn send_bound(&self, conn: u64, ty: &Arc<str>, node: &str, name: &Arc<str>, payload: Bytes) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        lock(&self.inflight).insert(
            seq,
            Inflight {
                conn,
                node_type: Arc::clone(ty),
                name: Arc::clone(name),
                deadline: Instant::now() + self.cluster.config().request_timeout,
            },
        );
        let c = &self.cluster;
        c.send(
            c.subject(format_args!("node.{node}")),
            Some(c.subject(format_args!("ack.{}.{seq}", c.node_id()))),
            ToBackend::Msg {
                gate: c.node_id().to_owned(),
                conn,
                payload,
            }
            .encode(),
        );
        metrics::counter!("longlink_cluster_forwarded_total").increment(1);
    }

    fn acked(&self, msg: &async_nats::Message) {
        let Some(seq) = msg
            .subject
            .rsplit('.')
            .next()
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return;
        };
        let Some(inflight) = lock(&self.inflight).remove(&seq) else {
            return;
        };
        if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            let e = ClusterError::NoResponders(inflight.node_type.to_string());
            self.fail(inflight, &e);
        }
    }

    fn fail(&self, inflight: Inflight, e: &ClusterError) {
        metrics::counter!("longlink_cluster_forward_failed_total").increment(1);
        // The backend is gone or stuck: the next message binds afresh.
        if let Some(b) = lock(&self.bindings).get_mut(&inflight.conn) {
            b.remove(&inflight.node_type);
        }
        if let Some(agent) = self.agent(inflight.conn) {
            self.report(&agent, &inflight.name, e);
        }
    }

    fn report(&self, agent: &Agent, name: &str, e: &ClusterError) {
        tracing::debug!(conn = agent.id(), message = %name, error = %e, "forward failed");
        if let Some(hook) = &self.on_error {
            let run = std::panic::AssertUnwindSafe(|| hook(agent, name, e));
            if std::panic::catch_unwind(run).is_err() {
                tracing::error!(conn = agent.id(), "on_forward_error hook panicked");
            }
        }
    }

    async fn expire_loop(&self) {
        let tick = (self.cluster.config().request_timeout / 10)
            .clamp(Duration::from_millis(10), Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
            let now = Instant::now();
            let expired: Vec<Inflight> = {
                let mut inflight = lock(&self.inflight);
                let keys: Vec<u64> = inflight
                    .iter()
                    .filter(|(_, f)| f.deadline <= now)
                    .map(|(k, _)| *k)
                    .collect();
                keys.iter().filter_map(|k| inflight.remove(k)).collect()
            };
            let e = ClusterError::Timeout(self.cluster.config().request_timeout);
            for f in expired {
                self.fail(f, &e);
            }
        }
    }

    /// A connection closed: its backends hear of it (after its messages), it leaves its
    /// groups, and its uid leaves the directory if it still holds it.
    pub(crate) fn closed(self: &Arc<Self>, agent: &Agent) {
        let conn = agent.id();
        let bound = lock(&self.bindings).remove(&conn).unwrap_or_default();
        let c = &self.cluster;
        for node in bound.values() {
            c.send(
                c.subject(format_args!("node.{node}")),
                None,
                ToBackend::Close {
                    gate: c.node_id().to_owned(),
                    conn,
                }
                .encode(),
            );
        }
        {
            let mut groups = lock(&self.groups);
            groups.retain(|_, members| {
                members.remove(&conn);
                !members.is_empty()
            });
        }
        let claimed = lock(&self.claims).remove(&conn);
        if let Some((uid, _)) = claimed {
            let link = Arc::clone(self);
            self.directory_work.spawn(async move {
                if let Err(e) = link.release(uid, conn).await {
                    tracing::debug!(uid, error = %e, "directory entry not removed (it expires)");
                }
            });
        }
    }

    async fn release(&self, uid: u64, conn: u64) -> Result<(), ClusterError> {
        let store = self.cluster.directory().await?;
        let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(e.to_string());
        if let Some(entry) = store.entry(uid_key(uid)).await.map_err(|e| nats(&e))? {
            let me = self.me(conn, 0);
            if entry.operation == kv::Operation::Put
                && Holder::decode(&entry.value).is_some_and(|h| h.same_conn(&me))
            {
                store.delete(uid_key(uid)).await.map_err(|e| nats(&e))?;
            }
        }
        Ok(())
    }

    /// The connection logged in as `uid`: claim it in the directory, and displace whichever
    /// connection held it before, on any gate.
    /// `at` orders logins: a claim older than the directory's entry loses, whichever
    /// arrives last.
    pub(crate) fn bind_uid(self: &Arc<Self>, agent: &Agent, uid: u64, at: u64) {
        let conn = agent.id();
        if uid == 0 {
            lock(&self.claims).remove(&conn);
            return;
        }
        lock(&self.claims).insert(conn, (uid, at));
        let link = Arc::clone(self);
        self.directory_work.spawn(async move {
            if let Err(e) = link.claim(uid, conn, at).await {
                tracing::warn!(uid, error = %e, "directory claim failed");
            }
        });
    }

    async fn claim(self: &Arc<Self>, uid: u64, conn: u64, at: u64) -> Result<(), ClusterError> {
        let store = self.cluster.directory().await?;
        let me = self.me(conn, at);
        let key = uid_key(uid);
        let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(e.to_string());
        for _ in 0..5 {
            if lock(&self.claims).get(&conn) != Some(&(uid, at)) {
                return Ok(()); // logged out, closed or logged in again meanwhile
            }
            let entry = store.entry(key.clone()).await.map_err(|e| nats(&e))?;
            let previous = entry.as_ref().and_then(|e| {
                (e.operation == kv::Operation::Put)
                    .then(|| Holder::decode(&e.value))
                    .flatten()
            });
            if let Some(newer) = previous.as_ref().filter(|p| !p.same_conn(&me) && p.at > at) {
                tracing::debug!(uid, newer_gate = %newer.gate, "a later login holds the uid: this one is displaced");
                self.apply(ToGate::Displace { conn, uid });
                return Ok(());
            }
            let written = match &entry {
                Some(e) => store
                    .update(&key, me.encode(), e.revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => store
                    .create(&key, me.encode())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(()) => {
                    if let Some(old) = previous.filter(|old| !old.same_conn(&me)) {
                        tracing::debug!(uid, old_gate = %old.gate, old_conn = old.conn, "displacing the uid's previous connection");
                        self.cluster.send_to_gate(
                            &old.gate,
                            &ToGate::Displace {
                                conn: old.conn,
                                uid,
                            },
                        );
                    }
                    return Ok(());
                }
                Err(e) => tracing::debug!(uid, error = %e, "directory race, retrying"),
            }
        }
        Err(ClusterError::Nats(format!(
            "directory: could not claim uid {uid}"
        )))
    }

    /// Keeps this gate's entries alive: its own "alive" key (backends drop the connections
    /// of a gate whose key has expired) and the uids of its connections.
    async fn refresh_loop(&self) {
        // The first tick is at once: the gate is alive from its start.
        let mut every = tokio::time::interval(self.cluster.config().directory_ttl / 3);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let Ok(store) = self.cluster.directory().await else {
                continue;
            };
            let alive = store.put(
                node_key(self.cluster.node_id()),
                Bytes::from_static(b"gate"),
            );
            if let Err(e) = alive.await {
                tracing::debug!(error = %e, "directory refresh failed");
                continue;
            }
            let claims: Vec<(u64, (u64, u64))> =
                lock(&self.claims).iter().map(|(c, v)| (*c, *v)).collect();
            for (conn, (uid, at)) in claims {
                if let Err(e) = store.put(uid_key(uid), self.me(conn, at).encode()).await {
                    tracing::debug!(uid, error = %e, "directory refresh failed");
                    break;
                }
            }
        }
    }

    /// Does what another node asked of one of this gate's connections.
    fn apply(self: &Arc<Self>, cmd: ToGate) {
        match cmd {
            ToGate::Push { conn, payload } => {
                if let Some(agent) = self.agent(conn) {
                    let _ = agent.write_encoded(&super::encoded(payload));
                }
            }
            ToGate::Close { conn } => {
                if let Some(agent) = self.agent(conn) {
                    agent.close();
                }
            }
            ToGate::Destroy { conn } => {
                if let Some(agent) = self.agent(conn) {
                    agent.destroy();
                }
            }
            ToGate::Bind { conn, uid, at } => {
                if let Some(agent) = self.agent(conn) {
                    agent.store_uid(uid);
                    self.bind_uid(&agent, uid, at);
                }
            }
            ToGate::Join { conn, group } => self.join(conn, &group),
            ToGate::Leave { conn, group } => self.leave(conn, &group),
            ToGate::PushUid { conn, uid, payload } => {
                if let Some(agent) = self.agent_of(conn, uid) {
                    let _ = agent.write_encoded(&super::encoded(payload));
                }
            }
            ToGate::KickUid { conn, uid, payload } => {
                if let Some(agent) = self.agent_of(conn, uid) {
                    if !payload.is_empty() {
                        let _ = agent.write_encoded(&super::encoded(payload));
                    }
                    agent.close();
                }
            }
            ToGate::Displace { conn, uid } => {
                if let Some(agent) = self.agent(conn).filter(|a| a.uid() == Some(uid)) {
                    agent.store_uid(0);
                    lock(&self.claims).remove(&conn);
                    if let Some(shared) = self.shared.get().and_then(Weak::upgrade) {
                        shared.goodbye(&agent, Goodbye::Displaced);
                    }
                }
            }
        }
    }

    /// The connection that holds `uid`: `conn` as the directory says, else (the directory
    /// was behind a login on this gate) whichever connection here holds it.
    fn agent_of(&self, conn: u64, uid: u64) -> Option<Agent> {
        let holds = |a: &Agent| a.uid() == Some(uid);
        self.agent(conn)
            .filter(holds)
            .or_else(|| self.agents().into_iter().find(holds))
    }

    /// A connection of this gate joins a cluster group. Membership is kept here, at the
    /// gate: a broadcast to the group is one NATS message that each gate delivers to its own
    /// members.
    pub(crate) fn join(&self, conn: u64, group: &str) {
        lock(&self.groups)
            .entry(group_token(group))
            .or_default()
            .insert(conn);
    }

    /// A connection of this gate leaves a cluster group.
    pub(crate) fn leave(&self, conn: u64, group: &str) {
        let mut groups = lock(&self.groups);
        let token = group_token(group);
        if let Some(members) = groups.get_mut(&token) {
            members.remove(&conn);
            if members.is_empty() {
                groups.remove(&token);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Sub {
    Commands,
    Groups,
    All,
    Acks,
}
