//! A resumable session around the connection (`resume_window` on): the protocol messages a
//! client sends (`LL_SessionStart`, `LL_Resume`, `LL_Ack`), the checks at each wake-up of a
//! task serving a session, the attach of a socket to the session it resumed, the detach of a
//! socket that dropped, and the wait of a session without a socket.
//!
//! A session belongs to one socket at a time, named by a number (`socket`). A resume claims
//! the session for its own socket, waits until the task that served it has stopped (the
//! `driving` lock), then numbers from where the client left off; the former task sees the
//! claim at its next wake-up and stops without a close event.

use std::num::NonZeroU64;

use longlink_wire::resume::{LlResume, RefuseReason};
use tokio::sync::OwnedMutexGuard;

mod handback;
mod resume;

pub(crate) use handback::keep_waiting;

use super::End;
use super::ending::unregister_and_close_event;
use crate::agent::outbox::next_socket;
use crate::agent::outbox::{Detached, SessionCheck};
use crate::agent::{Agent, Local};
use crate::gate::admission::WaitPlace;
use crate::gate::resume::{Protocol, Resumption};
use crate::gate::shared::Shared;

/// What a connection's task keeps of the session it serves.
pub(super) struct SessionSlot {
    /// This socket's number while it serves a resumable session.
    pub(super) socket: Option<NonZeroU64>,
    /// Held while this task serves a session: a resume waits for it.
    guard: Option<OwnedMutexGuard<()>>,
    /// Nothing but protocol messages read yet: `LL_Resume` may still come.
    fresh: bool,
    /// Resumed, and the client has sent nothing since: it may not have the new token.
    unconfirmed: bool,
}

impl SessionSlot {
    pub(super) fn new() -> SessionSlot {
        SessionSlot {
            socket: None,
            guard: None,
            fresh: true,
            unconfirmed: false,
        }
    }
}

/// A session that a resume on this socket took (see [`resume`]): serve `agent` from now on,
/// through `socket`, holding `guard` (the session's `driving` lock).
#[derive(Debug)]
pub(crate) struct Attach {
    agent: Agent,
    socket: NonZeroU64,
    guard: OwnedMutexGuard<()>,
}

/// What the serving loop does after a protocol message.
pub(super) enum SessionStep {
    /// Read on.
    Next,
    /// Resume the session of this `LL_Resume` on this socket (it awaits: see
    /// [`resume_or_refuse`]).
    Resume(LlResume),
}

/// At a wake-up of a task serving a session: what to do. `None`: go on.
pub(super) fn check(
    local: &Local,
    agent: &Agent,
    shared: &Shared,
    session: &mut SessionSlot,
) -> Option<End> {
    let socket = session.socket?;
    match local.outbox.check_session(socket) {
        SessionCheck::None | SessionCheck::Mine => None,
        SessionCheck::TakenOver => Some(End::TakenOver),
        SessionCheck::DropSocket => Some(End::DropSocket),
        SessionCheck::Overflowed => {
            // Too much waited for the client: the session ends, the connection goes on.
            let resumption = shared.services.resume.as_ref()?;
            if let Some(m) = crate::metrics::resume() {
                m.overflows.increment(1);
            }
            resumption.ended(agent, Some(RefuseReason::Overflow), shared.live.now_ms());
            local
                .outbox
                .end_session(resumption.refused(RefuseReason::Overflow));
            session.socket = None;
            session.guard = None;
            None
        }
    }
}

/// An application message read: `LL_Resume` may no longer come, and on a session's socket
/// the message counts towards the client's acknowledgements. `Some`: stop serving.
#[inline]
pub(super) fn on_message(
    resumption: &Resumption,
    local: &Local,
    session: &mut SessionSlot,
) -> Option<End> {
    session.fresh = false;
    let socket = session.socket?;
    match local.outbox.count_incoming(socket) {
        // Another socket has the session: the client sends it again there.
        Err(()) => return Some(End::TakenOver),
        Ok(Some(seq)) => {
            if let Some(ack) = resumption.ack(seq) {
                local.outbox.push_control(ack);
            }
        }
        Ok(None) => {}
    }
    None
}

/// A message decoded on a session's socket: the client of a resumed session has the new
/// token once it sends anything.
#[inline]
pub(super) fn confirm(resumption: &Resumption, agent: &Agent, session: &mut SessionSlot) {
    if std::mem::take(&mut session.unconfirmed) {
        resumption.confirm(agent);
    }
}

/// Handles a protocol message, but for the resume itself ([`SessionStep::Resume`]).
pub(super) fn on_protocol(
    resumption: &Resumption,
    msg: Protocol,
    agent: &Agent,
    local: &Local,
    session: &mut SessionSlot,
) -> SessionStep {
    match msg {
        Protocol::Ack(seq) => local.outbox.ack(seq),
        Protocol::SessionStart => start(resumption, agent, local, session),
        Protocol::Resume(msg) => {
            let fresh = std::mem::replace(&mut session.fresh, false);
            if fresh && session.socket.is_none() && !local.outbox.has_session() {
                return SessionStep::Resume(msg);
            }
            tracing::debug!("LL_Resume not first on its connection: refused");
            refuse(resumption, local, RefuseReason::Unknown);
        }
    }
    SessionStep::Next
}

