//! One request that pushes to many uids and broadcasts to many groups (`POST /api/v1/batch`,
//! `<subject_prefix>.api.batch`), so a backend notifies 10,000 players with one request
//! instead of 10,000:
//!
//! ```text
//! {"push": [{"uids": [1, 2, 3], "message": {"S2C_Message": {..}}}, ..],
//!  "broadcast": [{"group": "room", "keys": [7, 8], "message": {..}}, ..]}
//! -> {"delivered": 2, "not_online": [3], "failed": [], "sent": 0}
//! ```
//!
//! The whole request is checked before anything is sent (every message encoded, the size
//! within [`MAX_TARGETS`] and [`BATCH_BODY_LIMIT`]): a bad one is refused whole, nothing
//! delivered. Each entry's message goes once to each distinct uid (or group) it names;
//! entries run in order, so two entries for the same uid arrive in the order given. In a
//! cluster, an entry's uids elsewhere cost one directory look-up each and one NATS message
//! per gate that holds some of them ([`Cluster::push_uids`](crate::cluster::Cluster::push_uids)).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Api, ApiError, group_name};
use crate::agent::Agent;
use crate::codec::Encoded;

/// The largest batch body read (over HTTP and NATS; NATS's own default `max_payload` is the
/// same 1 MiB).
pub(crate) const BATCH_BODY_LIMIT: usize = 1024 * 1024;

/// The most targets (uids plus group keys, over all entries) one batch may name.
pub(crate) const MAX_TARGETS: usize = 10_000;

/// `POST /api/v1/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Batch {
    #[serde(default)]
    push: Vec<PushMany>,
    #[serde(default)]
    broadcast: Vec<BroadcastMany>,
}

/// One message to each of `uids`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushMany {
    uids: Vec<u64>,
    message: Box<RawValue>,
}

/// One message to the members of each `"<group>.<key>"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BroadcastMany {
    group: String,
    keys: Vec<serde_json::Value>,
    message: Box<RawValue>,
}

/// A batch's answer.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct BatchResult {
    /// Pushes handed to the connection (here) or to the gate holding the uid (in a cluster).
    pub(crate) delivered: usize,
    /// Uids with no connection anywhere, each listed once.
    pub(crate) not_online: Vec<u64>,
    /// Uids whose holder the cluster could not tell (NATS away): retry these.
    pub(crate) failed: Vec<u64>,
    /// Connections of this node that took a group broadcast (in a cluster each gate
    /// delivers its own, and this is 0).
    pub(crate) sent: usize,
}

/// Reads a batch and checks its size: `body_too_large` over [`BATCH_BODY_LIMIT`] bytes,
/// `batch_too_large` over [`MAX_TARGETS`] targets.
pub(crate) fn parse_batch(bytes: &[u8]) -> Result<Batch, ApiError> {
    if bytes.len() > BATCH_BODY_LIMIT {
        return Err(ApiError::bad_request(
            "body_too_large",
            format!("body: over {BATCH_BODY_LIMIT} bytes"),
        ));
    }
    let batch: Batch = super::parse_body(bytes)?;
    let targets: usize = batch.push.iter().map(|p| p.uids.len()).sum::<usize>()
        + batch.broadcast.iter().map(|b| b.keys.len()).sum::<usize>();
    if targets > MAX_TARGETS {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!("batch: {targets} targets, at most {MAX_TARGETS}"),
        ));
    }
    Ok(batch)
}

/// A push entry checked: its message encoded and its uids without repeats, in order.
struct Pushes {
    encoded: Encoded,
    uids: Vec<u64>,
}

impl Api {
    /// Runs a batch: every message is encoded first (a bad one refuses the whole batch with
    /// its place, `push[2].message: ...`), then the pushes in order, then the broadcasts.
    pub(crate) async fn batch(&self, batch: &Batch) -> Result<BatchResult, ApiError> {
        let mut pushes = Vec::with_capacity(batch.push.len());
        for (i, p) in batch.push.iter().enumerate() {
            let encoded = self.encode(&p.message).map_err(|e| at(e, "push", i))?;
            let mut seen = std::collections::HashSet::with_capacity(p.uids.len());
            let uids = p.uids.iter().copied().filter(|u| seen.insert(*u)).collect();
            pushes.push(Pushes { encoded, uids });
        }
        let mut groups = Vec::with_capacity(batch.broadcast.len());
        for (i, b) in batch.broadcast.iter().enumerate() {
            let encoded = self.encode(&b.message).map_err(|e| at(e, "broadcast", i))?;
            let names: BTreeSet<String> = b.keys.iter().map(|k| group_name(&b.group, k)).collect();
            groups.push((encoded, names));
        }
        let mut result = BatchResult::default();
        let mut not_online = BTreeSet::new();
        let mut failed = BTreeSet::new();
        for p in &pushes {
            self.push_many(p, &mut result.delivered, &mut not_online, &mut failed)
                .await;
        }
        for (encoded, names) in &groups {
            for name in names {
                result.sent += self.broadcast_encoded(Some(name), encoded);
            }
        }
        if let Some(cluster) = &self.cluster {
            // The answer comes once the NATS server has everything this batch published, so
            // what a later request sends to the same uid or group arrives after it.
            cluster.flush_outgoing().await;
            cluster.sync().await;
        }
        result.not_online = not_online.into_iter().collect();
        result.failed = failed.into_iter().collect();
        Ok(result)
    }

    /// Pushes one entry: to this node's own connections first (one pass over them), then
    /// through the directory for the rest, one NATS message per gate that holds some.
    async fn push_many(
        &self,
        p: &Pushes,
        delivered: &mut usize,
        not_online: &mut BTreeSet<u64>,
        failed: &mut BTreeSet<u64>,
    ) {
        let here = self.local_agents_of(&p.uids);
        let mut elsewhere = Vec::new();
        for &uid in &p.uids {
            let took = here
                .get(&uid)
                .is_some_and(|agents| agents.iter().any(|a| a.write_encoded(&p.encoded).is_ok()));
            if took {
                *delivered += 1;
            } else {
                elsewhere.push(uid);
            }
        }
        let Some(cluster) = &self.cluster else {
            not_online.extend(elsewhere);
            return;
        };
        let pushed = cluster.push_uids(&elsewhere, &p.encoded).await;
        *delivered += pushed.sent.len();
        not_online.extend(pushed.not_online);
        failed.extend(pushed.failed.into_iter().map(|(uid, _)| uid));
    }

    /// This node's open connections of each of `uids`, in one pass over its connections.
    fn local_agents_of(&self, uids: &[u64]) -> HashMap<u64, Vec<Agent>> {
        let mut found: HashMap<u64, Vec<Agent>> = HashMap::new();
        if self.gates.is_empty() {
            return found;
        }
        let wanted: std::collections::HashSet<u64> = uids.iter().copied().collect();
        for gate in &self.gates {
            for agent in gate.agents() {
                if let Some(uid) = agent.uid().filter(|u| wanted.contains(u))
                    && agent.is_open()
                {
                    found.entry(uid).or_default().push(agent);
                }
            }
        }
        found
    }
}

/// `e` with the entry it is about (`push[2]: message: ...`).
fn at(e: ApiError, list: &str, i: usize) -> ApiError {
    ApiError::new(e.status, e.code, format!("{list}[{i}]: {}", e.reason))
}
