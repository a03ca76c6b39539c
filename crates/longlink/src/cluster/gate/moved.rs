//! Where the sessions this gate handed over went, for what other nodes still send here.
//!
//! The holder points a moving session's uid at the new gate in the directory at the
//! hand-over's first commit (`repoint`), before it lets the session go: a push that looks the
//! uid up from then on goes to the new gate. A push that looked it up just before, or a
//! write of a backend that had not switched yet, can still reach this gate after the session
//! left; it is sent on to the new gate's connection instead of being dropped (and on again,
//! if the session has moved once more). Entries are kept for `directory_ttl`, as long as a
//! stale directory entry can live.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;

use super::{GateLink, lock};
use crate::cluster::ClusterError;
use crate::cluster::subjects::uid_key;
use crate::cluster::wire::{Holder, ToGate};

/// A session handed over: the new gate, its connection there, and the uid it had.
#[derive(Clone)]
struct Went {
    gate: String,
    conn: u64,
    uid: u64,
}

/// The sessions this gate handed over lately, by their connection here.
#[derive(Default)]
pub(super) struct Moved {
    by_conn: HashMap<u64, Went>,
    /// `(when it is forgotten, conn)`, oldest first.
    order: VecDeque<(Instant, u64)>,
}

impl Moved {
    /// The session of `conn` (logged in as `uid`, 0 for none) is `to` from now on; kept for
    /// `keep`.
    pub(super) fn insert(&mut self, conn: u64, uid: u64, to: (&str, u64), keep: Duration) {
        let now = Instant::now();
        while let Some(&(until, old)) = self.order.front() {
            if until > now {
                break;
            }
            self.order.pop_front();
            self.by_conn.remove(&old);
        }
        let went = Went {
            gate: to.0.to_owned(),
            conn: to.1,
            uid,
        };
        self.by_conn.insert(conn, went);
        self.order.push_back((now + keep, conn));
    }
}

impl GateLink {
    /// A command for connection `conn` (for `uid`, if given), which is not here: sent on,
    /// as `readdress` makes it for the connection there, to where its session went if this
    /// gate handed it over lately (with that uid).
    pub(super) fn send_after(
        &self,
        conn: u64,
        uid: Option<u64>,
        readdress: impl FnOnce(u64) -> ToGate,
    ) {
        let Some(went) = lock(&self.moved).by_conn.get(&conn).cloned() else {
            return;
        };
        if uid.is_some_and(|uid| uid != went.uid) {
            return;
        }
        tracing::debug!(conn, to_gate = %went.gate, to_conn = went.conn, "command for a session handed over: sent on");
        self.cluster.send_to_gate(&went.gate, &readdress(went.conn));
    }

    /// The session of `conn` was let go to `to`: what still comes here for it goes there.
    pub(super) fn went(&self, conn: u64, uid: u64, to: (&str, u64)) {
        let keep = self.cluster.config().directory_ttl;
        lock(&self.moved).insert(conn, uid, to, keep);
    }

    /// At a hand-over's first commit: the directory entry of `uid` names this gate's `conn`
    /// (logged in at `at`) no more but `to`, unless it names another connection already.
    /// Bounded by `request_timeout`; a failure leaves the entry to the new gate's own claim.
    pub(super) async fn repoint(&self, uid: u64, at: u64, conn: u64, to: (&str, u64)) {
        if uid == 0 {
            return;
        }
        let wait = self.cluster.config().request_timeout;
        match tokio::time::timeout(wait, self.try_repoint(uid, at, conn, to)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(uid, error = %e, "directory entry not moved with its session")
            }
            Err(_) => tracing::debug!(uid, "directory entry not moved with its session in time"),
        }
    }

    async fn try_repoint(
        &self,
        uid: u64,
        at: u64,
        conn: u64,
        (gate, to_conn): (&str, u64),
    ) -> Result<(), ClusterError> {
        let store = self.cluster.directory().await?;
        let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(e.to_string());
        let key = uid_key(uid);
        let Some(entry) = store.entry(key.clone()).await.map_err(|e| nats(&e))? else {
            return Ok(());
        };
        let here = entry.operation == kv::Operation::Put
            && Holder::decode(&entry.value).is_some_and(|h| h.same_conn(&self.me(conn, at)));
        if here {
            // The new gate's start is not known here (0: any); its own claim, once the
            // session is there, names it.
            let there = Holder {
                gate: gate.to_owned(),
                conn: to_conn,
                at,
                incarnation: 0,
            };
            self.cluster
                .put_lasting(&key, there.encode(), entry.revision)
                .await?;
        }
        Ok(())
    }
}
