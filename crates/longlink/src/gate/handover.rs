//! The holder's side of a session handed over to another gate in steps (the cluster layer
//! drives them): a copy of the claimed session first, while it stays here, and what this
//! gate's modules know of it (the hand-off hook, the user data); then it is let go once the
//! other gate has all of it, or, when the hand-over fails, it waits for its client here
//! again, as it did before, adopted again by the modules. The other gate's modules adopt it
//! (`adopt_here`).

use std::sync::Arc;

use bytes::Bytes;

use super::Shared;
use super::resume::Claimed;
use crate::agent::Agent;
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

/// The claimed session's state for the modules of the gate it goes to: the application's
/// hand-off hook runs (after the messages the connection sent here, on the hook's module;
/// from then on what the agent says of its groups and uid is not carried out), then its user
/// data is serialized, if it is of the registered type. Waits at most `wait` for the hook.
/// `None`: no user data moves.
pub(crate) async fn hand_off_here(
    shared: &Shared,
    claimed: &Claimed,
    wait: std::time::Duration,
) -> Option<Bytes> {
    let agent = claimed.agent();
    if let Some(events) = &shared.hooks.on_hand_off {
        shared.live.membership.handing(agent.id(), true);
        // The uid as the connection's messages left it, read after them: the hook may log
        // the agent out of the module's sessions, but until the other gate has the session,
        // pushes by uid still reach it here.
        let uid = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (seen, a) = (Arc::clone(&uid), agent.clone());
        let read_uid = crate::module::Job::untyped("hand-off uid", move || {
            seen.store(a.uid().unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
        });
        let _ = events.mailbox().send(read_uid).await;
        events.send(agent).await;
        if tokio::time::timeout(wait, events.mailbox().barrier())
            .await
            .is_err()
        {
            crate::agent::logged::conn_event!(
                WARN,
                agent,
                "hand-off hook not run in time; the session moves without it"
            );
        }
        agent.store_uid(uid.load(std::sync::atomic::Ordering::Relaxed));
    }
    let codec = shared.hooks.user_data.as_ref()?;
    match (codec.save)(agent)? {
        Ok(bytes) => Some(Bytes::from(bytes)),
        Err(e) => {
            crate::agent::logged::conn_event!(WARN, agent, error = %e, "user data not serialized; it does not move");
            None
        }
    }
}

/// A session arrives from another gate (or stays here after its hand-over failed): its user
/// data is restored (if some moved, of the registered type), and the adopt hook runs before
/// any of its messages here. Its groups and uid are told as they are again.
pub(crate) async fn adopt_here(shared: &Shared, agent: &Agent, user_data: Option<&[u8]>) {
    shared.live.membership.handing(agent.id(), false);
    if let (Some(bytes), Some(codec)) = (user_data, &shared.hooks.user_data)
        && let Err(e) = (codec.restore)(agent, bytes)
    {
        crate::agent::logged::conn_event!(WARN, agent, error = %e, "moved user data does not deserialize here");
    }
    if let Some(events) = &shared.hooks.on_adopt {
        events.send(agent).await;
    }
}

/// A hand-over failed after [`hand_off_here`]: the modules take the session back (the adopt
/// hook, with the user data the hand-off hook left on the agent), if the hand-off hook ran.
pub(crate) async fn take_back_here(shared: &Shared, agent: &Agent) {
    if shared.hooks.on_hand_off.is_some() {
        adopt_here(shared, agent, None).await;
    }
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
