//! Every name the cluster uses on NATS, built in one place: the subjects (all under
//! `[cluster] subject_prefix`, `P` below), the directory bucket and its keys.
//!
//! | subject | who listens | what |
//! |---|---|---|
//! | `P.svc.<type>` (queue group `<type>`) | every backend of that type, one takes it | a new connection: the backend that answers owns it |
//! | `P.node.<id>` | that node | the messages and the close of the connections it owns, in order (one, or a batch) |
//! | `P.ack.<gate>.<seq>` | the gate | NATS's "no responders" for a forwarded message, or for a batch of them (`<seq>_<seq>_…`, made by the publisher: `coalesce`); an older node's "handled" |
//! | `P.gate.<id>` | that gate | push, close, kick, login (uid) and group changes for its connections, "handled" for its forwarded messages (one, or a batch) |
//! | `P.handover.<gate>` | that gate | another gate asks for a resumable session it holds (a client resumed there); the answer carries the session |
//! | `P.moved` | every gate | a resume token whose gate is gone: the gate that took its session over (or knows where it went) answers with that gate's id; the others say nothing |
//! | `P.grp.<group>` | every gate (one wildcard subscription) | one broadcast: each gate writes it to its members of the group |
//! | `P.all` | every gate | a broadcast to every connection |
//! | `P.replay.<id>` | that node | a gate asks again for the group broadcasts it missed (`cluster::replay`) |
//! | `P.delivered.<id>` | that node | a gate says up to which number it has applied the node's commands: the node keeps no more of them (`cluster::gate::delivered`) |
//! | `P.rpc.<type>.<method>` (queue group `<type>`) | backends of that type | [`Cluster::call`](super::Cluster::call) |
//! | `P.rpcn.<id>.<method>` | that node | [`Cluster::call_node`](super::Cluster::call_node) |
//! | `P.sync.<id>.<n>` | nobody | a request whose "no responders" proves the server has read what came before |
//! | `P.api.<op>` (queue group `longlink-api`) | one node | the server API over NATS (`push`, `broadcast`, `kick`, `online`, `stats`) |
//! | `P.api.node_stats` | every node | its own numbers, for `stats` |
//!
//! The directory is the JetStream key-value bucket `P_sessions`: `uid.<uid>` names the gate
//! and connection holding a uid; `node.<id>` says a gate node is alive.

/// The subject and key names of one cluster (one `subject_prefix`).
#[derive(Debug, Clone)]
pub(crate) struct Subjects {
    prefix: String,
}

impl Subjects {
    pub(crate) fn new(prefix: &str) -> Subjects {
        Subjects {
            prefix: prefix.to_owned(),
        }
    }

    /// `P.` and `parts` one after the other, in one allocation of the right size (this runs
    /// for every forwarded message and every command to a gate: no formatting machinery).
    fn at(&self, parts: &[&str]) -> String {
        let len = self.prefix.len() + 1 + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut s = String::with_capacity(len + 20);
        s.push_str(&self.prefix);
        s.push('.');
        for p in parts {
            s.push_str(p);
        }
        s
    }

    /// New connections for backends of `node_type`.
    pub(crate) fn svc(&self, node_type: &str) -> String {
        self.at(&["svc.", node_type])
    }

    /// One node's own subject (its connections' messages and closes).
    pub(crate) fn node(&self, node_id: &str) -> String {
        self.at(&["node.", node_id])
    }

    /// What precedes the numbers in `gate`'s acknowledgement subjects (`P.ack.<gate>.`).
    pub(crate) fn ack_prefix(&self, gate: &str) -> String {
        self.at(&["ack.", gate, "."])
    }

    /// Every acknowledgement for `gate`.
    pub(crate) fn acks(&self, gate: &str) -> String {
        self.at(&["ack.", gate, ".*"])
    }

    /// Commands for the connections of `gate`.
    pub(crate) fn gate(&self, gate: &str) -> String {
        self.at(&["gate.", gate])
    }

    /// Requests for the sessions `gate` holds.
    pub(crate) fn handover(&self, gate: &str) -> String {
        self.at(&["handover.", gate])
    }

    /// Where the session of a token went, when the gate it names is gone (every gate).
    pub(crate) fn moved(&self) -> String {
        self.at(&["moved"])
    }

    /// A broadcast to a cluster group.
    pub(crate) fn group(&self, group: &str) -> String {
        self.at(&["grp.", &group_token(group)])
    }

