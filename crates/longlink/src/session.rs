//! Sessions (uid to connection, one login per uid) and groups (rooms, channels).
//!
//! Both are plain values meant to live in a module's state: the module's task is the only
//! one that touches them, so they need no locks.
//!
//! ```no_run
//! use longlink::{Agent, Encoded, Groups, Sessions};
//!
//! # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
//! # struct S2C_Kick { #[prost(string, tag = "1")] reason: String }
//! # fn on_login(sessions: &mut Sessions, rooms: &mut Groups<u64>, uid: u64, agent: &Agent) {
//! // A second login kicks the first connection of that uid.
//! if let Some(old) = sessions.bind(uid, agent) {
//!     let _ = old.kick(&S2C_Kick { reason: "logged in elsewhere".into() });
//! }
//! rooms.join(7, agent);
//! // Encode once, share the bytes with every member.
//! let msg = agent.codec().encode(&S2C_Kick { reason: "hi".into() }).unwrap();
//! rooms.broadcast(&7, &msg);
//! # }
//! ```

use std::collections::HashMap;
use std::hash::Hash;

use crate::agent::Agent;
use crate::agent::link::LinkEvent;
#[cfg(feature = "cluster")]
use crate::cluster::Cluster;
use crate::codec::Encoded;

/// Who is logged in, by uid. One connection per uid.
#[derive(Debug, Default)]
pub struct Sessions {
    by_uid: HashMap<u64, Agent>,
}

impl Sessions {
    /// No one logged in.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `uid` to `agent` and returns the connection it replaces, if another one held
    /// that uid (kick it). If `agent` was bound to a different uid, that binding goes.
    /// `uid` 0 means "nobody" and is refused (returns `None`, binds nothing).
    pub fn bind(&mut self, uid: u64, agent: &Agent) -> Option<Agent> {
        if uid == 0 {
            return None;
        }
        if let Some(prev_uid) = agent.uid()
            && prev_uid != uid
        {
            self.unbind(prev_uid, agent);
        }
        agent.set_uid(uid);
        match self.by_uid.insert(uid, agent.clone()) {
            Some(old) if old != *agent => {
                old.set_uid(0);
                Some(old)
            }
            _ => None,
        }
    }

    /// Removes the binding of `uid` if it is still `agent` (a connection closing after it was
    /// replaced must not log out its successor). Returns whether it was removed.
    pub fn unbind(&mut self, uid: u64, agent: &Agent) -> bool {
        if self.by_uid.get(&uid) == Some(agent) {
            self.by_uid.remove(&uid);
            agent.set_uid(0);
            true
        } else {
            false
        }
    }

    /// The connection of `uid`.
    pub fn get(&self, uid: u64) -> Option<&Agent> {
        self.by_uid.get(&uid)
    }

    /// How many uids are bound.
    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    /// Whether no one is bound.
    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }

    /// Every (uid, connection).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Agent)> {
        self.by_uid.iter().map(|(uid, a)| (*uid, a))
    }
}

/// A set of connections that receive the same broadcasts.
#[derive(Debug, Default)]
pub struct Group {
    members: HashMap<u64, Agent>,
}

impl Group {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a connection; returns false if it was already a member.
    pub fn add(&mut self, agent: &Agent) -> bool {
        self.members.insert(agent.id(), agent.clone()).is_none()
    }

    /// Removes a connection; returns whether it was a member.
    pub fn remove(&mut self, agent: &Agent) -> bool {
        self.members.remove(&agent.id()).is_some()
    }

    /// Whether `agent` is a member.
    pub fn contains(&self, agent: &Agent) -> bool {
        self.members.contains_key(&agent.id())
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group is empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members.
    pub fn members(&self) -> impl Iterator<Item = &Agent> {
        self.members.values()
    }

    /// Queues one encoded message to every member; the bytes are shared, not copied. Returns
    /// how many members took it (a member whose queue refused it is skipped, not harmed).
    pub fn broadcast(&self, msg: &Encoded) -> usize {
        self.members
            .values()
            .filter(|a| a.write_encoded(msg).is_ok())
            .count()
    }

    /// [`broadcast`](Self::broadcast) to every member but `except` (e.g. the one whose
    /// message it answers).
    pub fn broadcast_except(&self, msg: &Encoded, except: &Agent) -> usize {
        self.members
            .values()
            .filter(|a| *a != except && a.write_encoded(msg).is_ok())
            .count()
    }
}

/// Named groups, created on first join and dropped when empty.
///
/// In a cluster ([`Groups::in_cluster`]) each member's gate is told of its membership, and a
/// broadcast is one NATS message that each gate delivers to its own members: members bound to
/// other backend nodes get it too. Sizes ([`len_of`](Self::len_of)) count the members this
/// module knows.
#[derive(Debug)]
pub struct Groups<K> {
    groups: HashMap<K, Group>,
    /// The name members' gates know the groups by, when they have one.
    named: Option<Named<K>>,
}

#[derive(Debug)]
struct Named<K> {
    name: String,
    /// Where a broadcast goes when the groups span a cluster.
    #[cfg(feature = "cluster")]
    cluster: Option<Cluster>,
    key: fn(&K) -> String,
}

impl<K> Default for Groups<K> {
    fn default() -> Self {
        Groups {
            groups: HashMap::new(),
            named: None,
        }
    }
}

impl<K: Hash + Eq + std::fmt::Display> Groups<K> {
    /// Groups shared across the cluster under `name` (group `k` is `"<name>.<k>"` on the
    /// wire); with no cluster, the same as [`Groups::named`].
    ///
    /// ```no_run
    /// # fn f(cluster: Option<&longlink::cluster::Cluster>) {
    /// let rooms: longlink::Groups<u64> = longlink::Groups::in_cluster("room", cluster);
    /// # }
    /// ```
    #[cfg(feature = "cluster")]
    pub fn in_cluster(name: &str, cluster: Option<&Cluster>) -> Self {
        let mut groups = Self::named(name);
        if let Some(named) = &mut groups.named {
            named.cluster = cluster.cloned();
        }
        groups
    }

