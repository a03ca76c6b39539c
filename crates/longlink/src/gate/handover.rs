//! The holder's side of a session handed over to another gate in steps (the cluster layer
//! drives them): a copy of the claimed session first, while it stays here; then it is let go
//! once the other gate has all of it, or, when the hand-over fails, it waits for its client
//! here again, as it did before.

use std::sync::Arc;

use bytes::Bytes;

use super::Shared;
use super::resume::Claimed;
use crate::agent::outbox::SessionCheck;

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
    Some((in_seq, kept, shared.membership.groups_of(agent.id())))
}

/// The other gate has the first `copied` messages of the claimed session: `Ok` lets the
/// session go (the agent leaves this gate without a close event: its life goes on on the
/// other gate) and gives its groups as they are now, `Err` gives what reached it since (it
/// stays). `None` if the session ended.
pub(crate) fn let_go_or_rest(
    shared: &Shared,
    claimed: &Claimed,
    copied: usize,
) -> Option<Result<Vec<String>, Vec<Bytes>>> {
    let agent = claimed.agent();
    let rest = agent
        .local()?
        .outbox
        .hand_over_rest(claimed.socket(), copied)?;
    if let Err(rest) = rest {
        return Some(Err(rest));
    }
    let groups = shared.membership.groups_of(agent.id());
    shared.membership.forget(agent.id());
    shared.unregister(agent);
    if let Some(resumption) = &shared.resume {
        resumption.ended(agent, None, shared.now_ms());
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
