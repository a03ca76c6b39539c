//! What other nodes ask of this gate's connections (`ToGate` commands on `P.gate.<id>`);
//! a write or a uid's command for a session this gate handed over lately goes on to the
//! session's new gate (`moved`).
//! Group membership itself is the gate's (`gate::membership`): a broadcast to a group is one
//! NATS message that each gate delivers to its own members.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::{GateLink, lock};
use crate::agent::Agent;
use crate::cluster::wire::{PushUids, ToGate, batch};
use crate::codec::Encoded;
use crate::gate::Goodbye;

impl GateLink {
    /// Does what another node asked of one of this gate's connections.
    pub(super) fn apply(&self, cmd: ToGate) {
        match cmd {
            ToGate::Push { conn, payload } => match self.agent(conn) {
                Some(agent) => {
                    let _ = agent.write_encoded(&Encoded::from_wire(payload));
                }
                None => self.send_after(conn, None, |conn| ToGate::Push { conn, payload }),
            },
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
            ToGate::Join { conn, group } => {
                if let Some(shared) = self.gate() {
                    shared.live.membership.join(conn, &group);
                }
            }
            ToGate::Leave { conn, group } => {
                if let Some(shared) = self.gate() {
                    shared.live.membership.leave(conn, &group);
                }
            }
            ToGate::PushUid { conn, uid, payload } => match self.agent_of(conn, uid) {
                Some(agent) => {
                    let _ = agent.write_encoded(&Encoded::from_wire(payload));
                }
                None => self.send_after(conn, Some(uid), |conn| ToGate::PushUid {
                    conn,
                    uid,
                    payload,
                }),
            },
            ToGate::PushUids(many) => self.push_each(many),
            ToGate::KickUid { conn, uid, payload } => match self.agent_of(conn, uid) {
                Some(agent) => {
                    if !payload.is_empty() {
                        let _ = agent.write_encoded(&Encoded::from_wire(payload));
                    }
                    agent.close();
                }
                None => self.send_after(conn, Some(uid), |conn| ToGate::KickUid {
                    conn,
                    uid,
                    payload,
                }),
            },
            ToGate::Goodbye { conn, uid, reason } => match self.agent_of(conn, uid) {
                Some(agent) => {
                    if let Some(shared) = self.gate() {
                        shared.hooks.goodbye(&agent, Goodbye::Kicked(reason.into()));
                    }
                }
                None => self.send_after(conn, Some(uid), |conn| ToGate::Goodbye {
                    conn,
                    uid,
                    reason,
                }),
            },
            ToGate::Barrier { id } => {
                if let Some(done) = lock(&self.barriers).remove(&id) {
                    let _ = done.send(());
                }
            }
            ToGate::Move {
                conn,
                node_type,
                from,
            } => self.start_move(conn, &node_type, &from),
            ToGate::Handled { seq } => self.handled(seq),
            ToGate::Displace { conn, uid } => {
                if let Some(agent) = self.agent(conn).filter(|a| a.uid() == Some(uid)) {
                    agent.store_uid(0);
                    lock(&self.claims).remove(&conn);
                    if let Some(shared) = self.gate() {
                        shared.hooks.goodbye(&agent, Goodbye::Displaced);
                    }
                }
            }
        }
    }

    /// Writes one payload to each target, in order: the connection the directory named if
    /// it still holds the uid, else whichever connection here holds it (one pass over the
    /// gate's connections for all of those), else on to where its session went, as a
    /// `PushUid` would be.
    fn push_each(&self, many: PushUids) {
        let encoded = Encoded::from_wire(many.payload);
        let holds = |a: &Agent, uid: u64| a.uid() == Some(uid);
        let found: Vec<Option<Agent>> = many
            .targets
            .iter()
            .map(|&(conn, uid)| self.agent(conn).filter(|a| holds(a, uid)))
            .collect();
        let mut elsewhere: HashMap<u64, Agent> = HashMap::new();
        if found.iter().any(Option::is_none) {
            let wanted: HashSet<u64> = many
                .targets
                .iter()
                .zip(&found)
                .filter(|(_, a)| a.is_none())
                .map(|(&(_, uid), _)| uid)
                .collect();
            for agent in self.agents() {
                if let Some(uid) = agent.uid().filter(|u| wanted.contains(u)) {
                    elsewhere.insert(uid, agent);
                }
            }
        }
        for (&(conn, uid), agent) in many.targets.iter().zip(found) {
            match agent.as_ref().or_else(|| elsewhere.get(&uid)) {
                Some(agent) => {
                    let _ = agent.write_encoded(&encoded);
                }
                None => self.send_after(conn, Some(uid), |conn| ToGate::PushUid {
                    conn,
                    uid,
                    payload: encoded.bytes().clone(),
                }),
            }
        }
    }

    /// The connection that holds `uid`: `conn` as the directory says, else (the directory
    /// was behind a login on this gate) whichever connection here holds it. A session being
    /// handed to another gate holds its uid here as this gate claimed it (its agent's own may
    /// have been cleared by the modules' hand-off hook).
    fn agent_of(&self, conn: u64, uid: u64) -> Option<Agent> {
        let claimed = |a: &Agent| lock(&self.claims).get(&a.id()).map(|c| c.0) == Some(uid);
        let holds = |a: &Agent| a.uid() == Some(uid) || claimed(a);
        self.agent(conn)
            .filter(holds)
            .or_else(|| self.agents().into_iter().find(holds))
    }
}

impl GateLink {
    /// A NATS message of commands from another node (one, or a batch): applied in that
    /// node's order, once (one that comes after a missing number waits for it: `outage`).
    /// Commands are applied under the commands' lock, as a hand-over lets its session go
    /// (`transfer`).
    pub(super) fn command(&self, msg: async_nats::Message) {
        let mut order = lock(&self.commands);
        let Some(num) = crate::cluster::groupseq::read(msg.headers.as_ref()) else {
            self.commands(msg.payload);
            return;
        };
        let ready = order.heard(num, "", &Encoded::from_wire(msg.payload));
        self.apply_ready(ready);
    }

    /// Applies the NATS messages of commands `ready` makes due (under the commands' lock, so
    /// that they keep their order), and follows up on the rest.
    pub(super) fn apply_ready(&self, ready: super::order::Ready) {
        for (_, _, cmds) in ready.due {
            self.commands(cmds.bytes().clone());
        }
        if ready.lost > 0 {
            metrics::counter!("longlink_cluster_commands_lost_total").increment(ready.lost);
            tracing::warn!(
                lost = ready.lost,
                "commands to this gate missed in a NATS outage could not be sent again"
            );
        }
        if let Some(fetch) = ready.fetch {
            self.fetch_missing(super::outage::Stream::Commands, fetch);
        }
    }

    /// One NATS message of commands (one, or a batch): each applied, in order.
    fn commands(&self, payload: Bytes) {
        let items = match batch::items(payload) {
            Ok(items) => items,
            Err(e) => return tracing::warn!(error = %e, "bad gate commands dropped"),
        };
        for item in items {
            match item.and_then(ToGate::decode) {
                Ok(cmd) => self.apply(cmd),
                Err(e) => tracing::warn!(error = %e, "bad gate command dropped"),
            }
        }
    }
}
