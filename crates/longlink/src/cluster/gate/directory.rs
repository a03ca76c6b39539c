//! The uids this gate holds in the cluster's directory: claimed on login (displacing the
//! uid's connection anywhere else) and released on close; and the gate's own "alive" key,
//! which keeps them counting while the gate lives, and says when it is stopping. The uid
//! entries are not rewritten while the gate lives (`cluster/directory.rs`): only when its
//! alive key was gone (NATS was away for longer than `directory_ttl`, or lost its
//! storage), the gate claims its uids again.

use std::sync::atomic::Ordering;

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use super::{GateLink, lock};
use crate::agent::Agent;
use crate::cluster::ClusterError;
use crate::cluster::directory::Alive;
use crate::cluster::subjects::{node_key, uid_key};
use crate::cluster::wire::{Holder, ToBackend, ToGate};

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
                self.cluster.remove(&entry.key, entry.revision).await?;
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
            let previous = match entry.as_ref().filter(|e| e.operation == kv::Operation::Put) {
                Some(e) => self.counting(Holder::decode(&e.value)).await?,
                None => None,
            };
            if let Some(newer) = previous.as_ref().filter(|p| !p.same_conn(&me) && p.at > at) {
                tracing::debug!(uid, newer_gate = %newer.gate, "a later login holds the uid: this one is displaced");
                self.apply(ToGate::Displace { conn, uid });
                return Ok(());
            }
            let expected = entry.as_ref().map_or(0, |e| e.revision);
            let written = self.cluster.put_lasting(&key, me.encode(), expected).await;
            match written {
                Ok(_) => {
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

    /// `holder` if it counts (its gate is alive in the incarnation that wrote it): an entry
    /// of a gate that is gone is no one's.
    async fn counting(&self, holder: Option<Holder>) -> Result<Option<Holder>, ClusterError> {
        let Some(holder) = holder else {
            return Ok(None);
        };
        if holder.gate == self.cluster.node_id() {
            let mine = holder.incarnation == self.cluster.incarnation();
            return Ok(mine.then_some(holder));
        }
        Ok(self.cluster.counts(&holder).await?.then_some(holder))
    }

    /// Writes this gate's "alive" key (`stopping` once it is: it takes no session from
    /// another gate then). Whether the key was this gate's own before: `false` when it had
    /// expired or was never written.
    pub(super) async fn say_alive(&self, store: &kv::Store) -> Result<bool, ClusterError> {
        let key = node_key(self.cluster.node_id());
        let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(e.to_string());
        let before = store.get(key.clone()).await.map_err(|e| nats(&e))?;
        let incarnation = self.cluster.incarnation();
        let was_mine = before
            .as_deref()
            .and_then(Alive::decode)
            .is_some_and(|a| a.incarnation == incarnation);
        let alive = Alive {
            stopping: self.leaving.load(Ordering::Acquire),
            incarnation,
        };
        self.cluster.put_expiring(&key, alive.encode()).await?;
        Ok(was_mine)
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

    /// The gates that are alive and not stopping.
    async fn alive_gates(&self, store: &kv::Store) -> Result<Vec<String>, ClusterError> {
        let gates = self.gates(store).await?;
        Ok(gates
            .into_iter()
            .filter(|(_, a)| !a.stopping)
            .map(|(g, _)| g)
            .collect())
    }

    /// Every gate whose "alive" key is there, stopping or not. This gate's own key is
    /// always among the keys read (it wrote it before), so the reading ends at the last one.
    pub(super) async fn gates(
        &self,
        store: &kv::Store,
    ) -> Result<Vec<(String, Alive)>, ClusterError> {
        let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(e.to_string());
        let mut keys = store
            .watch_with_history(node_key(">"))
            .await
            .map_err(|e| nats(&e))?;
        let mut gates = Vec::new();
        while let Some(entry) = keys.next().await {
            let entry = entry.map_err(|e| nats(&e))?;
            let alive = (entry.operation == kv::Operation::Put)
                .then(|| Alive::decode(&entry.value))
                .flatten();
            if let Some(alive) = alive {
                let gate = entry.key.strip_prefix(&node_key("")).unwrap_or(&entry.key);
                gates.push((gate.to_owned(), alive));
            }
            if entry.delta == 0 {
                break;
            }
        }
        Ok(gates)
    }

    /// Keeps this gate's "alive" key alive (backends drop the connections of a gate whose key
    /// has expired; the directory counts its uids only while it is there), every third of
    /// `directory_ttl`, and sweeps the entries of gates that are gone (`sweep`).
    pub(super) async fn refresh_loop(&self) {
        tokio::join!(self.alive_loop(), self.sweep_loop());
    }

    /// Every `period`, the first time at once, until the gate stops: the directory, when it
    /// can be opened.
    pub(super) fn directory_ticks(
        &self,
        period: std::time::Duration,
    ) -> impl futures_util::Stream<Item = &kv::Store> + '_ {
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        futures_util::stream::unfold(every, move |mut every| async move {
            loop {
                tokio::select! {
                    _ = self.stop.cancelled() => return None,
                    _ = every.tick() => {}
                }
                if let Ok(store) = self.cluster.directory().await {
                    return Some((store, every));
                }
            }
        })
    }

    async fn alive_loop(&self) {
        // The first tick is at once: the gate is alive from its start.
        let ticks = self.directory_ticks(self.cluster.config().directory_ttl / 3);
        let mut ticks = std::pin::pin!(ticks);
        while let Some(store) = ticks.next().await {
            match self.say_alive(store).await {
                Ok(true) => {}
                Ok(false) => self.claim_again().await,
                Err(e) => tracing::debug!(error = %e, "directory refresh failed"),
            }
        }
    }

    /// This gate's alive key had gone: its uids may have been swept out of the directory
    /// meanwhile, so each is claimed again (`CLAIMS_IN_FLIGHT` at once), as at its login.
    async fn claim_again(&self) {
        let claims: Vec<(u64, (u64, u64))> =
            lock(&self.claims).iter().map(|(c, v)| (*c, *v)).collect();
        if claims.is_empty() {
            return;
        }
        tracing::info!(
            uids = claims.len(),
            "alive key was gone: claiming this gate's uids again"
        );
        let mut claimed = futures_util::stream::iter(claims)
            .map(|(conn, (uid, at))| async move { (uid, self.claim(uid, conn, at).await) })
            .buffer_unordered(CLAIMS_IN_FLIGHT);
        while let Some((uid, claim)) = claimed.next().await {
            if let Err(e) = claim {
                tracing::debug!(uid, error = %e, "directory claim failed");
            }
        }
    }
}

/// Directory claims in flight at once when a gate claims its uids again.
const CLAIMS_IN_FLIGHT: usize = 128;
