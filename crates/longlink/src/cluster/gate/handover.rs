//! Resumable sessions moving between gates: a client whose session this gate holds resumed
//! on another gate (its token names this one), or the other way round.
//!
//! The new gate asks the holder (`P.handover.<holder>`). The holder claims the session (its
//! socket's task, if any, stops), tells each backend bound to the connection to reach the
//! new gate's connection from now on (the backend's agent goes on: no close event, no new
//! one) and waits for their answers, then for whatever they wrote before they switched to
//! reach it (a barrier through its own command subject), and answers with the session: its
//! numbering, the messages the client has not acknowledged, its uid, groups and backends.
//! The new gate claims the uid in the directory under its new connection, joins the groups,
//! keeps the bindings, and replays.
//!
//! A holder that is gone (a gate that died or stopped) does not answer: the resume is
//! refused (`"unknown"`) and the client logs in afresh. If NATS fails in the middle, the
//! session is lost the same way.

use std::sync::atomic::{AtomicU64, Ordering};

use longlink_wire::resume::RefuseReason;

use super::{GateLink, lock};
use crate::agent::Agent;
use crate::cluster::wire::{HandoverAnswer, HandoverRequest, ToBackend, ToGate};
use crate::gate::link::Taken;
use crate::gate::resume::{claim_for_handover, finish_handover};

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
        let c = &self.cluster;
        let request = HandoverRequest {
            token: token.to_owned(),
            last_seq,
            to_gate: c.node_id().to_owned(),
            to_conn: agent.id(),
            transport: agent.transport().code(),
            local: agent.local_addr().to_string(),
            remote: agent.remote_addr().to_string(),
        };
        // The holder waits for each backend (request_timeout each, at worst) before it answers.
        let timeout = c.config().request_timeout * 3;
        let subject = c.subjects().handover(holder);
        let asked = c.nats().request(subject, request.encode());
        let reply = match tokio::time::timeout(timeout, asked).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::debug!(holder, error = %e, "session hand-over: no answer");
                return Err(RefuseReason::Unknown);
            }
            Err(_) => return Err(RefuseReason::Unknown),
        };
        match HandoverAnswer::decode(reply.payload) {
            Ok(HandoverAnswer::Taken {
                in_seq,
                uid,
                at,
                groups,
                bindings,
                kept,
            }) => {
                let bound = bindings
                    .into_iter()
                    .map(|(ty, node)| (ty.into(), node.into()))
                    .collect();
                lock(&self.bindings).insert(agent.id(), bound);
                if uid != 0 {
                    agent.store_uid(uid);
                    self.bind_uid(agent, uid, at);
                }
                if let Some(shared) = self.gate() {
                    for group in &groups {
                        shared.live.membership.join_token(agent.id(), group);
                    }
                }
                Ok(Taken { in_seq, kept })
            }
            Ok(HandoverAnswer::Refused(reason)) => {
                Err(RefuseReason::parse(&reason).unwrap_or(RefuseReason::Unknown))
            }
            Err(e) => {
                tracing::warn!(holder, error = %e, "session hand-over: bad answer");
                Err(RefuseReason::Unknown)
            }
        }
    }

    /// The holder's side: serves one request for a session.
    pub(super) async fn hand_over(&self, msg: async_nats::Message) {
        let Some(reply) = msg.reply else {
            return;
        };
        let answer = match HandoverRequest::decode(msg.payload) {
            Ok(request) => self.give(request).await,
            Err(e) => {
                tracing::warn!(error = %e, "bad session hand-over request");
                HandoverAnswer::Refused(RefuseReason::Unknown.as_str().into())
            }
        };
        self.cluster.send(reply.to_string(), None, answer.encode());
    }

    async fn give(&self, request: HandoverRequest) -> HandoverAnswer {
        let refused = |why: RefuseReason| HandoverAnswer::Refused(why.as_str().into());
        let Some(shared) = self.gate() else {
            return refused(RefuseReason::Unknown);
        };
        let claimed = match claim_for_handover(&shared, &request.token).await {
            Ok(claimed) => claimed,
            Err(why) => return refused(why),
        };
        let conn = claimed.agent().id();
        let bound = lock(&self.bindings).remove(&conn).unwrap_or_default();
        let c = &self.cluster;
        // What this gate forwarded for the connection goes first (the backends handle their
        // subject in order), then the switch.
        c.flush_outgoing().await;
        for node in bound.values() {
            let rebind = ToBackend::Rebind {
                gate: c.node_id().to_owned(),
                conn,
                to_gate: request.to_gate.clone(),
                to_conn: request.to_conn,
                transport: request.transport,
                local: request.local.clone(),
                remote: request.remote.clone(),
            };
            let asked = c.nats().request(c.subjects().node(node), rebind.encode());
            if tokio::time::timeout(c.config().request_timeout, asked)
                .await
                .is_err()
            {
                tracing::warn!(node = %node, conn, "backend did not confirm the move; it may still write to this gate");
            }
        }
        // The backends wrote to this gate until they switched: let that land first.
        self.barrier().await;
        let claim = lock(&self.claims).remove(&conn);
        let Some((in_seq, kept, groups)) = finish_handover(&shared, claimed, request.last_seq)
        else {
            return refused(RefuseReason::Unknown);
        };
        let (uid, at) = claim.unwrap_or((0, 0));
        HandoverAnswer::Taken {
            in_seq,
            uid,
            at,
            groups,
            bindings: bound
                .into_iter()
                .map(|(ty, node)| (ty.to_string(), node.to_string()))
                .collect(),
            kept,
        }
    }

    /// Returns once everything other nodes sent to this gate before now has been applied:
    /// a barrier sent to itself comes back through the same subscription, after them.
    async fn barrier(&self) {
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
