//! Resumable sessions moving between gates: a client whose session this gate holds resumed on
//! another gate (its token names this one), or the other way round.
//!
//! The new gate asks the holder (`P.handover.<holder>`). The holder claims the session (its
//! socket's task, if any, stops) and offers a copy of it (its numbering, the messages the
//! client has not acknowledged, its uid, groups and backends), which the new gate fetches in
//! chunks of any number (`transfer`: the steps and why). At the new gate's first commit the
//! holder points the uid's directory entry at the new gate's connection (which carries the uid
//! from the first offer on), so that a push to the uid looked up from then on goes there
//! (`moved`: one that still comes here is sent on), then tells each backend bound to the
//! connection to reach the new gate's connection from now on (the backend's agent goes on: no
//! close event, no new one), waits for their answers, then for whatever they wrote before they
//! switched to reach it (a barrier through its own command subject); what reached the session
//! since the copy is offered in turn, and the holder lets the session go only once the new gate
//! has all of it. The new gate claims the uid in the directory under its new connection, joins
//! the groups, keeps the bindings, and replays.
//!
//! A hand-over that fails before the end (a step unanswered within `request_timeout`, a chunk
//! lost, NATS away) leaves the session with the holder, waiting for its client, and the client
//! hears `"retry"` and resumes again. Before the first commit nothing but the claim has
//! changed; after it the backends are switched back and the directory entry points here again,
//! and what they (or a push to the uid) wrote to the new gate in between (the time of one small
//! offer, at most) is lost. A holder that is gone (a gate that died or stopped: nobody listens
//! on its subject) takes its sessions with it: the resume is refused (`"unknown"`) and the
//! client logs in afresh. The one step that can still lose a session is the last answer
//! (`Done`): lost in NATS after the holder let go, the session is on neither gate.
//!
//! A backend node that stops meanwhile moves the connection's binding to another node of its
//! type: the hand-over and the move wait for each other (the connection is parked on both
//! gates; see `moving`).

use longlink_wire::resume::RefuseReason;

use super::transfer::{Transfer, chunk_size};
use super::{GateLink, lock};
use crate::agent::Agent;
use crate::cluster::config::is_node_name;
use crate::cluster::wire::{
    HandoverAnswer, HandoverReply, HandoverRequest, HandoverStep, ToBackend, ToGate,
};
use crate::gate::handover::{claim_for_handover, hand_off_here};
use crate::gate::handover::{copy_for_handover, keep_after_failed_handover};
use crate::gate::link::Taken;

/// A refusal that says where the session went: `"moved:<gate>"` (it was handed over from
/// the gate asked, and its client may not know): the new gate asks that one.
pub(super) const MOVED: &str = "moved:";

/// Whether a resume token names its gate as a node id can (and its session as 48 hex digits):
/// nothing else goes into a subject.
fn well_formed(holder: &str, token: &str) -> bool {
    let secret = token.rsplit_once('.').map_or("", |(_, s)| s);
    is_node_name(holder) && secret.len() == 48 && secret.bytes().all(|b| b.is_ascii_hexdigit())
}

