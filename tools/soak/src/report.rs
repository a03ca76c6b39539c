//! The checker: from the ledger, per phase, what became of every message and every client,
//! the guarantees each phase must keep, and the summary table (Markdown).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::Phase;
use crate::cluster::Restart;
use crate::ledger::{Book, Kind, Tally, distinct};

/// How many messages received by no one a phase lists.
const UNHEARD_LISTED: usize = 10;

/// The figures of one phase.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    /// The phase.
    pub phase: Option<Phase>,
    /// Room messages sent.
    pub sent_room: u64,
    /// Private messages sent.
    pub sent_private: u64,
    /// Room messages that every watcher of the room (the sender too) received exactly once.
    pub room_complete: u64,
    /// Private messages that their receiver received exactly once.
    pub private_once: u64,
    /// Messages that no one received.
    pub undelivered: u64,
    /// `S2C_Error`s answering a chat message (the sender was told).
    pub refused: u64,
    /// Per sender, messages no one received beyond the refusals it heard: lost without a
    /// word.
    pub silent: u64,
    /// Per sender, refusals beyond the messages no one received: told "refused", yet
    /// delivered.
    pub refused_but_delivered: u64,
    /// Receipts missing from room messages that other watchers received.
    pub missed: u64,
    /// Receipts beyond the first, room and private.
    pub duplicates: u64,
    /// Messages received out of their sender's order.
    pub out_of_order: u64,
    /// Clients' other counts, summed.
    pub sessions_lost: u64,
    /// Messages unacknowledged in lost sessions.
    pub unacked_lost: u64,
    /// Logins after the first.
    pub relogins: u64,
    /// `S2C_Kick`s.
    pub kicks: u64,
    /// `LL_Move`s heard.
    pub moves: u64,
    /// Connections dropped.
    pub drops: u64,
    /// Sessions resumed.
    pub resumes: u64,
    /// Other `S2C_Error`s.
    pub other_errors: u64,
    /// Messages received that were never sent, or garbled.
    pub strays: u64,
    /// Payloads a client could not decode.
    pub undecodable: u64,
    /// Clients whose task failed.
    pub failures: u64,
    /// The restarts of the phase.
    pub restarts: Vec<String>,
    /// The first messages (by their text) that no one received from senders with a silent
    /// loss: where to look in the nodes' logs.
    pub unheard: Vec<String>,
}

impl Figures {
    fn add(&mut self, t: &Tally) {
        self.refused += t.refused;
        self.sessions_lost += t.sessions_lost;
        self.unacked_lost += t.unacked_lost;
        self.relogins += t.relogins;
        self.kicks += t.kicks;
        self.moves += t.moves;
        self.drops += t.drops;
        self.resumes += t.resumes;
        self.other_errors += t.other_errors;
        self.strays += t.strays;
        self.undecodable += t.undecodable;
        self.out_of_order += t.out_of_order;
        self.failures += t.failures;
    }

    /// The guarantees this phase broke, each with its count. Every phase: each room message
    /// received once and in order by every watcher or by none, each private message once,
    /// and each message no one received refused to its sender (no silent loss, no refusal
    /// of a message that was delivered). A planned phase (all but `nats`) also loses no
    /// session and repeats no login.
    pub fn broken(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |what: &str, n: u64| {
            if n > 0 {
                out.push(format!("{what} {n}"));
            }
        };
        check("missed", self.missed);
        check("duplicated", self.duplicates);
        check("out of order", self.out_of_order);
        check("silent loss", self.silent);
        check("refused yet delivered", self.refused_but_delivered);
        check("strays", self.strays);
        check("client failures", self.failures);
        if self.phase != Some(Phase::Nats) {
            check("sessions lost", self.sessions_lost);
            check("logins repeated", self.relogins);
        }
        out
    }
}

/// The checker's result.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per phase, in the order run; the first is the start (logins and watches).
    pub phases: Vec<Figures>,
}

