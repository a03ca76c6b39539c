//! The connection's side of session resume (`resume_window` on): the protocol messages a
//! client sends (`LL_SessionStart`, `LL_Resume`, `LL_Ack`), the checks at each wake-up of a
//! task serving a session, and the wait of a session whose socket is gone.
//!
//! A session belongs to one socket at a time, named by a number (`socket`). A resume claims
//! the session for its own socket, waits until the task that served it has stopped (the
//! `driving` lock), then numbers from where the client left off; the former task sees the
//! claim at its next wake-up and stops without a close event.

use std::time::Duration;

use longlink_wire::resume::{LlResume, RefuseReason};
use tokio::sync::OwnedMutexGuard;

use super::ReadEnd;
use super::drive::{Conn, Step};
use crate::agent::outbox::{Detached, SessionCheck, next_socket};
use crate::agent::{Agent, Local};
use crate::gate::Shared;
use crate::gate::link::ClusterLink;
use crate::gate::resume::{Protocol, Resumption};
use crate::gate::waiting::WaitPlace;

/// What a connection's task keeps of the session it serves.
pub(crate) struct SessionSlot {
    /// This socket's number while it serves a resumable session; 0: none.
    pub(crate) socket: u64,
    /// Held while this task serves a session: a resume waits for it.
    pub(crate) guard: Option<OwnedMutexGuard<()>>,
    /// Nothing but protocol messages read yet: `LL_Resume` may still come.
    pub(crate) fresh: bool,
    /// Resumed, and the client has sent nothing since: it may not have the new token.
    pub(crate) unconfirmed: bool,
}

impl SessionSlot {
    pub(crate) fn new() -> SessionSlot {
        SessionSlot {
            socket: 0,
            guard: None,
            fresh: true,
            unconfirmed: false,
        }
    }
}

/// A session resumed on this socket: serve `agent` from now on.
#[derive(Debug)]
pub(crate) struct Resumed {
    pub(crate) agent: Agent,
    pub(crate) socket: u64,
    pub(crate) guard: OwnedMutexGuard<()>,
}

/// At a wake-up of a task serving a session: what to do. `None`: go on.
pub(super) fn check(
    local: &Local,
    agent: &Agent,
    shared: &Shared,
    slot: &mut SessionSlot,
) -> Option<ReadEnd> {
    match local.outbox.check_session(slot.socket) {
        SessionCheck::None | SessionCheck::Mine => None,
        SessionCheck::TakenOver => Some(ReadEnd::TakenOver),
        SessionCheck::DropSocket => Some(ReadEnd::DropSocket),
        SessionCheck::Overflowed => {
            // Too much waited for the client: the session ends, the connection goes on.
            let resumption = shared.resume.as_ref()?;
            if let Some(m) = crate::metrics::resume() {
                m.overflows.increment(1);
            }
            resumption.ended(agent, Some(RefuseReason::Overflow), shared.now_ms());
            local
                .outbox
                .end_session(resumption.refused(RefuseReason::Overflow));
            slot.socket = 0;
            slot.guard = None;
            None
        }
    }
}

/// Handles a protocol message, but for the resume itself (`Step::Resume`, which awaits: see
/// [`resume_or_refuse`]).
pub(super) fn on_protocol<'a>(
    resumption: &Resumption,
    msg: Protocol,
    Conn { agent, local, .. }: Conn<'a>,
    slot: &mut SessionSlot,
) -> Step<'a> {
    match msg {
        Protocol::Ack(seq) => local.outbox.ack(seq),
        Protocol::SessionStart => start(resumption, agent, local, slot),
        Protocol::Resume(msg) => {
            let fresh = std::mem::replace(&mut slot.fresh, false);
            if fresh && slot.socket == 0 && !local.outbox.has_session() {
                return Step::Resume(msg);
            }
            tracing::debug!("LL_Resume not first on its connection: refused");
            refuse(resumption, local, RefuseReason::Unknown);
        }
    }
    Step::Next
}

/// `LL_Resume` first on this socket: `Some` ends the serving loop (serve that session), or the
/// refusal is queued and the socket goes on as a fresh one.
pub(super) async fn resume_or_refuse(
    resumption: &Resumption,
    msg: LlResume,
    Conn {
        agent,
        local,
        shared,
    }: Conn<'_>,
) -> Option<ReadEnd> {
    match resume(resumption, msg, agent, shared).await {
        Ok(resumed) => Some(ReadEnd::Resumed(Box::new(resumed))),
        Err(why) => {
            refuse(resumption, local, why);
            None
        }
    }
}

/// `LL_SessionStart`: the connection's session becomes resumable.
fn start(resumption: &Resumption, agent: &Agent, local: &Local, slot: &mut SessionSlot) {
    slot.fresh = false;
    if slot.socket != 0 || local.outbox.has_session() {
        tracing::debug!("LL_SessionStart again: ignored");
        return;
    }
    let token = resumption.start(agent);
    let Some(answer) = resumption.session(token) else {
        return;
    };
    let socket = next_socket();
    if !local
        .outbox
        .start_session(resumption.buffer, socket, Some(answer))
    {
        return;
    }
    slot.socket = socket;
    slot.guard = local
        .outbox
        .driving()
        .and_then(|lock| lock.try_lock_owned().ok());
    if let Some(m) = crate::metrics::resume() {
        m.started.increment(1);
    }
    tracing::debug!(conn = agent.id(), "session resumable");
}