impl GateLink {
    /// The new gate's side: asks `holder` for the session of `token`; on success the
    /// cluster's state of the session (backends, uid, groups) is `agent`'s.
    pub(super) async fn take(
        &self,
        holder: &str,
        token: &str,
        last_seq: u64,
        agent: &Agent,
    ) -> Result<Taken, RefuseReason> {
        if !well_formed(holder, token) {
            tracing::debug!(len = token.len(), "resume token not well formed: refused");
            return Err(RefuseReason::Unknown);
        }
        let stage = self.feed.stage(agent.id());
        // A stopping backend node may ask to move it before it is bound here (`moving`).
        self.park(agent.id());
        let request = HandoverRequest {
            token: token.to_owned(),
            last_seq,
            to_gate: self.cluster.node_id().to_owned(),
            to_conn: agent.id(),
            transport: agent.transport().code(),
            local: agent.local_addr().to_string(),
            remote: agent.remote_addr().to_string(),
            after: stage.after.clone(),
        };
        let answer = match self.fetch_session(holder, request, agent).await {
            Ok((
                HandoverAnswer::Taken {
                    in_seq,
                    uid,
                    at,
                    groups,
                    bindings,
                    kept,
                    user_data,
                },
                marks,
            )) => (in_seq, uid, at, groups, bindings, kept, user_data, marks),
            Ok((HandoverAnswer::Refused(_), _)) => {
                self.feed.unstage(stage);
                self.unpark(agent.id(), false);
                return Err(RefuseReason::Unknown);
            }
            Err(why) => {
                self.feed.unstage(stage);
                self.unpark(agent.id(), false);
                return Err(why);
            }
        };
        let (in_seq, uid, at, groups, bindings, kept, user_data, marks) = answer;
        let bound = bindings
            .into_iter()
            .map(|(ty, node)| (ty.into(), node.into()))
            .collect();
        lock(&self.bindings).insert(agent.id(), bound);
        self.unpark(agent.id(), true);
        if uid != 0 {
            agent.store_uid(uid);
            self.bind_uid(agent, uid, at);
        }
        match self.gate() {
            Some(shared) => {
                let membership = &shared.live.membership;
                let join = |group: &str| membership.join_token(agent.id(), group);
                let here = || membership.groups_of(agent.id());
                self.feed.taken(stage, agent, &groups, &marks, join, here);
            }
            None => self.feed.unstage(stage),
        }
        Ok(Taken {
            in_seq,
            kept,
            user_data,
        })
    }

