//! A session that a failed hand-over to another gate leaves here: it waits for its client
//! again, as one whose socket dropped does, and ends the same way if the client does not
//! come back.

use std::sync::Arc;

use super::ending::farewell;
use super::resume::{Waited, wait_detached};
use crate::agent::Agent;
use crate::gate::Shared;

/// Waits, in a task of the gate's, for the client of `agent`'s session (detached) to resume
/// it, at most `resume_window`; the close event runs if it does not.
pub(crate) fn keep_waiting(shared: Arc<Shared>, agent: Agent) {
    let tracker = shared.tracker.clone();
    tracker.spawn(async move {
        let (Some(resumption), Some(local)) = (&shared.resume, agent.local()) else {
            return;
        };
        match wait_detached(local, &shared, resumption.window).await {
            Waited::Resumed => {}
            Waited::Ended(why) => {
                tracing::debug!(reason = ?why, "session ended without its client");
                resumption.ended(&agent, why, shared.now_ms());
                farewell(&shared, &agent).await;
            }
        }
    });
}
