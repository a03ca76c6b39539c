//! Sweeping the directory: the uid entries of gates that are gone (killed, or restarted
//! under the same node id) count for nothing (`cluster/directory.rs`), and would stay in
//! NATS until their uid logs in again. One gate removes them: the first by name of the
//! gates alive and not stopping, when it starts and whenever a gate it saw alive is gone.
//!
//! An entry is removed only when its gate was read gone *after* the entry was written
//! (with `CLOCK_MARGIN` for the clocks of NATS and this node), and only at the revision
//! read: a gate that starts during a sweep, or an entry claimed again meanwhile, is left
//! alone. A gate whose alive key had only lapsed (NATS away) claims its uids again when it
//! writes the key anew (`directory`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use super::GateLink;
use crate::cluster::ClusterError;
use crate::cluster::directory::Alive;
use crate::cluster::subjects::uid_key_all;
use crate::cluster::wire::Holder;

/// How far the NATS server's clock and this node's may differ, at most.
const CLOCK_MARGIN: Duration = Duration::from_secs(2);

/// A gate's alive key as read during a sweep, and when.
type Seen = (Option<Alive>, SystemTime);

impl GateLink {
    /// Every `directory_ttl`: which gates are alive; a sweep when one seen before is gone
    /// (or at the first look), if this gate is the first alive by name.
    pub(super) async fn sweep_loop(&self) {
        let mut every = tokio::time::interval(self.cluster.config().directory_ttl);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut known: Option<HashMap<String, u64>> = None;
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let Ok(store) = self.cluster.directory().await else {
                continue;
            };
            let Ok(gates) = self.gates(store).await else {
                continue;
            };
            let now: HashMap<String, u64> = gates
                .iter()
                .map(|(g, a)| (g.clone(), a.incarnation))
                .collect();
            let lost = known
                .as_ref()
                .is_none_or(|k| k.iter().any(|(g, inc)| now.get(g) != Some(inc)));
            let first = gates
                .iter()
                .filter(|(_, a)| !a.stopping)
                .map(|(g, _)| g)
                .min();
            if lost && first.is_some_and(|g| g == self.cluster.node_id()) {
                match self.sweep(store).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(entries = n, "directory: entries of gone gates removed")
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "directory sweep failed (tried again)");
                        continue;
                    }
                }
            }
            known = Some(now);
        }
    }

    /// Reads every uid entry once and removes those whose gate is gone. How many it removed.
    async fn sweep(&self, store: &kv::Store) -> Result<usize, ClusterError> {
        let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(e.to_string());
        let wait = self.cluster.config().request_timeout;
        let mut entries = store
            .watch_with_history(uid_key_all())
            .await
            .map_err(|e| nats(&e))?;
        let mut seen: HashMap<String, Seen> = HashMap::new();
        let mut removed = 0;
        // No entry within `request_timeout`: there are none (a watch of no keys is silent).
        while let Ok(Some(entry)) = tokio::time::timeout(wait, entries.next()).await {
            let entry = entry.map_err(|e| nats(&e))?;
            let last = entry.delta == 0;
            if entry.operation == kv::Operation::Put
                && let Some(holder) = Holder::decode(&entry.value)
                && self.gone(&holder, entry.created.into(), &mut seen).await?
            {
                match self.cluster.remove(&entry.key, entry.revision).await {
                    Ok(()) => removed += 1,
                    Err(e) => tracing::debug!(key = %entry.key, error = %e, "entry not removed"),
                }
            }
            if last {
                break;
            }
        }
        Ok(removed)
    }

    /// Whether `holder`'s gate, read after `written` (the entry's time), is gone or another
    /// start of it.
    async fn gone(
        &self,
        holder: &Holder,
        written: SystemTime,
        seen: &mut HashMap<String, Seen>,
    ) -> Result<bool, ClusterError> {
        let counts = |alive: &Option<Alive>| alive.is_some_and(|a| a.owns(holder.incarnation));
        if let Some((alive, read)) = seen.get(&holder.gate)
            && (counts(alive) || *read > written + CLOCK_MARGIN)
        {
            return Ok(!counts(alive));
        }
        let read = SystemTime::now();
        let alive = self.cluster.alive(&holder.gate).await?;
        seen.insert(holder.gate.clone(), (alive, read));
        Ok(!counts(&alive))
    }
}
