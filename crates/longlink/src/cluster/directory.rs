//! The cluster's directory: the JetStream key-value bucket `P_sessions` (see [`subjects`]).
//!
//! - `node.<gate>`: a gate's "alive" key, `gate <incarnation>` (or `stopping <incarnation>`
//!   once it stops). Its gate rewrites it every third of `directory_ttl`; it carries a
//!   time-to-live of `directory_ttl` (`Nats-TTL`), so a killed gate's key is gone by then.
//! - `uid.<uid>`: the connection that holds the uid ([`Holder`]). Written once, at login,
//!   with no expiry, so it costs nothing while its gate lives: no gate rewrites its uids.
//!   Removed when the connection closes, by a purge marker that itself expires after
//!   `directory_ttl`.
//!
//! The bucket has **no maximum age**: only what must expire says so. A stream with a
//! maximum age has nats-server look over its oldest messages every few seconds, loading
//! every block of them, to find what is old enough to go: with 100,000 lasting entries, 2%
//! of a core and about 17 MiB more of its memory, at rest (BENCHMARKS.md). A bucket made by
//! an earlier version keeps its maximum age, and its entries say `Nats-TTL: never`.
//!
//! An entry **counts only while its gate's alive key names the same incarnation**: a killed
//! gate's uids stop counting when its key expires, and a gate restarted under the same
//! node id does not inherit its predecessor's entries (their connection ids mean nothing to
//! it). The gates sweep entries that no longer count out of the bucket (`gate/sweep.rs`).
//!
//! [`subjects`]: super::subjects

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_TTL};
use async_nats::jetstream::kv;
use bytes::Bytes;

use super::subjects::{node_key, uid_key};
use super::wire::Holder;
use super::{Cluster, ClusterError};

/// How long a gate seen alive is believed alive without asking again. Far below
/// `directory_ttl`, the time a killed gate's key outlives it anyway.
const ALIVE_BELIEVED: Duration = Duration::from_secs(1);

/// A gate's "alive" key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Alive {
    /// It is stopping: it takes no session from another gate.
    pub(crate) stopping: bool,
    /// Which start of the gate (0: not said, from a gate of an earlier version).
    pub(crate) incarnation: u64,
}

impl Alive {
    pub(crate) fn encode(&self) -> Bytes {
        let state = if self.stopping { "stopping" } else { "gate" };
        Bytes::from(format!("{state} {}", self.incarnation))
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Alive> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        let stopping = match parts.next()? {
            "gate" => false,
            "stopping" => true,
            _ => return None,
        };
        let incarnation = match parts.next() {
            Some(n) => n.parse().ok()?,
            None => 0,
        };
        Some(Alive {
            stopping,
            incarnation,
        })
    }

    /// Whether an entry written by incarnation `of` of this gate counts (0 on either side:
    /// not said, so any).
    pub(crate) fn owns(&self, of: u64) -> bool {
        self.incarnation == 0 || of == 0 || self.incarnation == of
    }
}

/// The gates seen alive lately, by node id: (their incarnation, when seen).
#[derive(Default)]
pub(crate) struct AliveSeen(Mutex<HashMap<String, (Alive, Instant)>>);

impl AliveSeen {
    fn get(&self, gate: &str) -> Option<Alive> {
        let seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(gate)
            .filter(|(_, at)| at.elapsed() < ALIVE_BELIEVED)
            .map(|(alive, _)| *alive)
    }

    fn set(&self, gate: &str, alive: Option<Alive>) {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match alive {
            Some(a) => {
                seen.insert(gate.to_owned(), (a, Instant::now()));
            }
            None => {
                seen.remove(gate);
            }
        }
    }
}

/// A new node start's incarnation: random, never 0.
pub(crate) fn new_incarnation() -> u64 {
    super::config::random_u64().max(1)
}

fn nats(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Nats(format!("directory: {e}"))
}

/// The directory bucket, opened.
pub(crate) struct Bucket {
    store: kv::Store,
    /// The bucket has a maximum age (an earlier version made it): a lasting entry says so.
    max_age: bool,
}

impl Cluster {
    /// The directory bucket, opened (or created) on first use within `request_timeout`;
    /// retried after a failure. All nodes should share `directory_ttl`: each alive key
    /// carries its own gate's, and the first node to create the bucket sets how long its
    /// markers of expired keys last.
    pub(crate) async fn directory(&self) -> Result<&kv::Store, ClusterError> {
        Ok(&self.bucket().await?.store)
    }

    async fn bucket(&self) -> Result<&Bucket, ClusterError> {
        let timeout = self.inner.config.request_timeout;
        self.inner
            .directory
            .get_or_try_init(|| async {
                tokio::time::timeout(timeout, self.open_directory())
                    .await
                    .map_err(|_| ClusterError::Timeout(timeout))?
            })
            .await
    }

