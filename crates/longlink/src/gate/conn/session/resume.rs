//! `LL_Resume` first on a fresh socket: the session it names is taken over, from the task
//! that serves it on this gate ([`claim`]) or, in a cluster, from the gate that holds it; the
//! socket then serves it ([`Attach`]).

use std::num::NonZeroU64;

use longlink_wire::resume::{LlResume, RefuseReason};

use super::Attach;
use crate::agent::outbox::next_socket;
use crate::agent::{Agent, Local};
use crate::codec::Tag;
use crate::gate::handover::adopt_here;
use crate::gate::link::{ClusterLink, Taken};
use crate::gate::resume::{Resumption, claim};
use crate::gate::shared::Shared;

/// `LL_Resume` on a fresh connection (`agent`): takes the session over, from this gate or,
/// in a cluster, from the gate the token names.
pub(super) async fn resume(
    resumption: &Resumption,
    msg: LlResume,
    agent: &Agent,
    shared: &Shared,
) -> Result<Attach, RefuseReason> {
    let holder = resumption
        .holder(&msg.token)
        .filter(|_| !resumption.adopted(&msg.token));
    if let Some(holder) = holder.map(str::to_owned) {
        let cluster = shared
            .services
            .cluster
            .as_ref()
            .ok_or(RefuseReason::Unknown)?;
        return take_from(cluster.as_ref(), &holder, resumption, msg, agent, shared).await;
    }
    let now = shared.live.now_ms();
    let (session, token) = match resumption.take(&msg.token, now) {
        Ok(found) => found,
        // Handed over from here to another gate, the client not told (its LL_Resumed lost):
        // that gate has it.
        Err(RefuseReason::Unknown) => {
            let to = resumption.gone_to(&msg.token, now);
            let cluster = shared.services.cluster.as_ref();
            let (Some(to), Some(cluster)) = (to, cluster) else {
                return Err(RefuseReason::Unknown);
            };
            return take_from(cluster.as_ref(), &to, resumption, msg, agent, shared).await;
        }
        Err(why) => return Err(why),
    };
    if session == *agent {
        return Err(RefuseReason::Unknown);
    }
    let cluster = shared.services.cluster.as_deref();
    let (socket, guard) = claim(&session, cluster, shared.settings.close_timeout).await?;
    let theirs = session.local().ok_or(RefuseReason::Unknown)?;
    let (in_seq, replayed) = theirs
        .outbox
        .resume(socket, msg.last_seq, |in_seq| {
            resumption.resumed(token, in_seq)
        })
        .ok_or(RefuseReason::Unknown)?;
    session.set_socket(agent.transport(), (agent.local_addr(), agent.remote_addr()));
    resumed_metrics(replayed);
    tracing::debug!(
        conn = session.id(),
        from = agent.id(),
        in_seq,
        replayed,
        "session resumed"
    );
    Ok(Attach {
        agent: session,
        socket,
        guard,
    })
}

fn resumed_metrics(replayed: usize) {
    if let Some(m) = crate::metrics::resume() {
        m.resumed.increment(1);
        m.replayed.increment(replayed as u64);
    }
}

/// A resume of a session held by another gate (`holder`): a new agent here takes it over.
async fn take_from(
    cluster: &dyn ClusterLink,
    holder: &str,
    resumption: &Resumption,
    msg: LlResume,
    agent: &Agent,
    shared: &Shared,
) -> Result<Attach, RefuseReason> {
    let fresh = shared.settings.new_agent(
        agent.transport(),
        agent.local_addr(),
        agent.remote_addr(),
        agent.attached_values().clone(),
    );
    let local = fresh.local().ok_or(RefuseReason::Unknown)?;
    let socket = next_socket();
    local.outbox.start_session(resumption.buffer, socket, None);
    let guard = local
        .outbox
        .driving()
        .and_then(|lock| lock.try_lock_owned().ok())
        .ok_or(RefuseReason::Unknown)?;
    // Registered first: the backends' writes to it may come before the hand-over's answer.
    shared.live.register(&fresh);
    match cluster
        .take_session(holder, &msg.token, msg.last_seq, &fresh)
        .await
    {
        Ok(mut taken) => {
            // The modules here know the session before any of its messages.
            let user_data = taken.user_data.take();
            adopt_here(shared, &fresh, user_data.as_deref()).await;
            let replayed = install(resumption, &msg, &fresh, local, socket, taken);
            tracing::debug!(conn = fresh.id(), from = %holder, replayed, "session taken over from another gate");
            Ok(Attach {
                agent: fresh,
                socket,
                guard,
            })
        }
        Err(why) => {
            fresh.destroy();
            shared.live.unregister(&fresh);
            Err(why)
        }
    }
}

/// What another gate handed over goes into the fresh agent's outbox: the kept messages, the
/// sequence numbers, the `LL_Resumed` answer with the session's new token. Returns how many
/// messages are replayed. The kept messages come as payloads, as any payload from another
/// node does: this gate's codec gives each its delivery class (and a latest one its key),
/// so that its queue keeps one message per latest key as the former gate's did.
fn install(
    resumption: &Resumption,
    msg: &LlResume,
    fresh: &Agent,
    local: &Local,
    socket: NonZeroU64,
    taken: Taken,
) -> usize {
    let token = resumption.start(fresh);
    resumption.took(&msg.token, fresh);
    let answer = resumption.resumed(token, taken.in_seq);
    let codec = fresh.codec();
    let kept: Vec<_> = (taken.kept.into_iter())
        .map(|payload| {
            // The former gate numbered every one it kept: none is volatile here.
            let tag = match codec.classify_payload(&payload).tag {
                Tag::Volatile => Tag::Reliable,
                tag => tag,
            };
            (payload, tag)
        })
        .collect();
    let replayed = kept.len();
    local
        .outbox
        .install(socket, msg.last_seq, taken.in_seq, kept, answer);
    resumed_metrics(replayed);
    replayed
}