    /// The holder's side: serves one step of a hand-over.
    pub(super) async fn hand_over(&self, msg: async_nats::Message) {
        let step = HandoverStep::decode(msg.payload);
        let answer = match step {
            Ok(HandoverStep::Ask(request)) => self.give(request).await,
            Ok(HandoverStep::Fetch { transfer, index }) => self.chunk(transfer, index).await,
            Ok(HandoverStep::Commit { transfer }) => self.commit(transfer).await,
            Ok(HandoverStep::Abort { transfer }) => {
                self.abort(transfer, "the new gate gave up").await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "bad session hand-over request");
                HandoverReply::Refused(RefuseReason::Unknown.as_str().into())
            }
        };
        if let Some(reply) = msg.reply {
            self.cluster.send(reply.to_string(), None, answer.encode());
        }
    }

    /// An `Ask`: claims the session and offers a copy of it; nothing else changes yet. The
    /// moves of its backend bindings under way end first, and those asked for from now on
    /// wait until the hand-over ends (`moving`).
    async fn give(&self, request: HandoverRequest) -> HandoverReply {
        let refused = |why: RefuseReason| HandoverReply::Refused(why.as_str().into());
        let Some(shared) = self.gate() else {
            return refused(RefuseReason::Unknown);
        };
        let claimed = match claim_for_handover(&shared, &request.token).await {
            Ok(claimed) => claimed,
            Err(RefuseReason::Unknown) => {
                let now = shared.live.now_ms();
                let resumption = shared.services.resume.as_ref();
                return match resumption.and_then(|r| r.gone_to(&request.token, now)) {
                    Some(to) if to != request.to_gate => {
                        HandoverReply::Refused(format!("{MOVED}{to}"))
                    }
                    _ => refused(RefuseReason::Unknown),
                };
            }
            Err(why) => return refused(why),
        };
        let conn = claimed.agent().id();
        if !self.park_after_moves(conn).await {
            keep_after_failed_handover(&shared, claimed);
            return refused(RefuseReason::Retry);
        }
        let copy = copy_for_handover(&shared, &claimed, request.last_seq);
        let Some((in_seq, kept, groups)) = copy else {
            self.unpark(conn, true);
            keep_after_failed_handover(&shared, claimed);
            return refused(RefuseReason::Unknown);
        };
        // The modules here let the session go (after its messages here); what they keep of
        // it in its user data moves with it.
        let wait = self.cluster.config().request_timeout;
        let user_data = hand_off_here(&shared, &claimed, wait).await;
        let (uid, at) = lock(&self.claims).get(&conn).copied().unwrap_or((0, 0));
        let bindings = lock(&self.bindings)
            .get(&conn)
            .map(|bound| {
                bound
                    .iter()
                    .map(|(ty, node)| (ty.to_string(), node.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut transfer = Transfer::new(claimed, request);
        transfer.copied = kept.len();
        transfer.offer = HandoverAnswer::Taken {
            in_seq,
            uid,
            at,
            groups,
            bindings,
            kept,
            user_data,
        }
        .encode();
        self.offer(transfer, chunk_size(&self.cluster))
    }

    /// The first `Commit`: the session's backends reach the new gate from now on; what they
    /// wrote here before they switched has landed when this returns.
    pub(super) async fn switch(&self, conn: u64, request: &HandoverRequest) -> super::Bound {
        let bound = lock(&self.bindings).remove(&conn).unwrap_or_default();
        let c = &self.cluster;
        // What this gate forwarded for the connection goes first (the backends handle their
        // subject in order), then the switch.
        c.flush_outgoing().await;
        let to = (request.to_gate.as_str(), request.to_conn);
        let socket = (
            request.transport,
            request.local.as_str(),
            request.remote.as_str(),
        );
        self.rebind(&bound, (c.node_id(), conn), to, socket).await;
        // The backends wrote to this gate until they switched: let that land first.
        self.barrier().await;
        bound
    }

    /// Tells each backend in `bound` that the connection `from` is `to` from now on (with
    /// the client's socket `(transport, local, remote)` there), and waits for their answers.
    pub(super) async fn rebind(
        &self,
        bound: &super::Bound,
        from: (&str, u64),
        to: (&str, u64),
        (transport, local, remote): (u8, &str, &str),
    ) {
        let c = &self.cluster;
        for node in bound.values() {
            let rebind = ToBackend::Rebind {
                gate: from.0.to_owned(),
                conn: from.1,
                to_gate: to.0.to_owned(),
                to_conn: to.1,
                transport,
                local: local.to_owned(),
                remote: remote.to_owned(),
            };
            let asked = c.nats().request(c.subjects().node(node), rebind.encode());
            if !matches!(
                tokio::time::timeout(c.config().request_timeout, asked).await,
                Ok(Ok(_))
            ) {
                tracing::warn!(node = %node, conn = from.1, to_gate = to.0, remote, "backend did not confirm the move; it may still write to the former gate");
            }
        }
    }

    /// Returns once everything other nodes sent to this gate before now has been applied:
    /// a barrier sent to itself comes back through the same subscription, after them.
    async fn barrier(&self) {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let (done, back) = tokio::sync::oneshot::channel();
        lock(&self.barriers).insert(id, done);
        self.cluster
            .send_to_gate(self.cluster.node_id(), &ToGate::Barrier { id });
        if tokio::time::timeout(self.cluster.config().request_timeout, back)
            .await
            .is_err()
        {
            lock(&self.barriers).remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn only_node_names_and_hex_sessions_reach_a_subject() {
        let secret = "0123456789abcdef".repeat(3);
        assert!(well_formed("gate-1", &format!("gate-1.{secret}")));
        let long = "a".repeat(5000);
        assert!(!well_formed(&long, &format!("{long}.{secret}")));
        for bad in ["", "g.1", "g 1", "g*", "g>", "é", "g\r\nPUB x 1"] {
            assert!(!well_formed(bad, &format!("{bad}.{secret}")), "{bad:?}");
        }
        assert!(!well_formed("g1", "g1.abc"));
        assert!(!well_formed("g1", &format!("g1.{}", "z".repeat(48))));
    }
}
