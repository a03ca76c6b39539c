//! The new gate's side of a hand-over: every step of taking a session from the gate that
//! holds it (the steps are in `cluster::wire::transfer`): the offer, its chunks in order,
//! and the commits, each a request answered within its own timeout (as long as the holder
//! may take). Any step that fails gives the hand-over up: the holder is asked to abort, and
//! keeps the session (the client is told to retry), unless its answer says it had let the
//! session go already (then it is taken). A holder nobody listens for is gone: the gates are
//! asked whether one of them took the session from it before; else it is gone with it
//! (`"unknown"`).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use longlink_wire::resume::RefuseReason;

use super::GateLink;
use super::handover::MOVED;
use super::transfer::MAX_CHUNK;
use crate::agent::Agent;
use crate::cluster::config::is_node_name;

/// How many times a hand-over follows a session to the gate it went to.
const MAX_HOPS: u32 = 3;
use crate::cluster::wire::{
    HandoverAnswer, HandoverReply, HandoverRequest, HandoverStep, decode_items,
};

impl GateLink {
    /// The new gate's side: every step of taking the session of `request` from `holder`
    /// for `agent`. Gives the session, with what reached it during the transfer, and its uid
    /// and groups as they were at the end; and where its group broadcasts were cut.
    pub(super) async fn fetch_session(
        &self,
        holder: &str,
        request: HandoverRequest,
        agent: &Agent,
    ) -> Result<(HandoverAnswer, Vec<(u64, u64)>), RefuseReason> {
        let (holder, transfer, mut offer) = self.ask(holder, request).await?;
        let subject = self.cluster.subjects().handover(&holder);
        let mut answer = None;
        let fetched = self
            .fetch_all(&subject, transfer, &mut offer, agent, &mut answer)
            .await;
        let Err(e) = fetched else {
            return fetched;
        };
        // The holder may have let the session go all the same (a step it served past this
        // gate's wait, an answer NATS lost): the abort's answer says so, after the step.
        let wait = self.commit_wait(answer.as_ref());
        let abort = HandoverStep::Abort { transfer };
        if let (Ok(done @ HandoverReply::Done { .. }), Some(answer)) =
            (self.step(&subject, abort, wait).await, answer)
        {
            tracing::info!(holder = %holder, "session hand-over: the holder had let the session go; taken");
            return Ok(finished(answer, done));
        }
        tracing::warn!(holder = %holder, error = %e, "session hand-over failed; the session stays on its gate, the client is told to retry");
        Err(e)
    }

    /// How long a commit may take at the holder: it waits for each backend to switch
    /// (`request_timeout` each, at worst), for what they wrote to land, and for what it
    /// sent to leave.
    fn commit_wait(&self, answer: Option<&HandoverAnswer>) -> Duration {
        let bindings = match answer {
            Some(HandoverAnswer::Taken { bindings, .. }) => bindings.len(),
            _ => 1,
        };
        self.cluster.config().request_timeout * (bindings as u32 + 3)
    }

    /// Asks `holder` for the session, and the gate it went to if it was handed over from
    /// there before (its client did not hear of it): the gate that offers it, the transfer
    /// and its first offer (length, chunk size).
    async fn ask(
        &self,
        holder: &str,
        request: HandoverRequest,
    ) -> Result<(String, u64, (u64, u64)), RefuseReason> {
        let mut holder = holder.to_owned();
        let mut asked_all = false;
        for _ in 0..=MAX_HOPS {
            let subject = self.cluster.subjects().handover(&holder);
            // The holder may wait for the task serving the session to stop before it offers.
            let wait = self.cluster.config().request_timeout * 3;
            let step = HandoverStep::Ask(request.clone());
            let reason = match self.step(&subject, step, wait).await {
                Ok(HandoverReply::Offer {
                    transfer,
                    len,
                    chunk,
                }) => return Ok((holder, transfer, (len, chunk))),
                Ok(HandoverReply::Refused(reason)) => reason,
                // The holder is gone: the session may have moved from it before it went (a
                // client whose `LL_Resumed` was lost); the gate that has it says so.
                Err(Step::Gone) if !std::mem::replace(&mut asked_all, true) => {
                    match self.ask_where_moved(&request.token).await {
                        Some(to) if to != self.cluster.node_id() => {
                            holder = to;
                            continue;
                        }
                        _ => return Err(RefuseReason::Unknown),
                    }
                }
                Ok(_) | Err(Step::Gone) => return Err(RefuseReason::Unknown),
                Err(Step::Failed(e)) => {
                    tracing::warn!(holder = %holder, error = %e, "session hand-over: no offer; the client is told to retry");
                    return Err(RefuseReason::Retry);
                }
            };
            match reason.strip_prefix(MOVED).filter(|to| is_node_name(to)) {
                Some(to) if to != self.cluster.node_id() => holder = to.to_owned(),
                _ => return Err(RefuseReason::parse(&reason).unwrap_or(RefuseReason::Unknown)),
            }
        }
        Err(RefuseReason::Unknown)
    }