    /// Every group broadcast (a gate's wildcard subscription).
    pub(crate) fn groups(&self) -> String {
        self.at(&["grp.>"])
    }

    /// What precedes the group's token in a group broadcast's subject.
    pub(crate) fn group_prefix(&self) -> String {
        self.at(&["grp."])
    }

    /// Requests for the group broadcasts node `node_id` published lately.
    pub(crate) fn replay(&self, node_id: &str) -> String {
        self.at(&["replay.", node_id])
    }

    /// Gates' reports of the commands of node `node_id` they have applied.
    pub(crate) fn delivered(&self, node_id: &str) -> String {
        self.at(&["delivered.", node_id])
    }

    /// A broadcast to every connection.
    pub(crate) fn all(&self) -> String {
        self.at(&["all"])
    }

    /// A remote call to any node of `node_type`.
    pub(crate) fn rpc(&self, node_type: &str, method: &str) -> String {
        self.at(&["rpc.", node_type, ".", method])
    }

    /// A remote call to node `node_id`.
    pub(crate) fn rpc_node(&self, node_id: &str, method: &str) -> String {
        self.at(&["rpcn.", node_id, ".", method])
    }

    /// A sync request of `node_id` (nobody answers it).
    pub(crate) fn sync(&self, node_id: &str, n: u64) -> String {
        let mut s = self.at(&["sync.", node_id, "."]);
        push_u64(&mut s, n);
        s
    }

    /// The server API's operation `op` (`push`, `broadcast`, `kick`, `online`, `stats`,
    /// `node_stats`).
    pub(crate) fn api(&self, op: &str) -> String {
        self.at(&["api.", op])
    }

    /// The directory bucket.
    pub(crate) fn bucket(&self) -> String {
        format!("{}_sessions", self.prefix)
    }
}

/// The longest subject this node publishes to on behalf of a caller, in bytes: far below
/// nats-server's 4 KiB control line (subject, reply inbox and size on one line).
const MAX_SUBJECT_LEN: usize = 1024;

/// Whether `subject` may go to NATS: not too long, no empty token, nothing that would end
/// or split the protocol line (spaces, tabs, control characters).
pub(crate) fn fits(subject: &str) -> bool {
    subject.len() <= MAX_SUBJECT_LEN
        && subject.split('.').all(|t| !t.is_empty())
        && !subject.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Appends `n` in decimal (as `format!` would, without its machinery).
pub(crate) fn push_u64(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        s.push(char::from(d));
    }
}

/// The directory key of a uid.
pub(crate) fn uid_key(uid: u64) -> String {
    format!("uid.{uid}")
}

/// The directory keys of all uids (a wildcard, to watch).
pub(crate) fn uid_key_all() -> &'static str {
    "uid.>"
}

/// The directory key that says a gate node is alive.
pub(crate) fn node_key(node: &str) -> String {
    format!("node.{node}")
}

pub(crate) use crate::gate::membership::group_token;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_under_the_prefix() {
        let s = Subjects::new("ll");
        assert_eq!(s.svc("chat"), "ll.svc.chat");
        let ack = |gate: &str, seq: u64| {
            let mut s = s.ack_prefix(gate);
            push_u64(&mut s, seq);
            s
        };
        assert_eq!(ack("g1", 7), "ll.ack.g1.7");
        assert_eq!(ack("g1", 0), "ll.ack.g1.0");
        assert_eq!(ack("g1", u64::MAX), format!("ll.ack.g1.{}", u64::MAX));
        assert_eq!(s.sync("n1", 1234567890), "ll.sync.n1.1234567890");
        assert_eq!(s.group_prefix(), "ll.grp.");
        assert_eq!(s.acks("g1"), "ll.ack.g1.*");
        assert_eq!(s.group("room.1"), "ll.grp.room_1");
        assert_eq!(s.rpc_node("n1", "online"), "ll.rpcn.n1.online");
        assert_eq!(s.bucket(), "ll_sessions");
    }

    #[test]
    fn only_subjects_that_fit_a_control_line_go_out() {
        let s = Subjects::new("ll");
        assert!(fits(&s.rpc("chat", "online")));
        assert!(fits(&s.group(&"x".repeat(5000))));
        assert!(!fits(&s.rpc("chat", &"m".repeat(5000))));
        for bad in ["", "a b", "a\r\nPUB", "a..b", "a.", "a\u{0}b"] {
            assert!(!fits(&s.rpc("chat", bad)), "{bad:?}");
        }
    }
}
