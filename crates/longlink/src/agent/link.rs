//! [`ConnLink`]: how an agent reaches what lies above it. The agent layer knows nothing of
//! the cluster; the cluster implements this trait for a clustered gate's connections (uid
//! and group changes must be told to the directory) and for connections held by another
//! node's gate (everything goes there over NATS).

use std::sync::Arc;

use super::Agent;
use crate::codec::Encoded;

/// Something that happened to an agent that its link must carry out or hear of.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LinkEvent<'a> {
    /// Queue this payload (remote connections only).
    Push(&'a Encoded),
    /// Close gracefully (remote connections only).
    Close,
    /// Close now (remote connections only).
    Destroy,
    /// The connection was bound to this uid (0: unbound).
    Uid(u64),
    /// The connection joined a cluster group.
    Join(&'a str),
    /// The connection left a cluster group.
    Leave(&'a str),
}

/// Implemented above the agent layer (by the cluster); held by the agents that need it.
pub(crate) trait ConnLink: Send + Sync {
    /// Carries out or records `event` for `agent`. Never blocks.
    fn tell(&self, agent: &Agent, event: LinkEvent<'_>);
    /// A remote connection's session moved to connection `conn` of gate `gate` (a resume
    /// there): reach it there from now on.
    fn retarget(&self, _gate: &str, _conn: u64) {}
    /// A remote connection moved to another node: from now on its gate hears nothing more of
    /// this agent's uid, groups or close (the other node has them); writes still go.
    fn detach(&self) {}
    /// Where `agent`'s connection is in the cluster: its gate's node id and its id there
    /// (`None` outside a cluster).
    fn address(&self, _agent: &Agent) -> Option<(Arc<str>, u64)> {
        None
    }
}
