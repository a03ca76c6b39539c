//! Which of a gate's connections belong to which named group (`Groups::in_cluster` /
//! `Groups::named`): kept at the gate so that a broadcast to a group reaches its members here
//! without any module, whether it comes from the cluster (one NATS message per broadcast,
//! each gate writing to its own members) or from the server API.
//!
//! Agents tell the gate of their joins and leaves through [`GateConnLink`], the [`ConnLink`]
//! every local agent holds; it also passes uid changes on to the cluster, when there is one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::agent::Agent;
use crate::agent::link::{ConnLink, LinkEvent};

/// The longest group token used as it is, in bytes; a longer one is hashed.
const MAX_GROUP_TOKEN: usize = 200;

/// A group name as one NATS subject token (and this table's key): dots, spaces and
/// wildcards become `_`. A name whose token would be empty, longer than 200 bytes, or
/// start with `~` becomes `~` and the SHA-256 of the name in hex (65 bytes): every group
/// name gives a token that fits in a subject (nats-server drops a connection whose
/// control line passes 4 KiB), and a hashed token never equals a plain one.
pub(crate) fn group_token(group: &str) -> String {
    let token: String = group
        .chars()
        .map(|c| match c {
            '.' | ' ' | '*' | '>' | '\t' | '\r' | '\n' => '_',
            c => c,
        })
        .collect();
    if token.is_empty() || token.len() > MAX_GROUP_TOKEN || token.starts_with('~') {
        use sha2::Digest;
        use std::fmt::Write;
        let digest = sha2::Sha256::digest(group.as_bytes());
        let mut hashed = String::with_capacity(65);
        hashed.push('~');
        for b in digest {
            let _ = write!(hashed, "{b:02x}");
        }
        return hashed;
    }
    token
}

/// Group (as a token) -> the connections of this gate in it.
#[derive(Default)]
pub(crate) struct Membership {
    groups: Mutex<HashMap<String, HashSet<u64>>>,
    /// Connections whose session is being handed to another gate, from the application's
    /// hand-off hook on: what their agents say of groups and uid is not carried out (the
    /// hook lets the module's maps go; the gate keeps the groups and uid for the other gate).
    handing: Mutex<HashSet<u64>>,
}

impl Membership {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashSet<u64>>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn join(&self, conn: u64, group: &str) {
        self.lock()
            .entry(group_token(group))
            .or_default()
            .insert(conn);
    }

    pub(crate) fn leave(&self, conn: u64, group: &str) {
        let token = group_token(group);
        let mut groups = self.lock();
        if let Some(members) = groups.get_mut(&token) {
            members.remove(&conn);
            if members.is_empty() {
                groups.remove(&token);
            }
        }
    }

    /// A connection closed (or its session went to another gate): it leaves every group.
    pub(crate) fn forget(&self, conn: u64) {
        self.lock().retain(|_, members| {
            members.remove(&conn);
            !members.is_empty()
        });
        self.handing(conn, false);
    }

    /// Whether `conn`'s session is being handed to another gate (`true`: its agent's group
    /// and uid changes are not carried out from now on), or no longer (`false`).
    pub(crate) fn handing(&self, conn: u64, on: bool) {
        let mut handing = self.handing.lock().unwrap_or_else(|p| p.into_inner());
        if on {
            handing.insert(conn);
        } else {
            handing.remove(&conn);
        }
    }

    fn is_handing(&self, conn: u64) -> bool {
        let handing = self.handing.lock().unwrap_or_else(|p| p.into_inner());
        !handing.is_empty() && handing.contains(&conn)
    }

    /// The groups (as tokens) `conn` is in.
    pub(crate) fn groups_of(&self, conn: u64) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, members)| members.contains(&conn))
            .map(|(token, _)| token.clone())
            .collect()
    }

    /// `conn` joins the group whose token is `token`.
    pub(crate) fn join_token(&self, conn: u64, token: &str) {
        self.lock()
            .entry(token.to_owned())
            .or_default()
            .insert(conn);
    }

    /// The members of the group whose token is `token`.
    pub(crate) fn members_of_token(&self, token: &str) -> Vec<u64> {
        self.lock()
            .get(token)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The connections in at least one group.
    pub(crate) fn all_members(&self) -> Vec<u64> {
        let groups = self.lock();
        let mut all: HashSet<u64> = HashSet::new();
        for members in groups.values() {
            all.extend(members);
        }
        all.into_iter().collect()
    }

    /// The members of `group`.
    pub(crate) fn members(&self, group: &str) -> Vec<u64> {
        self.members_of_token(&group_token(group))
    }

    /// Groups with at least one member here.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The link of every local agent of a gate: group changes go to the gate's [`Membership`],
/// everything else (uid changes) on to the cluster's link, if the gate is in a cluster.
pub(crate) struct GateConnLink {
    pub(crate) membership: Arc<Membership>,
    pub(crate) cluster: Option<Arc<dyn ConnLink>>,
}

impl ConnLink for GateConnLink {
    fn tell(&self, agent: &Agent, event: LinkEvent<'_>) {
        if self.membership.is_handing(agent.id()) {
            return;
        }
        match event {
            LinkEvent::Join(group) => {
                self.membership.join(agent.id(), group);
            }
            LinkEvent::Leave(group) => {
                self.membership.leave(agent.id(), group);
            }
            other => {
                if let Some(cluster) = &self.cluster {
                    cluster.tell(agent, other);
                }
            }
        }
    }

    fn address(&self, agent: &Agent) -> Option<(Arc<str>, u64)> {
        self.cluster.as_ref()?.address(agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_join_leave_and_are_forgotten() {
        let m = Membership::default();
        m.join(1, "room.7");
        m.join(2, "room.7");
        m.join(1, "room.8");
        assert_eq!(m.len(), 2);
        let mut seven = m.members("room.7");
        seven.sort_unstable();
        assert_eq!(seven, [1, 2]);
        assert_eq!(m.members_of_token("room_7").len(), 2);
        m.leave(2, "room.7");
        m.forget(1);
        assert_eq!(m.len(), 0);
        assert_eq!(group_token("a b*>.c"), "a_b___c");
    }

    #[test]
    fn every_group_name_gives_a_short_token_of_its_own() {
        let long = "x".repeat(5000);
        let tokens = [
            group_token(""),
            group_token(&long),
            group_token(&format!("{long}y")),
            group_token("~a"),
        ];
        for t in &tokens {
            assert_eq!(t.len(), 65, "{t}");
            assert!(t.starts_with('~') && t[1..].bytes().all(|b| b.is_ascii_hexdigit()));
        }
        let distinct: HashSet<&String> = tokens.iter().collect();
        assert_eq!(distinct.len(), tokens.len());
        // A plain name that looks like a hashed token is hashed too: never equal to one.
        assert_ne!(group_token(&tokens[1]), tokens[1]);
        assert_eq!(group_token(&"y".repeat(200)), "y".repeat(200));
        assert_eq!(group_token(&"é".repeat(101)).len(), 65);
    }
}