fn refuse(resumption: &Resumption, local: &Local, why: RefuseReason) {
    tracing::debug!(reason = %why, "resume refused");
    if let Some(m) = crate::metrics::resume() {
        m.refused(why);
    }
    if let Some(notice) = resumption.refused(why) {
        local.outbox.push_control(notice);
    }
}

/// `LL_Resume` on a fresh connection (`agent`): takes the session over, from this gate or,
/// in a cluster, from the gate the token names.
async fn resume(
    resumption: &Resumption,
    msg: LlResume,
    agent: &Agent,
    shared: &Shared,
) -> Result<Resumed, RefuseReason> {
    if let Some(holder) = resumption.holder(&msg.token).map(str::to_owned) {
        let cluster = shared.cluster.as_ref().ok_or(RefuseReason::Unknown)?;
        return take_from(cluster.as_ref(), &holder, (resumption, msg), agent, shared).await;
    }
    let (session, token) = resumption.take(&msg.token, shared.now_ms())?;
    if session == *agent {
        return Err(RefuseReason::Unknown);
    }
    let (socket, guard) = claim(&session, shared).await?;
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
    Ok(Resumed {
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

/// Claims `session` for a new socket and waits until the task that served it has stopped
/// (a half-open socket's at once; one blocked on a full module mailbox once there is room).
pub(crate) async fn claim(
    session: &Agent,
    shared: &Shared,
) -> Result<(u64, OwnedMutexGuard<()>), RefuseReason> {
    let theirs = session.local().ok_or(RefuseReason::Unknown)?;
    if let Some(cluster) = &shared.cluster {
        cluster.give_up_handover(session.id()).await;
    }
    let socket = next_socket();
    let driving = theirs.outbox.claim(socket).ok_or(RefuseReason::Unknown)?;
    let Ok(guard) = tokio::time::timeout(shared.close_timeout, driving.lock_owned()).await else {
        tracing::debug!(
            conn = session.id(),
            "resume: the former socket's task did not stop; session ended"
        );
        session.destroy();
        return Err(RefuseReason::Unknown);
    };
    Ok((socket, guard))
}

/// A resume of a session held by another gate (`holder`): a new agent here takes it over.
async fn take_from(
    cluster: &dyn ClusterLink,
    holder: &str,
    (resumption, msg): (&Resumption, LlResume),
    agent: &Agent,
    shared: &Shared,
) -> Result<Resumed, RefuseReason> {
    let fresh = shared.new_agent(agent.transport(), agent.local_addr(), agent.remote_addr());
    let local = fresh.local().ok_or(RefuseReason::Unknown)?;
    let socket = next_socket();
    local.outbox.start_session(resumption.buffer, socket, None);
    let guard = local
        .outbox
        .driving()
        .and_then(|lock| lock.try_lock_owned().ok())
        .ok_or(RefuseReason::Unknown)?;
    // Registered first: the backends' writes to it may come before the hand-over's answer.
    shared.register(&fresh);
    match cluster
        .take_session(holder, &msg.token, msg.last_seq, &fresh)
        .await
    {
        Ok(taken) => {
            let token = resumption.start(&fresh);
            let answer = resumption.resumed(token, taken.in_seq);
            let replayed = taken.kept.len();
            let numbers = (msg.last_seq, taken.in_seq);
            local.outbox.install(socket, numbers, taken.kept, answer);
            resumed_metrics(replayed);
            tracing::debug!(conn = fresh.id(), from = %holder, replayed, "session taken over from another gate");
            Ok(Resumed {
                agent: fresh,
                socket,
                guard,
            })
        }
        Err(why) => {
            fresh.destroy();
            shared.unregister(&fresh);
            Err(why)
        }
    }
}

/// How a session without a socket ended its wait.
pub(super) enum Waited {
    /// A new socket took it over: nothing more to do here.
    Resumed,
    /// It ended: a late resume hears `why` (`None`: "unknown").
    Ended(Option<RefuseReason>),
}

/// Waits, without a socket, for the client to resume the session: at most `resume_window`,
/// not past the gate's stop, and not once a newer session or connection takes its `place`
/// (then it ends as if its window had lapsed). The place is given back when the wait ends.
pub(super) async fn wait_detached(
    local: &Local,
    shared: &Shared,
    window: Duration,
    place: WaitPlace,
) -> Waited {
    if let Some(m) = crate::metrics::resume() {
        m.waiting.increment(1.0);
    }
    let deadline = tokio::time::sleep(window);
    tokio::pin!(deadline);
    let waited = loop {
        tokio::select! {
            _ = local.outbox.changed_detached() => {}
            _ = &mut deadline => {
                if local.outbox.expire() {
                    break Waited::Ended(Some(RefuseReason::Expired));
                }
            }
            _ = place.ended().cancelled() => {
                if local.outbox.expire() {
                    break Waited::Ended(Some(RefuseReason::Expired));
                }
            }
            _ = shared.shutdown.cancelled() => {
                if local.outbox.expire() {
                    break Waited::Ended(None);
                }
            }
        }
        match local.outbox.detached() {
            Detached::Waiting => {}
            Detached::Resumed => break Waited::Resumed,
            Detached::Ended => break Waited::Ended(None),
            Detached::Overflowed => {
                if let Some(m) = crate::metrics::resume() {
                    m.overflows.increment(1);
                }
                break Waited::Ended(Some(RefuseReason::Overflow));
            }
        }
    };
    if let Some(m) = crate::metrics::resume() {
        m.waiting.decrement(1.0);
    }
    drop(place);
    waited
}
