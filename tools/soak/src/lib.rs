//! The cluster fault soak: one `nats-server`, three gates and two chat nodes of the
//! `longlink-chat` binary, and a few hundred [`ResumableClient`](longlink_client::ResumableClient)s
//! (TCP and WebSocket) chatting in rooms and privately through cutting proxies, while
//! [phases](Phase) of faults run one after the other: random cuts of client connections,
//! every gate replaced in turn (the new process started, then the old one stopped), every
//! chat node in turn, NATS killed and started again. A checker then counts, per phase,
//! what became of every message and client ([`Report`]).
//!
//! Layout: `node` (the processes), `cluster` (the nodes, the proxies, the restarts),
//! `user` (one client), `ledger` (what was sent and received), `report` (the checker),
//! `phases` (the driver), `msg` (the chat's messages, written out from the protocol).
//!
//! `scripts/soak-cluster.sh` runs the `longlink-soak` binary at size; the chat example's
//! `tests/soak.rs` runs a short one.

use std::path::PathBuf;
use std::time::Duration;

use longlink_client::Encoding;

mod cluster;
mod ledger;
mod msg;
mod node;
mod phases;
mod report;
mod user;

pub use phases::run;
pub use report::{Figures, Report};

/// A phase of the soak: what goes wrong while the clients chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Nothing: the reference.
    Baseline,
    /// Every client connection cut at random (after a random number of bytes).
    Cuts,
    /// Every gate replaced in turn: a new one started, then the old one stopped (SIGTERM).
    Gates,
    /// Every chat node replaced in turn, the same way.
    Chats,
    /// NATS killed, and started again after a while.
    Nats,
}

impl Phase {
    /// Every phase, in the order they run.
    pub const ALL: [Phase; 5] = [
        Phase::Baseline,
        Phase::Cuts,
        Phase::Gates,
        Phase::Chats,
        Phase::Nats,
    ];

    /// Its name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Baseline => "baseline",
            Phase::Cuts => "cuts",
            Phase::Gates => "gates",
            Phase::Chats => "chats",
            Phase::Nats => "nats",
        }
    }
}

impl std::str::FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Phase, String> {
        Phase::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("no phase {s:?} (baseline, cuts, gates, chats, nats)"))
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `longlink-chat` binary.
    pub chat_bin: PathBuf,
    /// The `nats-server` binary.
    pub nats_bin: PathBuf,
    /// Simulated users; user `i` has uid `1000 + i`, watches room `1 + i % rooms`, reaches
    /// gate `i % gates`, over TCP or WebSocket in turn.
    pub clients: usize,
    /// Rooms.
    pub rooms: usize,
    /// Gate nodes.
    pub gates: usize,
    /// Chat nodes.
    pub chat_nodes: usize,
    /// The cluster's encoding (one for every node).
    pub encoding: Encoding,
    /// Messages per second per user.
    pub rate: f64,
    /// The share of private messages.
    pub private_share: f64,
    /// How long the users chat in each phase (a restart phase spreads its restarts over it,
    /// and lasts at least as long as they take).
    pub phase_time: Duration,
    /// The phases to run, in order.
    pub phases: Vec<Phase>,
    /// The random cuts' budget: a connection is cut after this many bytes to the client.
    pub cut_bytes: (usize, usize),
    /// Random cuts stay on from the `cuts` phase to the end.
    pub cuts_throughout: bool,
    /// How long NATS stays down.
    pub nats_outage: Duration,
    /// At most this long after a phase, the checker waits for its messages to arrive.
    pub settle: Duration,
    /// TOML lines added to every gate's `[gate]` table.
    pub gate_settings: String,
    /// TOML lines added to every chat node's `[chat]` table.
    pub chat_settings: String,
    /// The chat's token secret.
    pub secret: String,
    /// Seeds the users' choices and the cuts.
    pub seed: u64,
    /// Where the nodes' configurations and logs go (kept); a temporary directory, removed at
    /// the end, if none.
    pub dir: Option<PathBuf>,
}

impl Options {
    /// A small run's options: 24 users in 4 rooms, 3 gates, 2 chat nodes, JSON, every phase,
    /// 4 s each; random cuts after 500 to 4,000 bytes.
    pub fn new(chat_bin: PathBuf, nats_bin: PathBuf) -> Options {
        Options {
            chat_bin,
            nats_bin,
            clients: 24,
            rooms: 4,
            gates: 3,
            chat_nodes: 2,
            encoding: Encoding::Json,
            rate: 2.0,
            private_share: 0.3,
            phase_time: Duration::from_secs(4),
            phases: Phase::ALL.to_vec(),
            cut_bytes: (500, 4_000),
            cuts_throughout: false,
            nats_outage: Duration::from_secs(2),
            settle: Duration::from_secs(6),
            gate_settings: String::new(),
            chat_settings: String::new(),
            secret: "longlink-dev-secret".into(),
            seed: 1,
            dir: None,
        }
    }
}
