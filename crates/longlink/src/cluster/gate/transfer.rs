//! A session's hand-over in chunks (the steps are in `cluster::wire::transfer`, with why
//! they are requests over core NATS), at the holder: its table of transfers under way, the
//! steps it serves, and what it does when one fails (the new gate's side is `fetch`).
//!
//! The holder keeps the session claimed while the new gate fetches; a transfer whose new gate
//! says nothing for twice `request_timeout` is given up, as is one aborted: the backends
//! are switched back (if the first commit had switched them) and the session waits here for
//! its client again. A transfer that ended with the session let go keeps its last answer
//! (`Done`) for a while: an abort that comes after it (the new gate's wait ran out while the
//! holder was still at it, or NATS lost the answer) is answered with it, so that the new gate
//! learns the session is its own instead of dropping it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use longlink_wire::resume::RefuseReason;

use super::{Bound, GateLink, lock};
use crate::cluster::Cluster;
use crate::cluster::wire::{HandoverReply, HandoverRequest, encode_items};
use crate::gate::handover::{keep_after_failed_handover, let_go_or_rest, take_back_here};
use crate::gate::resume::Claimed;

/// The largest chunk, in bytes: well under NATS's default `max_payload` (1 MiB).
pub(super) const MAX_CHUNK: usize = 256 * 1024;

/// How many times a commit may find that messages reached the session meanwhile (each time
/// they are offered too) before the hand-over is given up (a session written to faster than
/// it moves).
const MAX_ROUNDS: u32 = 16;

/// A session being handed over, held by this gate until the new gate has all of it.
pub(super) struct Transfer {
    claimed: Claimed,
    /// The new gate's request: where the session goes.
    request: HandoverRequest,
    /// The connection's backends, once switched to the new gate (at the first commit).
    bound: Option<Bound>,
    /// Where the session was cut off its group broadcasts (at the first commit).
    marks: Vec<(u64, u64)>,
    /// What the new gate fetches now.
    pub(super) offer: Bytes,
    chunk: usize,
    /// How many of the session's messages have been offered.
    pub(super) copied: usize,
    rounds: u32,
    /// The new gate's last step.
    last: Instant,
}

/// How many `request_timeout`s the answer of a transfer that let its session go is kept.
const KEEP_DONE: u32 = 20;

/// The transfers under way, by id (with the session's agent id), and the last answers of
/// those that let their session go.
#[derive(Default)]
pub(super) struct Transfers {
    going: HashMap<u64, (u64, Slot)>,
    done: HashMap<u64, HandoverReply>,
    /// `(when it is forgotten, id)`, oldest first.
    done_order: VecDeque<(Instant, u64)>,
}

impl Transfers {
    /// Transfer `id` let its session go with `done`: kept for `keep`.
    fn finish(&mut self, id: u64, done: HandoverReply, keep: Duration) {
        self.going.remove(&id);
        let now = Instant::now();
        while let Some(&(until, old)) = self.done_order.front() {
            if until > now {
                break;
            }
            self.done_order.pop_front();
            self.done.remove(&old);
        }
        self.done.insert(id, done);
        self.done_order.push_back((now + keep, id));
    }
}

/// One transfer's place in the table: its steps take turns (a commit that switches the
/// backends waits on NATS; an abort or the watch waits for it); `None` once it has ended.
pub(super) type Slot = Arc<tokio::sync::Mutex<Option<Transfer>>>;

impl Transfer {
    pub(super) fn new(claimed: Claimed, request: HandoverRequest) -> Transfer {
        Transfer {
            claimed,
            request,
            bound: None,
            marks: Vec::new(),
            offer: Bytes::new(),
            chunk: MAX_CHUNK,
            copied: 0,
            rounds: 0,
            last: Instant::now(),
        }
    }

    fn offered(&self, transfer: u64) -> HandoverReply {
        HandoverReply::Offer {
            transfer,
            len: self.offer.len() as u64,
            chunk: self.chunk as u64,
        }
    }
}

/// A session let go: its groups, and the uid it had here with its login time (0s: none).
struct LetGo {
    groups: Vec<String>,
    uid: u64,
    at: u64,
}