    /// Asks every gate where the session of `token` went (its own gate being gone): the
    /// first answer within `request_timeout`, if any.
    async fn ask_where_moved(&self, token: &str) -> Option<String> {
        let nats = self.cluster.nats();
        let inbox = nats.new_inbox();
        let mut answers = nats.subscribe(inbox.clone()).await.ok()?;
        let subject = self.cluster.subjects().moved();
        let token = Bytes::from(token.to_owned());
        nats.publish_with_reply(subject, inbox, token).await.ok()?;
        let wait = self.cluster.config().request_timeout;
        let answer = tokio::time::timeout(wait, answers.next()).await.ok()??;
        let to = std::str::from_utf8(&answer.payload).ok()?;
        is_node_name(to).then(|| to.to_owned())
    }

    /// Fetches the first offer and every one after it, and commits. `agent` carries the
    /// session's uid from the first offer on: the holder points the uid's directory entry at
    /// it at the first commit, and pushes to the uid may come from then on.
    /// `answer` holds the session as fetched so far.
    async fn fetch_all(
        &self,
        subject: &str,
        transfer: u64,
        offer: &mut (u64, u64),
        agent: &Agent,
        answer: &mut Option<HandoverAnswer>,
    ) -> Result<(HandoverAnswer, Vec<(u64, u64)>), RefuseReason> {
        let first = self.fetch(subject, transfer, *offer).await?;
        let decoded = HandoverAnswer::decode(first).map_err(|e| {
            tracing::warn!(error = %e, "session hand-over: the session does not decode");
            RefuseReason::Unknown
        })?;
        let HandoverAnswer::Taken { uid, .. } = &decoded else {
            return Err(RefuseReason::Unknown);
        };
        agent.store_uid(*uid);
        let wait = self.commit_wait(Some(&decoded));
        let answer = answer.insert(decoded);
        loop {
            match self
                .step(subject, HandoverStep::Commit { transfer }, wait)
                .await
            {
                Ok(done @ HandoverReply::Done { .. }) => {
                    return Ok(finished(answer.clone(), done));
                }
                Ok(HandoverReply::Offer { len, chunk, .. }) => {
                    *offer = (len, chunk);
                    let more = self.fetch(subject, transfer, *offer).await?;
                    let more = decode_items(more).map_err(|_| RefuseReason::Retry)?;
                    if let HandoverAnswer::Taken { kept, .. } = answer {
                        kept.extend(more);
                    }
                }
                Ok(HandoverReply::Refused(reason)) => {
                    return Err(RefuseReason::parse(&reason).unwrap_or(RefuseReason::Retry));
                }
                Ok(HandoverReply::Chunk(_)) | Err(_) => return Err(RefuseReason::Retry),
            }
        }
    }

    /// Fetches one offer of `len` bytes, chunk by chunk.
    async fn fetch(
        &self,
        subject: &str,
        transfer: u64,
        (len, chunk): (u64, u64),
    ) -> Result<Bytes, RefuseReason> {
        let (Ok(len), Ok(chunk)) = (usize::try_from(len), usize::try_from(chunk)) else {
            return Err(RefuseReason::Unknown);
        };
        if chunk == 0 && len > 0 {
            return Err(RefuseReason::Unknown);
        }
        let wait = self.cluster.config().request_timeout;
        let mut whole = BytesMut::with_capacity(len.min(64 * MAX_CHUNK));
        let mut index = 0;
        while whole.len() < len {
            let want = chunk.min(len - whole.len());
            let step = HandoverStep::Fetch { transfer, index };
            match self.step(subject, step, wait).await {
                Ok(HandoverReply::Chunk(bytes)) if bytes.len() == want => {
                    whole.extend_from_slice(&bytes);
                }
                Ok(HandoverReply::Refused(reason)) => {
                    return Err(RefuseReason::parse(&reason).unwrap_or(RefuseReason::Retry));
                }
                _ => return Err(RefuseReason::Retry),
            }
            index += 1;
        }
        Ok(whole.freeze())
    }

    /// One step: a request to the holder within `wait`.
    async fn step(
        &self,
        subject: &str,
        step: HandoverStep,
        wait: Duration,
    ) -> Result<HandoverReply, Step> {
        // The client's own request timeout is `request_timeout`: a longer step (a claim, a
        // first commit) carries its own.
        let request = async_nats::Request::new()
            .payload(step.encode())
            .timeout(Some(wait));
        let asked = self
            .cluster
            .nats()
            .send_request(subject.to_owned(), request);
        let reply = match tokio::time::timeout(wait, asked).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Err(Step::Gone);
            }
            Ok(Err(e)) => return Err(Step::Failed(e.to_string())),
            Err(_) => return Err(Step::Failed(format!("no answer within {wait:?}"))),
        };
        HandoverReply::decode(reply.payload).map_err(|e| Step::Failed(e.to_string()))
    }
}

/// The session as fetched, with its uid, login time and groups as the holder's `done` gives
/// them (as they were when it let the session go), and where its group broadcasts were cut.
fn finished(mut answer: HandoverAnswer, done: HandoverReply) -> (HandoverAnswer, Vec<(u64, u64)>) {
    let HandoverReply::Done {
        uid: now_uid,
        at: now_at,
        groups: now_groups,
        marks,
    } = done
    else {
        return (answer, Vec::new());
    };
    if let HandoverAnswer::Taken {
        uid, at, groups, ..
    } = &mut answer
    {
        (*uid, *at, *groups) = (now_uid, now_at, now_groups);
    }
    (answer, marks)
}

/// Why a step got no answer.
enum Step {
    /// Nobody listens on the holder's subject: the gate is gone.
    Gone,
    /// A timeout, or NATS failed.
    Failed(String),
}