/// `LL_Resume` first on this socket: `Some` ends the serving loop (attach to that session),
/// or the refusal is queued and the socket goes on as a fresh one.
pub(super) async fn resume_or_refuse(
    resumption: &Resumption,
    msg: LlResume,
    agent: &Agent,
    local: &Local,
    shared: &Shared,
) -> Option<End> {
    match resume::resume(resumption, msg, agent, shared).await {
        Ok(attach) => Some(End::Attach(Box::new(attach))),
        Err(why) => {
            refuse(resumption, local, why);
            None
        }
    }
}

/// The socket serves the session it resumed from now on: its own agent, merged into the
/// session, ends here (its close event); the session's agent takes its place in `agent`.
pub(super) async fn attach(
    shared: &Shared,
    agent: &mut Agent,
    session: &mut SessionSlot,
    attach: Attach,
) {
    let Attach {
        agent: theirs,
        socket,
        guard,
    } = attach;
    agent.close();
    unregister_and_close_event(shared, agent).await;
    *agent = theirs;
    // The former socket's silence or unanswered ping is not this one's.
    if let Some(local) = agent.local() {
        local.liveness.reset(shared.live.now_ms());
    }
    session.socket = Some(socket);
    session.guard = Some(guard);
    session.unconfirmed = true;
    if let Some(events) = &shared.hooks.on_resume {
        events.send(agent).await;
    }
}

/// The socket `socket` dropped: its session, if it has one (and it is still this socket's),
/// waits for its client. False: no session waits.
pub(super) fn detach(shared: &Shared, local: &Local, socket: Option<NonZeroU64>) -> bool {
    match (&shared.services.resume, socket) {
        (Some(_), Some(socket)) => local.outbox.detach(socket),
        _ => false,
    }
}

/// Closes the connection gracefully, unless another socket took its session over from
/// `socket`: then false, and the session is left alone.
pub(super) fn close_from(local: &Local, socket: Option<NonZeroU64>) -> bool {
    local.outbox.close_from(socket)
}

/// The connection closes: its session, if it had one, ends (a late resume hears
/// `"unknown"`), and a resume waiting for this task may go on.
pub(super) fn end(shared: &Shared, agent: &Agent, session: SessionSlot) {
    if let (Some(resumption), Some(_)) = (&shared.services.resume, session.socket) {
        resumption.ended(agent, None, shared.live.now_ms());
    }
    drop(session);
}

/// `LL_SessionStart`: the connection's session becomes resumable.
fn start(resumption: &Resumption, agent: &Agent, local: &Local, session: &mut SessionSlot) {
    session.fresh = false;
    if session.socket.is_some() || local.outbox.has_session() {
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
    session.socket = Some(socket);
    session.guard = local
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

/// How a session without a socket ended its wait.
enum Waited {
    /// A new socket took it over: nothing more to do here.
    TakenOver,
    /// It ended: a late resume hears `why` (`None`: "unknown").
    Ended(Option<RefuseReason>),
}

/// A session whose socket dropped waits for its client, keeping the socket's `place` (at
/// most `resume_window`, not past the gate's stop, and not once a newer session or
/// connection takes its place); if it does not come back, the session ends here: out of the
/// gate's table, its close event sent.
pub(super) async fn wait_for_client(
    shared: &Shared,
    agent: &Agent,
    local: &Local,
    place: WaitPlace,
) {
    let Some(resumption) = &shared.services.resume else {
        return;
    };
    match wait_detached(local, shared, resumption, place).await {
        Waited::TakenOver => {}
        Waited::Ended(why) => {
            tracing::debug!(reason = ?why, "session ended without its client");
            resumption.ended(agent, why, shared.live.now_ms());
            unregister_and_close_event(shared, agent).await;
        }
    }
}

/// Waits, without a socket, for the client to resume the session: at most `resume_window`,
/// not past the gate's stop, and not once a newer session or connection takes its `place`
/// (then it ends as if its window had lapsed). The place is given back when the wait ends.
async fn wait_detached(
    local: &Local,
    shared: &Shared,
    resumption: &Resumption,
    place: WaitPlace,
) -> Waited {
    if let Some(m) = crate::metrics::resume() {
        m.waiting.increment(1.0);
    }
    let deadline = tokio::time::sleep(resumption.window);
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
            _ = shared.live.shutdown.cancelled() => {
                if local.outbox.expire() {
                    break Waited::Ended(None);
                }
            }
        }
        match local.outbox.detached() {
            Detached::Waiting => {}
            Detached::Resumed => break Waited::TakenOver,
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
