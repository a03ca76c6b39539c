//! The uids this gate holds in the cluster's directory: claimed on login (displacing the
//! uid's connection anywhere else), released on close, refreshed while the gate lives; and
//! the gate's own "alive" key, which says when it is stopping.

use std::sync::atomic::Ordering;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{GateLink, lock};
use crate::agent::Agent;
use crate::cluster::ClusterError;
use crate::cluster::subjects::{node_key, uid_key};
use crate::cluster::wire::{Holder, ToBackend, ToGate};

/// A live gate's "alive" key.
const ALIVE: &[u8] = b"gate";

/// The "alive" key of a gate that is stopping.
const STOPPING: &[u8] = b"stopping";

impl GateLink {
    /// A connection closed: its backends hear of it (after its messages), and its uid
    /// leaves the directory if it still holds it.
    pub(super) fn forget(&self, agent: &Agent) {
        let conn = agent.id();
        let bound = lock(&self.bindings).remove(&conn).unwrap_or_default();
        let c = &self.cluster;
        for node in bound.values() {
            c.send(
                c.subjects().node(node),
                None,
                ToBackend::Close {
                    gate: c.node_id().to_owned(),
                    conn,
                }
                .encode(),
            );
        }
        let claimed = lock(&self.claims).remove(&conn);
        if let Some((uid, _)) = claimed {
            let Some(link) = self.me.upgrade() else {
                return;
            };
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
    pub(super) fn bind_uid(&self, agent: &Agent, uid: u64, at: u64) {
        let conn = agent.id();
        if uid == 0 {
            lock(&self.claims).remove(&conn);
            return;
        }
        lock(&self.claims).insert(conn, (uid, at));
        let Some(link) = self.me.upgrade() else {
            return;
        };
        self.directory_work.spawn(async move {
            if let Err(e) = link.claim(uid, conn, at).await {
                tracing::warn!(uid, error = %e, "directory claim failed");
            }
        });
    }

    async fn claim(&self, uid: u64, conn: u64, at: u64) -> Result<(), ClusterError> {
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

    /// Writes this gate's "alive" key: `"gate"`, or `"stopping"` once it is (it takes no
    /// session from another gate then).
    pub(super) async fn say_alive(&self, store: &kv::Store) -> Result<(), ClusterError> {
        let value = if self.leaving.load(Ordering::Acquire) {
            STOPPING
        } else {
            ALIVE
        };
        store
            .put(node_key(self.cluster.node_id()), Bytes::from_static(value))
            .await
            .map(|_| ())
            .map_err(|e| ClusterError::Nats(e.to_string()))
    }

    /// This gate is stopping, with sessions to hand over: it says so in the directory, and
    /// tells whether another gate is alive (and not stopping) to take them. `true` when the
    /// directory cannot be read within `request_timeout`: the drain then goes on as if.
    pub(super) async fn other_gate_lives(&self) -> bool {
        self.leaving.store(true, Ordering::Release);
        let wait = self.cluster.config().request_timeout;
        let others = async {
            let store = self.cluster.directory().await?;
            self.say_alive(store).await?;
            self.alive_gates(store).await
        };
        match tokio::time::timeout(wait, others).await {
            Ok(Ok(gates)) => gates.iter().any(|g| g != self.cluster.node_id()),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot tell whether another gate lives");
                true
            }
            Err(_) => true,
        }
    }

    /// The gates whose "alive" key says `"gate"`. This gate's own key is always among the
    /// keys read (it wrote it just before), so the reading ends at the last one.
    async fn alive_gates(&self, store: &kv::Store) -> Result<Vec<String>, ClusterError> {
        let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(e.to_string());
        let mut keys = store
            .watch_with_history(node_key(">"))
            .await
            .map_err(|e| nats(&e))?;
        let mut gates = Vec::new();
        while let Some(entry) = keys.next().await {
            let entry = entry.map_err(|e| nats(&e))?;
            if entry.operation == kv::Operation::Put && entry.value.as_ref() == ALIVE {
                let gate = entry.key.strip_prefix(&node_key("")).unwrap_or(&entry.key);
                gates.push(gate.to_owned());
            }
            if entry.delta == 0 {
                break;
            }
        }
        Ok(gates)
    }

    /// Keeps this gate's entries alive: its own "alive" key (backends drop the connections
    /// of a gate whose key has expired) and the uids of its connections, each every third
    /// of `directory_ttl`, on two timers: however long a round of uids takes (at 16,000 of
    /// them on a busy machine, longer than the time-to-live when they went one at a time),
    /// the alive key is never behind it.
    pub(super) async fn refresh_loop(&self) {
        tokio::join!(self.alive_loop(), self.uids_loop());
    }

    async fn alive_loop(&self) {
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
            if let Err(e) = self.say_alive(store).await {
                tracing::debug!(error = %e, "directory refresh failed");
            }
        }
    }

    /// Rewrites every uid this gate holds, `REFRESH_IN_FLIGHT` at once.
    async fn uids_loop(&self) {
        let mut every = tokio::time::interval(self.cluster.config().directory_ttl / 3);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await; // the first is at once: each claim has just written its entry
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let Ok(store) = self.cluster.directory().await else {
                continue;
            };
            let claims: Vec<(u64, (u64, u64))> =
                lock(&self.claims).iter().map(|(c, v)| (*c, *v)).collect();
            let mut puts = futures_util::stream::iter(claims)
                .map(|(conn, (uid, at))| async move {
                    if lock(&self.claims).get(&conn) != Some(&(uid, at)) {
                        return (uid, Ok(())); // handed over, closed or logged in again meanwhile
                    }
                    let put = store.put(uid_key(uid), self.me(conn, at).encode()).await;
                    (uid, put.map(|_| ()))
                })
                .buffer_unordered(REFRESH_IN_FLIGHT);
            while let Some((uid, put)) = puts.next().await {
                if let Err(e) = put {
                    tracing::debug!(uid, error = %e, "directory refresh failed");
                    break;
                }
            }
        }
    }
}

/// Directory refreshes in flight at once.
const REFRESH_IN_FLIGHT: usize = 128;