/// The chunk size for this cluster's NATS server: at most half its `max_payload`.
pub(super) fn chunk_size(cluster: &Cluster) -> usize {
    let max = cluster.nats().server_info().max_payload;
    (max / 2).clamp(4 * 1024, MAX_CHUNK)
}

fn retry() -> HandoverReply {
    HandoverReply::Refused(RefuseReason::Retry.as_str().into())
}

impl GateLink {
    /// Keeps `transfer` for the new gate's next steps and gives its first offer; watches
    /// that the steps keep coming.
    pub(super) fn offer(&self, mut transfer: Transfer, chunk: usize) -> HandoverReply {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        transfer.chunk = chunk;
        let reply = transfer.offered(id);
        let conn = transfer.claimed.agent().id();
        let slot = Arc::new(tokio::sync::Mutex::new(Some(transfer)));
        lock(&self.transfers).going.insert(id, (conn, slot));
        if let Some(link) = self.me.upgrade() {
            tokio::spawn(async move { link.watch(id).await });
        }
        reply
    }

    fn slot(&self, transfer: u64) -> Option<Slot> {
        lock(&self.transfers)
            .going
            .get(&transfer)
            .map(|(_, slot)| Arc::clone(slot))
    }

    /// Gives up every transfer of the session of agent `conn` (a new resume claims it).
    pub(super) async fn give_up_transfers_of(&self, conn: u64) {
        let ids: Vec<u64> = lock(&self.transfers)
            .going
            .iter()
            .filter(|(_, (of, _))| *of == conn)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.abort(id, "the client resumed again").await;
        }
    }

    /// A `Fetch`: chunk `index` of the current offer.
    pub(super) async fn chunk(&self, transfer: u64, index: u64) -> HandoverReply {
        let Some(slot) = self.slot(transfer) else {
            return retry();
        };
        let mut held = slot.lock().await;
        let Some(t) = held.as_mut() else {
            return retry();
        };
        t.last = Instant::now();
        let start = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_mul(t.chunk))
            .filter(|&s| s < t.offer.len());
        match start {
            Some(start) => {
                let end = (start + t.chunk).min(t.offer.len());
                HandoverReply::Chunk(t.offer.slice(start..end))
            }
            None => HandoverReply::Refused(RefuseReason::Unknown.as_str().into()),
        }
    }

    /// A `Commit`: the first switches the session's backends to the new gate; then the
    /// session is let go if nothing reached it since the last offer, else what did is
    /// offered.
    pub(super) async fn commit(&self, transfer: u64) -> HandoverReply {
        let (Some(shared), Some(slot)) = (self.gate(), self.slot(transfer)) else {
            return self.outcome(transfer);
        };
        let mut held = slot.lock().await;
        let Some(t) = held.as_mut() else {
            return self.outcome(transfer);
        };
        let to = (t.request.to_gate.clone(), t.request.to_conn);
        if t.bound.is_none() {
            let agent = t.claimed.agent();
            let (conn, wait) = (agent.id(), self.cluster.config().request_timeout);
            let marks = self.feed.cut(agent, &t.request.after, wait).await;
            t.marks = marks.into_iter().collect();
            // Before the switch: pushes that looked the uid up before this land here ahead
            // of the switch's barrier, those after it go to the new gate.
            let (uid, at) = lock(&self.claims).get(&conn).copied().unwrap_or((0, 0));
            self.repoint(uid, at, conn, (&to.0, to.1)).await;
            t.bound = Some(self.switch(conn, &t.request).await);
        }
        t.last = Instant::now();
        let failed = match self.let_go_or_rest(&shared, t) {
            Some(Ok(LetGo { groups, uid, at })) => {
                let conn = t.claimed.agent().id();
                let marks = std::mem::take(&mut t.marks);
                *held = None;
                self.feed.gone(conn);
                // The stopping nodes ask the new gate for the moves that waited.
                self.unpark(conn, false);
                let done = HandoverReply::Done {
                    uid,
                    at,
                    groups,
                    marks,
                };
                let keep = self.cluster.config().request_timeout * KEEP_DONE;
                lock(&self.transfers).finish(transfer, done.clone(), keep);
                return done;
            }
            Some(Err(rest)) if t.rounds < MAX_ROUNDS => {
                t.rounds += 1;
                t.copied += rest.len();
                t.offer = encode_items(&rest);
                return t.offered(transfer);
            }
            Some(Err(_)) => "messages kept coming faster than the session moved",
            None => "the session ended or was resumed elsewhere",
        };
        let t = held.take();
        lock(&self.transfers).going.remove(&transfer);
        if let Some(t) = t {
            self.give_back(t, failed).await;
        }
        retry()
    }

    /// The session of `t` is let go if nothing reached it since the last offer, else what
    /// did is given; `None` if it ended. Commands from other nodes wait meanwhile (the
    /// commands' lock): one applied before reaches the session here (and is offered), one
    /// applied after is sent on to the new gate (`moved`); none finds the session gone from
    /// here with its new gate not known yet.
    fn let_go_or_rest(
        &self,
        shared: &crate::gate::Shared,
        t: &Transfer,
    ) -> Option<Result<LetGo, Vec<Bytes>>> {
        let _applying = lock(&self.commands);
        let groups = match let_go_or_rest(shared, &t.claimed, t.copied, &t.request.to_gate)? {
            Ok(groups) => groups,
            Err(rest) => return Some(Err(rest)),
        };
        let conn = t.claimed.agent().id();
        let (uid, at) = lock(&self.claims).remove(&conn).unwrap_or((0, 0));
        let to = (t.request.to_gate.as_str(), t.request.to_conn);
        self.went(conn, uid, to);
        Some(Ok(LetGo { groups, uid, at }))
    }

    /// How transfer `transfer` ended, for a step that comes after its end: `Done` again if
    /// it let its session go (lately), else `"retry"` (the session stayed here, or nothing is
    /// known of it).
    pub(super) fn outcome(&self, transfer: u64) -> HandoverReply {
        lock(&self.transfers)
            .done
            .get(&transfer)
            .cloned()
            .unwrap_or_else(retry)
    }

    /// Gives up transfer `transfer`, if it is still under way (after the step being
    /// served, if one is): the session stays here.
    pub(super) async fn abort(&self, transfer: u64, why: &str) {
        let Some(slot) = self.slot(transfer) else {
            return;
        };
        let taken = slot.lock().await.take();
        lock(&self.transfers).going.remove(&transfer);
        if let Some(t) = taken {
            self.give_back(t, why).await;
        }
    }

    /// Gives up a transfer once the new gate has not taken a step for twice
    /// `request_timeout` (looked at every `request_timeout`; a step being served counts as
    /// one), or when the gate stops.
    async fn watch(&self, transfer: u64) {
        let every = self.cluster.config().request_timeout;
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => {}
                _ = tokio::time::sleep(every) => {}
            }
            let Some(slot) = self.slot(transfer) else {
                return;
            };
            let quiet = match slot.try_lock() {
                Err(_) => false,
                Ok(held) => match held.as_ref() {
                    None => return,
                    Some(t) => t.last.elapsed() >= every * 2 || self.stop.is_cancelled(),
                },
            };
            if quiet {
                self.abort(transfer, "the new gate went quiet").await;
                return;
            }
        }
    }

    /// A hand-over failed: the backends are switched back to this gate (if they had been
    /// switched), and the session waits for its client here again.
    async fn give_back(&self, t: Transfer, why: &str) {
        let agent = t.claimed.agent().clone();
        let (conn, to_gate) = (agent.id(), t.request.to_gate.as_str());
        crate::agent::logged::conn_event!(
            WARN,
            agent,
            to_gate,
            reason = why,
            "session hand-over failed; the session stays here"
        );
        if let Some(bound) = t.bound {
            let local = agent.local_addr().to_string();
            let remote = agent.remote_addr().to_string();
            let socket = (agent.transport().code(), local.as_str(), remote.as_str());
            let here = (self.cluster.node_id(), conn);
            let there = (to_gate, t.request.to_conn);
            self.rebind(&bound, there, here, socket).await;
            lock(&self.bindings).insert(conn, bound);
            // The first commit pointed the uid at the new gate: back here.
            let claim = lock(&self.claims).get(&conn).copied();
            if let Some((uid, at)) = claim {
                self.bind_uid(&agent, uid, at);
            }
        }
        self.feed.uncut(&agent);
        self.unpark(conn, true);
        if let Some(shared) = self.gate() {
            take_back_here(&shared, &agent).await;
            keep_after_failed_handover(&shared, t.claimed);
        }
    }
}
