//! A push to many uids at once ([`Cluster::push_uids`]): each uid's holder looked up in the
//! directory, then one NATS message per gate naming all of its connections, not one per uid.

use std::collections::HashMap;

use futures_util::StreamExt;

use super::wire::{PushUids, ToGate};
use super::{Cluster, ClusterError};
use crate::codec::Encoded;

/// Directory look-ups in flight at once.
const LOOKUPS_IN_FLIGHT: usize = 64;

/// The most connections one gate message names (16 bytes each: 64 KiB of them, far below
/// NATS's 1 MiB `max_payload` with the payload beside them).
const TARGETS_PER_MESSAGE: usize = 4096;

/// What [`Cluster::push_uids`] did with each uid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushedMany {
    /// Uids whose gate was sent the message, in the order given.
    pub sent: Vec<u64>,
    /// Uids the directory has no holder for, in the order given.
    pub not_online: Vec<u64>,
    /// Uids whose holder could not be looked up (NATS away, a timeout), with why.
    pub failed: Vec<(u64, ClusterError)>,
}

impl Cluster {
    /// Queues `msg` on the connection of each of `uids`, wherever in the cluster they are:
    /// the directory is asked where each uid is (64 at a time), then every gate that holds
    /// some of them gets one NATS message naming all of its connections (up to 4,096 a
    /// message), so 10,000 uids over 5 gates cost 5 messages. A uid named twice gets it
    /// twice. Published in order with this node's other publishes: what a node sends a
    /// uid before or after this arrives before or after it.
    ///
    /// ```no_run
    /// # async fn run(cluster: longlink::cluster::Cluster, msg: longlink::Encoded) {
    /// let pushed = cluster.push_uids(&[1, 2, 3], &msg).await;
    /// println!("{} sent, {:?} offline", pushed.sent.len(), pushed.not_online);
    /// # }
    /// ```
    pub async fn push_uids(&self, uids: &[u64], msg: &Encoded) -> PushedMany {
        let mut lookups = futures_util::stream::iter(uids.to_vec())
            .map(|uid| async move { (uid, self.holder(uid).await) })
            .buffered(LOOKUPS_IN_FLIGHT);
        let mut pushed = PushedMany::default();
        let mut by_gate: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        // Gates in the order of their first uid: the messages go out in a stable order.
        let mut gates = Vec::new();
        while let Some((uid, holder)) = lookups.next().await {
            match holder {
                Ok(Some(h)) => {
                    pushed.sent.push(uid);
                    let targets = by_gate.entry(h.gate.clone()).or_default();
                    if targets.is_empty() {
                        gates.push(h.gate);
                    }
                    targets.push((h.conn, uid));
                }
                Ok(None) => pushed.not_online.push(uid),
                Err(e) => pushed.failed.push((uid, e)),
            }
        }
        for gate in gates {
            let targets = by_gate.remove(&gate).unwrap_or_default();
            for chunk in targets.chunks(TARGETS_PER_MESSAGE) {
                let cmd = ToGate::PushUids(PushUids {
                    targets: chunk.to_vec(),
                    payload: msg.bytes().clone(),
                });
                self.send_to_gate(&gate, &cmd);
            }
        }
        pushed
    }
}
