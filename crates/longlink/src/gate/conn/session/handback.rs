//! A session that a failed hand-over to another gate leaves here: it waits for its client
//! again, as one whose socket dropped does, and ends the same way if the client does not
//! come back.

use std::sync::Arc;

use longlink_wire::resume::RefuseReason;

use super::super::ending::unregister_and_close_event;
use super::{Waited, wait_detached};
use crate::agent::Agent;
use crate::agent::outbox::Detached;
use crate::gate::shared::Shared;

/// Waits, in a task of the gate's, for the client of `agent`'s session (detached) to resume
/// it, at most `resume_window`; the close event runs if it does not. The session takes a
/// place under `max_conn_num` and `max_conn_per_ip` again (its wait gave its own back when
/// the hand-over claimed it), as a new connection from its address would, ending the
/// oldest waiting session to make room; if there is none to take, it ends at once
/// (`"expired"`).
pub(crate) fn keep_waiting(shared: Arc<Shared>, agent: Agent) {
    let tracker = shared.live.tracker.clone();
    tracker.spawn(async move {
        let (Some(resumption), Some(local)) = (&shared.services.resume, agent.local()) else {
            return;
        };
        let ip = agent.remote_addr().ip();
        let waited = match shared.services.admission.try_slot(Some(ip)) {
            Some(slot) => {
                let place = shared.services.admission.wait(slot, ip);
                wait_detached(local, &shared, resumption, place).await
            }
            None => match local.outbox.detached() {
                Detached::Resumed => Waited::TakenOver,
                _ if local.outbox.expire() => Waited::Ended(Some(RefuseReason::Expired)),
                _ => Waited::Ended(None),
            },
        };
        if let Waited::Ended(why) = waited {
            tracing::debug!(reason = ?why, "session ended without its client");
            resumption.ended(&agent, why, shared.live.now_ms());
            unregister_and_close_event(&shared, &agent).await;
        }
    });
}