    /// Opens the bucket, or creates it: history 1, no maximum age, per-message time-to-live
    /// on (what must expire says when). A bucket made by an earlier version keeps its
    /// maximum age; if it has no per-message time-to-live, that is turned on.
    async fn open_directory(&self) -> Result<Bucket, ClusterError> {
        let js = async_nats::jetstream::new(self.inner.client.clone());
        let bucket = self.subjects().bucket();
        let ttl = self.inner.config.directory_ttl;
        let failed =
            |e: &dyn std::fmt::Display| ClusterError::Nats(format!("directory bucket: {e}"));
        let store = match js.get_key_value(bucket.clone()).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket,
                    history: 1,
                    limit_markers: Some(ttl),
                    storage: async_nats::jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| failed(&e))?,
        };
        let mut config = store.stream.cached_info().config.clone();
        let max_age = !config.max_age.is_zero();
        if !config.allow_message_ttl {
            config.allow_message_ttl = true;
            config.subject_delete_marker_ttl = Some(ttl);
            js.update_stream(config).await.map_err(|e| failed(&e))?;
        }
        Ok(Bucket { store, max_age })
    }

    /// Writes `value` under `key`, never to expire, if the key's last revision is
    /// `expected` (0: it has none). The new revision.
    pub(crate) async fn put_lasting(
        &self,
        key: &str,
        value: Bytes,
        expected: u64,
    ) -> Result<u64, ClusterError> {
        let bucket = self.bucket().await?;
        let mut headers = async_nats::HeaderMap::new();
        if bucket.max_age {
            headers.insert(NATS_MESSAGE_TTL, "never");
        }
        headers.insert(
            NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            async_nats::HeaderValue::from(expected),
        );
        self.put_with(&bucket.store, key, headers, value).await
    }

    /// Writes `value` under `key`, to expire after `directory_ttl` unless written again.
    pub(crate) async fn put_expiring(&self, key: &str, value: Bytes) -> Result<u64, ClusterError> {
        let store = self.directory().await?;
        let ttl = self.inner.config.directory_ttl.as_secs().max(1);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(NATS_MESSAGE_TTL, async_nats::HeaderValue::from(ttl));
        self.put_with(store, key, headers, value).await
    }

    async fn put_with(
        &self,
        store: &kv::Store,
        key: &str,
        headers: async_nats::HeaderMap,
        value: Bytes,
    ) -> Result<u64, ClusterError> {
        let prefix = store.put_prefix.as_deref().unwrap_or(&store.prefix);
        let js = async_nats::jetstream::new(self.inner.client.clone());
        let ack = js
            .publish_with_headers(format!("{prefix}{key}"), headers, value)
            .await
            .map_err(nats)?
            .await
            .map_err(nats)?;
        Ok(ack.sequence)
    }

    /// Removes `key`, whatever its revision: a purge marker that expires after
    /// `directory_ttl`.
    pub(crate) async fn remove_any(&self, key: &str) -> Result<(), ClusterError> {
        let store = self.directory().await?;
        let ttl = self.inner.config.directory_ttl;
        store.purge_with_ttl(key, ttl).await.map_err(nats)
    }

    /// Removes `key` if its last revision is `revision`: a purge marker that expires after
    /// `directory_ttl`.
    pub(crate) async fn remove(&self, key: &str, revision: u64) -> Result<(), ClusterError> {
        let store = self.directory().await?;
        let ttl = self.inner.config.directory_ttl;
        store
            .purge_expect_revision_with_ttl(key, revision, ttl)
            .await
            .map_err(nats)
    }

    /// Gate `gate`'s alive key now, asked of NATS within `request_timeout` (and remembered
    /// for [`Cluster::counts`]).
    pub(crate) async fn alive(&self, gate: &str) -> Result<Option<Alive>, ClusterError> {
        let store = self.directory().await?;
        let timeout = self.inner.config.request_timeout;
        let value = tokio::time::timeout(timeout, store.get(node_key(gate)))
            .await
            .map_err(|_| ClusterError::Timeout(timeout))?
            .map_err(nats)?;
        let alive = value.as_deref().and_then(Alive::decode);
        self.inner.alive_seen.set(gate, alive);
        Ok(alive)
    }

    /// Whether `holder`'s entry counts: its gate is alive, in the incarnation that wrote it.
    pub(crate) async fn counts(&self, holder: &Holder) -> Result<bool, ClusterError> {
        if let Some(alive) = self.inner.alive_seen.get(&holder.gate)
            && alive.owns(holder.incarnation)
        {
            return Ok(true);
        }
        let alive = self.alive(&holder.gate).await?;
        Ok(alive.is_some_and(|a| a.owns(holder.incarnation)))
    }

    /// The connection that holds `uid`, if its entry counts.
    pub(crate) async fn holder(&self, uid: u64) -> Result<Option<Holder>, ClusterError> {
        let store = self.directory().await?;
        let timeout = self.inner.config.request_timeout;
        let value = tokio::time::timeout(timeout, store.get(uid_key(uid)))
            .await
            .map_err(|_| ClusterError::Timeout(timeout))?
            .map_err(nats)?;
        let Some(holder) = value.as_deref().and_then(Holder::decode) else {
            return Ok(None);
        };
        Ok(self.counts(&holder).await?.then_some(holder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alive_values_round_trip_and_read_an_earlier_versions() {
        for stopping in [false, true] {
            let a = Alive {
                stopping,
                incarnation: 42,
            };
            assert_eq!(Alive::decode(&a.encode()), Some(a));
        }
        let old = Alive::decode(b"gate").unwrap();
        assert_eq!((old.stopping, old.incarnation), (false, 0));
        assert!(Alive::decode(b"stopping").unwrap().stopping);
        assert_eq!(Alive::decode(b"nonsense"), None);
        assert_eq!(Alive::decode(b"gate x"), None);
    }

    #[test]
    fn an_entry_counts_for_its_own_incarnation_only() {
        let alive = Alive {
            stopping: false,
            incarnation: 7,
        };
        assert!(alive.owns(7));
        assert!(!alive.owns(8));
        assert!(alive.owns(0), "an entry that does not say counts");
        let unsaid = Alive {
            stopping: false,
            incarnation: 0,
        };
        assert!(unsaid.owns(8));
    }
}
