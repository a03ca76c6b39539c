//! What other nodes ask of this gate's connections (`ToGate` commands on `P.gate.<id>`),
//! and this gate's members of cluster groups.

use std::sync::Weak;

use super::{GateLink, lock};
use crate::agent::Agent;
use crate::cluster::subjects::group_token;
use crate::cluster::wire::ToGate;
use crate::codec::Encoded;
use crate::gate::Goodbye;

impl GateLink {
    /// Does what another node asked of one of this gate's connections.
    pub(super) fn apply(&self, cmd: ToGate) {
        match cmd {
            ToGate::Push { conn, payload } => {
                if let Some(agent) = self.agent(conn) {
                    let _ = agent.write_encoded(&Encoded::from_wire(payload));
                }
            }
            ToGate::Close { conn } => {
                if let Some(agent) = self.agent(conn) {
                    agent.close();
                }
            }
            ToGate::Destroy { conn } => {
                if let Some(agent) = self.agent(conn) {
                    agent.destroy();
                }
            }
            ToGate::Bind { conn, uid, at } => {
                if let Some(agent) = self.agent(conn) {
                    agent.store_uid(uid);
                    self.bind_uid(&agent, uid, at);
                }
            }
            ToGate::Join { conn, group } => self.join(conn, &group),
            ToGate::Leave { conn, group } => self.leave(conn, &group),
            ToGate::PushUid { conn, uid, payload } => {
                if let Some(agent) = self.agent_of(conn, uid) {
                    let _ = agent.write_encoded(&Encoded::from_wire(payload));
                }
            }
            ToGate::KickUid { conn, uid, payload } => {
                if let Some(agent) = self.agent_of(conn, uid) {
                    if !payload.is_empty() {
                        let _ = agent.write_encoded(&Encoded::from_wire(payload));
                    }
                    agent.close();
                }
            }
            ToGate::Displace { conn, uid } => {
                if let Some(agent) = self.agent(conn).filter(|a| a.uid() == Some(uid)) {
                    agent.store_uid(0);
                    lock(&self.claims).remove(&conn);
                    if let Some(shared) = self.shared.get().and_then(Weak::upgrade) {
                        shared.goodbye(&agent, Goodbye::Displaced);
                    }
                }
            }
        }
    }

    /// The connection that holds `uid`: `conn` as the directory says, else (the directory
    /// was behind a login on this gate) whichever connection here holds it.
    fn agent_of(&self, conn: u64, uid: u64) -> Option<Agent> {
        let holds = |a: &Agent| a.uid() == Some(uid);
        self.agent(conn)
            .filter(holds)
            .or_else(|| self.agents().into_iter().find(holds))
    }

    /// A connection of this gate joins a cluster group. Membership is kept here, at the
    /// gate: a broadcast to the group is one NATS message that each gate delivers to its own
    /// members.
    pub(super) fn join(&self, conn: u64, group: &str) {
        lock(&self.groups)
            .entry(group_token(group))
            .or_default()
            .insert(conn);
    }

    /// A connection of this gate leaves a cluster group.
    pub(super) fn leave(&self, conn: u64, group: &str) {
        let mut groups = lock(&self.groups);
        let token = group_token(group);
        if let Some(members) = groups.get_mut(&token) {
            members.remove(&conn);
            if members.is_empty() {
                groups.remove(&token);
            }
        }
    }
}