    /// Groups known to their members' gates as `"<name>.<key>"`, so that a broadcast from
    /// outside the module (the server API: `{"group": name, "key": key}`) reaches them.
    ///
    /// ```
    /// let rooms: longlink::Groups<u64> = longlink::Groups::named("room");
    /// assert!(rooms.is_empty());
    /// ```
    pub fn named(name: &str) -> Self {
        Groups {
            groups: HashMap::new(),
            named: Some(Named {
                name: name.to_owned(),
                #[cfg(feature = "cluster")]
                cluster: None,
                key: <K as ToString>::to_string,
            }),
        }
    }
}

impl<K> Named<K> {
    fn group(&self, key: &K) -> String {
        format!("{}.{}", self.name, (self.key)(key))
    }

    /// Tells the member's gate that it joined (or left) the group.
    fn tell(&self, key: &K, agent: &Agent, join: bool) {
        let group = self.group(key);
        agent.tell(if join {
            LinkEvent::Join(&group)
        } else {
            LinkEvent::Leave(&group)
        });
    }
}

impl<K: Hash + Eq> Groups<K> {
    /// No groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `agent` to group `key`; returns the group's size after.
    pub fn join(&mut self, key: K, agent: &Agent) -> usize {
        if let Some(n) = &self.named {
            n.tell(&key, agent, true);
        }
        let group = self.groups.entry(key).or_default();
        group.add(agent);
        group.len()
    }

    /// Removes `agent` from group `key`; returns the group's size after.
    pub fn leave(&mut self, key: &K, agent: &Agent) -> usize {
        if let Some(n) = &self.named {
            n.tell(key, agent, false);
        }
        let Some(group) = self.groups.get_mut(key) else {
            return 0;
        };
        group.remove(agent);
        let left = group.len();
        if left == 0 {
            self.groups.remove(key);
        }
        left
    }

    /// The group `key`, if it has members.
    pub fn get(&self, key: &K) -> Option<&Group> {
        self.groups.get(key)
    }

    /// Members of group `key`.
    pub fn len_of(&self, key: &K) -> usize {
        self.groups.get(key).map_or(0, Group::len)
    }

    /// Number of non-empty groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Broadcasts to group `key`; returns how many members took the message (in a
    /// cluster: how many members this module knows; the gates deliver).
    pub fn broadcast(&self, key: &K, msg: &Encoded) -> usize {
        self.broadcast_but(key, msg, None)
    }

    /// [`broadcast`](Self::broadcast) to every member of group `key` but `except` (e.g. the
    /// one whose message it answers: "someone is typing" to the others). In a cluster it is
    /// still one NATS message, which names `except` for its gate to leave out.
    ///
    /// ```
    /// # fn f(rooms: &longlink::Groups<u64>, sender: &longlink::Agent, msg: &longlink::codec::Encoded) {
    /// rooms.broadcast_except(&7, msg, sender);
    /// # }
    /// ```
    pub fn broadcast_except(&self, key: &K, msg: &Encoded, except: &Agent) -> usize {
        self.broadcast_but(key, msg, Some(except))
    }

    fn broadcast_but(&self, key: &K, msg: &Encoded, except: Option<&Agent>) -> usize {
        #[cfg(feature = "cluster")]
        if let Some((n, cluster)) = self
            .named
            .as_ref()
            .and_then(|n| n.cluster.as_ref().map(|c| (n, c)))
        {
            return self.broadcast_in_cluster(n, cluster, key, msg, except);
        }
        match (self.groups.get(key), except) {
            (None, _) => 0,
            (Some(g), None) => g.broadcast(msg),
            (Some(g), Some(except)) => g.broadcast_except(msg, except),
        }
    }

    /// [`broadcast`](Self::broadcast) when the groups span a cluster: one NATS message.
    #[cfg(feature = "cluster")]
    fn broadcast_in_cluster(
        &self,
        n: &Named<K>,
        cluster: &Cluster,
        key: &K,
        msg: &Encoded,
        except: Option<&Agent>,
    ) -> usize {
        let group = self.groups.get(key);
        // Members on a gate outside the cluster (none, in practice) are written to here.
        for agent in group.into_iter().flat_map(Group::members) {
            if !agent.in_cluster() && Some(agent) != except {
                let _ = agent.write_encoded(msg);
            }
        }
        let except = except.and_then(Agent::cluster_address);
        cluster.broadcast_group_except(&n.group(key), msg, except);
        group.map_or(0, Group::len)
    }
}
