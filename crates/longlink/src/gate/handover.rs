//! The holder's side of a session handed over to another gate in steps (the cluster layer
//! drives them): a copy of the claimed session first, while it stays here; then it is let go
//! once the other gate has all of it, or, when the hand-over fails, it waits for its client
//! here again, as it did before.

use std::sync::Arc;

use bytes::Bytes;

use super::Shared;
use super::resume::Claimed;
use crate::agent::outbox::SessionCheck;
use longlink_wire::resume::RefuseReason;

/// A claimed session's copy for another gate: `(in_seq, the messages after last_seq, its
/// groups)`. Nothing is let go. `None` if the session has ended.
pub(crate) fn copy_for_handover(
    shared: &Shared,
    claimed: &Claimed,
    last_seq: u64,
) -> Option<(u64, Vec<Bytes>, Vec<String>)> {
    let agent = claimed.agent();
    let outbox = &agent.local()?.outbox;
    let (in_seq, kept) = outbox.hand_over_copy(claimed.socket(), last_seq)?;
    Some((in_seq, kept, shared.live.membership.groups_of(agent.id())))
}

/// The other gate (`to`) has the first `copied` messages of the claimed session: `Ok` lets
/// the session go (the agent leaves this gate without a close event: its life goes on on the
/// other gate, where a resume here with its tokens is sent) and gives its groups as they are
/// now, `Err` gives what reached it since (it stays). `None` if the session ended.
pub(crate) fn let_go_or_rest(
    shared: &Shared,
    claimed: &Claimed,
    copied: usize,
    to: &str,
) -> Option<Result<Vec<String>, Vec<Bytes>>> {
    let agent = claimed.agent();
    let rest = agent
        .local()?
        .outbox
        .hand_over_rest(claimed.socket(), copied)?;
    if let Err(rest) = rest {
        return Some(Err(rest));
    }
    let groups = shared.live.membership.groups_of(agent.id());
    shared.live.membership.forget(agent.id());
    shared.live.unregister(agent);
    if let Some(resumption) = &shared.services.resume {
        let now = shared.live.now_ms();
        resumption.gone(agent, to, now);
        resumption.ended(agent, None, now);
    }
    tracing::debug!(
        conn = agent.id(),
        kept = copied,
        "session handed over to another gate"
    );
    Some(Ok(groups))
}

/// A hand-over of the claimed session failed: the session waits for its client here again
/// (a new `resume_window`), its token as it was. Nothing if another socket has claimed it
/// meanwhile (that one serves it).
pub(crate) fn keep_after_failed_handover(shared: &Arc<Shared>, claimed: Claimed) {
    let (agent, socket, guard) = claimed.into_parts();
    let Some(local) = agent.local() else { return };
    if local.outbox.check_session(socket) == SessionCheck::TakenOver {
        return;
    }
    local.outbox.detach(socket);
    drop(guard);
    super::conn::keep_waiting(Arc::clone(shared), agent);
}

/// Another gate asks for the session of `token`: claims it.
pub(crate) async fn claim_for_handover(
    shared: &Shared,
    token: &str,
) -> Result<Claimed, RefuseReason> {
    let resumption = shared
        .services
        .resume
        .as_ref()
        .ok_or(RefuseReason::Unknown)?;
    let (agent, _) = resumption.take(token, shared.live.now_ms())?;
    let cluster = shared.services.cluster.as_deref();
    let (socket, guard) =
        super::resume::claim(&agent, cluster, shared.settings.close_timeout).await?;
    Ok(Claimed::new(agent, socket, guard))
}