impl Report {
    pub(crate) fn new(book: &Book, phases: &[Option<Phase>], restarts: &[Vec<Restart>]) -> Report {
        let mut figures: Vec<Figures> = phases
            .iter()
            .zip(restarts)
            .map(|(&phase, r)| Figures {
                phase,
                restarts: r.iter().map(describe).collect(),
                ..Figures::default()
            })
            .collect();
        let mut undelivered: HashMap<(u64, usize), Vec<String>> = HashMap::new();
        for (&(from, n), sent) in &book.sent {
            let f = &mut figures[sent.phase];
            let (due, got) = (book.due(sent), distinct(&sent.receipts));
            f.duplicates += (sent.receipts.len() - got) as u64;
            match sent.kind {
                Kind::Room => f.sent_room += 1,
                Kind::Private => f.sent_private += 1,
            }
            if got == 0 {
                f.undelivered += 1;
                let text = crate::ledger::text(sent.kind, from, n);
                undelivered
                    .entry((from, sent.phase))
                    .or_default()
                    .push(text);
            } else if got < due {
                f.missed += (due - got) as u64;
            } else if sent.receipts.len() == got {
                match sent.kind {
                    Kind::Room => f.room_complete += 1,
                    Kind::Private => f.private_once += 1,
                }
            }
        }
        for (&(uid, phase), t) in &book.tallies {
            figures[phase].add(t);
            let texts = undelivered.remove(&(uid, phase)).unwrap_or_default();
            let lost = texts.len() as u64;
            figures[phase].silent += lost.saturating_sub(t.refused);
            figures[phase].refused_but_delivered += t.refused.saturating_sub(lost);
            if lost > t.refused {
                figures[phase].unheard.extend(texts);
            }
        }
        for ((_, phase), texts) in undelivered {
            figures[phase].silent += texts.len() as u64;
            figures[phase].unheard.extend(texts);
        }
        for f in &mut figures {
            f.unheard.sort();
            f.unheard.truncate(UNHEARD_LISTED);
        }
        Report { phases: figures }
    }

    /// The phases that broke a guarantee, with what they broke.
    pub fn broken(&self, phases: &[Phase]) -> Vec<String> {
        self.phases
            .iter()
            .filter(|f| f.phase.is_some_and(|p| phases.contains(&p)))
            .filter_map(|f| {
                let broken = f.broken();
                let name = f.phase.map_or("start", Phase::name);
                (!broken.is_empty()).then(|| format!("{name}: {}", broken.join(", ")))
            })
            .collect()
    }

    /// The summary as a Markdown table, then the restarts' timings.
    pub fn table(&self) -> String {
        let mut s = String::from(
            "| phase | sent (room + private) | room: all once, in order | private: once | \
             refused (error) | silent loss | missed | duplicated | out of order | sessions lost | \
             logins repeated | moves / drops / resumes | kicks / other errors / undecodable | verdict |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for f in &self.phases {
            let broken = f.broken();
            let verdict = if broken.is_empty() {
                "ok".to_owned()
            } else {
                broken.join("; ")
            };
            let _ = writeln!(
                s,
                "| {} | {} + {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} / {} / {} | {} |",
                f.phase.map_or("start", Phase::name),
                f.sent_room,
                f.sent_private,
                f.room_complete,
                f.private_once,
                f.refused,
                f.silent,
                f.missed,
                f.duplicates,
                f.out_of_order,
                f.sessions_lost,
                f.relogins,
                f.moves,
                f.drops,
                f.resumes,
                f.kicks,
                f.other_errors,
                f.undecodable,
                verdict
            );
        }
        for f in &self.phases {
            let name = f.phase.map_or("start", Phase::name);
            for r in &f.restarts {
                let _ = writeln!(s, "- {name}: {r}");
            }
            if !f.unheard.is_empty() {
                let _ = writeln!(s, "- {name}: received by no one: {}", f.unheard.join(", "));
            }
        }
        s
    }
}

fn describe(r: &Restart) -> String {
    if r.old == "nats" {
        return format!(
            "nats killed, serving again {:.1} s later",
            r.start.as_secs_f64()
        );
    }
    format!(
        "{} replaced: new node serving in {:.1} s, old one stopped in {:.1} s ({})",
        r.old,
        r.start.as_secs_f64(),
        r.stop.as_secs_f64(),
        r.exit
    )
}
