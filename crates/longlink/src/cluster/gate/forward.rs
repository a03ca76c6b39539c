//! Forwarding a gate's client messages to backends.
//!
//! Each connection is bound, per backend type, to the backend node that answered its open
//! event on the type's queue group; its messages then go to that node's own subject, in
//! order, numbered: the node acknowledges each once handled (`ToGate::Handled`, with its
//! answers), and what is queued for one node goes as one NATS message (`coalesce`), whose
//! reply subject hears NATS's "no responders". An acknowledgement that does not come within
//! `request_timeout`, or NATS's "no responders", fails that message
//! (the gate's `on_forward_error` hook tells the client) and unbinds the connection, so its
//! next message finds a live backend.
//!
//! While a connection's binding moves to another node (`moving`), its messages to that
//! type wait here, and go on in order once the new node has the connection; so do they
//! while NATS is away (`outage`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::{GateLink, lock};
use crate::agent::Agent;
use crate::cluster::wire::ToBackend;
use crate::cluster::{ClusterError, request_error};
use crate::metrics::CachedCounter;
use crate::processor::ForwardWait;

/// Why a message cannot be sent at once.
enum Route {
    /// The connection's binding is moving: the message waits until the token is cancelled.
    Held(CancellationToken, Bytes),
    /// The connection is not bound to a node of the type yet.
    Unbound(Bytes),
    /// NATS is away (`outage`): the message waits until the gate is ready again.
    Paused(Bytes),
}

/// A forwarded message waiting for its acknowledgement.
pub(super) struct Inflight {
    conn: u64,
    node_type: Arc<str>,
    name: Arc<str>,
    deadline: Instant,
}

impl Inflight {
    /// Its timeout counts again, to `deadline` at the earliest (after a NATS outage).
    pub(super) fn renew(&mut self, deadline: Instant) {
        self.deadline = self.deadline.max(deadline);
    }
}

impl GateLink {
    /// Waits (within the request timeout) until every forwarded message is acknowledged or
    /// failed: part of the gate's drain.
    pub(super) async fn settle_forwards(&self) {
        let deadline = tokio::time::Instant::now() + self.cluster.config().request_timeout;
        while !lock(&self.inflight).is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A connection opened: it is bound to a backend of every type this gate forwards to.
    pub(super) async fn bind_all(&self, agent: &Agent) {
        for ty in self.types.clone() {
            if let Err(e) = self.bind(agent, &ty).await {
                crate::agent::logged::conn_event!(WARN, agent, node_type = %ty, error = %e, "no backend for a new connection yet");
            }
        }
    }

    /// Asks the type's queue group which node takes this connection.
    async fn bind(&self, agent: &Agent, ty: &Arc<str>) -> Result<Arc<str>, ClusterError> {
        if !self.wait_ready().await {
            return Err(ClusterError::Nats("not connected to NATS".into()));
        }
        let open = ToBackend::Open {
            gate: self.cluster.node_id().to_owned(),
            conn: agent.id(),
            transport: agent.transport().code(),
            local: agent.local_addr().to_string(),
            remote: agent.remote_addr().to_string(),
        };
        let timeout = self.cluster.config().request_timeout;
        let subject = self.cluster.subjects().svc(ty);
        let reply =
            tokio::time::timeout(timeout, self.cluster.nats().request(subject, open.encode()))
                .await
                .map_err(|_| ClusterError::Timeout(timeout))?
                .map_err(|e| request_error(ty, timeout, e))?;
        let node = self.node_name(&String::from_utf8_lossy(&reply.payload));
        tracing::debug!(conn = agent.id(), node_type = %ty, node = %node, "connection bound");
        lock(&self.bindings)
            .entry(agent.id())
            .or_default()
            .insert(Arc::clone(ty), Arc::clone(&node));
        Ok(node)
    }

    /// Forwards one client message to the connection's backend of type `ty`. Returns a
    /// future to wait on when the connection must be bound first, or its binding is moving
    /// to another node (so that its messages stay in order).
    pub(super) fn forward_one(
        &self,
        agent: &Agent,
        ty: &Arc<str>,
        name: &Arc<str>,
        payload: Bytes,
    ) -> Option<ForwardWait> {
        let route = self.route(agent.id(), ty, name, payload)?;
        let link = self.me.upgrade()?;
        let (agent, ty, name) = (agent.clone(), Arc::clone(ty), Arc::clone(name));
        Some(Box::pin(async move {
            match route {
                Route::Held(released, payload) => {
                    released.cancelled().await;
                    link.forward_again(&agent, &ty, &name, payload).await;
                }
                Route::Unbound(payload) => match link.bind(&agent, &ty).await {
                    Ok(_) => link.forward_again(&agent, &ty, &name, payload).await,
                    Err(e) => link.report(&agent, &name, &e),
                },
                Route::Paused(payload) => {
                    if link.wait_ready().await {
                        link.forward_again(&agent, &ty, &name, payload).await;
                    } else {
                        // Never published: it is not handled later.
                        let e = ClusterError::Nats("not connected to NATS".into());
                        link.report(&agent, &name, &e);
                    }
                }
            }
        }))
    }

    /// The message once its wait is over: through the same checks as a new one.
    async fn forward_again(&self, agent: &Agent, ty: &Arc<str>, name: &Arc<str>, payload: Bytes) {
        if let Some(wait) = self.forward_one(agent, ty, name, payload) {
            wait.await;
        }
    }

    /// Sends the message to the node the connection is bound to, unless it is not bound or
    /// its binding is moving. The check and the send are one step under the bindings lock:
    /// a move that starts holds the connection's later messages, and what was sent before
    /// reaches the stopping node before the move's hand-off request.
    fn route(&self, conn: u64, ty: &Arc<str>, name: &Arc<str>, payload: Bytes) -> Option<Route> {
        if !self.is_ready() {
            return Some(Route::Paused(payload));
        }
        let bindings = lock(&self.bindings);
        let held = lock(&self.held);
        if !held.is_empty()
            && let Some(released) = held.get(&(conn, Arc::clone(ty)))
        {
            return Some(Route::Held(released.clone(), payload));
        }
        drop(held);
        match bindings.get(&conn).and_then(|b| b.get(ty)) {
            Some(node) => {
                self.send_bound(conn, ty, node, name, payload);
                None
            }
            None => Some(Route::Unbound(payload)),
        }
    }

    fn send_bound(
        &self,
        conn: u64,
        ty: &Arc<str>,
        node: &Arc<str>,
        name: &Arc<str>,
        payload: Bytes,
    ) {
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
        c.send_forward(node, conn, seq, payload);
        static FORWARDED: CachedCounter = CachedCounter::new("longlink_cluster_forwarded_total");
        FORWARDED.increment(1);
    }

    /// Forwarded message `seq` has been handled (`ToGate::Handled`).
    pub(super) fn handled(&self, seq: u64) {
        lock(&self.inflight).remove(&seq);
    }

    /// A message on an acknowledgement subject: NATS's "no responders" for the forwarded
    /// messages it lists (one, or a batch's), which fails each; or an older backend's
    /// "handled" for one.
    pub(super) fn acked(&self, msg: &async_nats::Message) {
        let no_responders = msg.status == Some(async_nats::StatusCode::NO_RESPONDERS);
        for seq in crate::cluster::coalesce::reply_numbers(&msg.subject) {
            let Some(inflight) = lock(&self.inflight).remove(&seq) else {
                continue;
            };
            if no_responders {
                let e = ClusterError::NoResponders(inflight.node_type.to_string());
                self.fail(inflight, &e);
            }
        }
    }

    fn fail(&self, inflight: Inflight, e: &ClusterError) {
        metrics::counter!("longlink_cluster_forward_failed_total").increment(1);
        // The backend is gone or stuck: the next message binds afresh. Not while NATS is
        // coming back: its node may only not be subscribed again yet.
        if self.is_ready()
            && let Some(b) = lock(&self.bindings).get_mut(&inflight.conn)
        {
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
                crate::agent::logged::conn_event!(ERROR, agent, "on_forward_error hook panicked");
            }
        }
    }

    pub(super) async fn expire_loop(&self) {
        let tick = (self.cluster.config().request_timeout / 10)
            .clamp(Duration::from_millis(10), Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
            if !self.is_ready() {
                // Timeouts count from the end of the outage (`outage`).
                continue;
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
}
