//! What every client sent and received, as the checker needs it: each chat message by its
//! sender and number (the text is `r<uid>:<n>` for a room, `p<uid>:<n>` for a private
//! message), who received it, and per client and phase the errors, kicks, lost sessions,
//! repeated logins and reconnections.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A room message or a private one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Room,
    Private,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Room => 'r',
            Kind::Private => 'p',
        }
    }
}

/// The text that carries a message's identity.
pub(crate) fn text(kind: Kind, from: u64, n: u64) -> String {
    format!("{}{from}:{n}", kind.letter())
}

/// The identity a text carries.
pub(crate) fn parse(text: &str) -> Option<(Kind, u64, u64)> {
    let kind = match text.chars().next()? {
        'r' => Kind::Room,
        'p' => Kind::Private,
        _ => return None,
    };
    let (from, n) = text[1..].split_once(':')?;
    Some((kind, from.parse().ok()?, n.parse().ok()?))
}

/// One message sent.
#[derive(Debug)]
pub(crate) struct Sent {
    /// The phase it was sent in.
    pub(crate) phase: usize,
    pub(crate) kind: Kind,
    /// The receiver of a private message; the room of a room message.
    pub(crate) to: u64,
    /// Who received it, once per receipt.
    pub(crate) receipts: Vec<u64>,
}

/// What happened to one client in one phase, beyond its messages.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    /// `S2C_Error` answering a `C2S_Message` (refused to the sender).
    pub(crate) refused: u64,
    /// Other `S2C_Error`s (a login or watch refused, say).
    pub(crate) other_errors: u64,
    /// `Event::SessionLost`.
    pub(crate) sessions_lost: u64,
    /// Messages sent in a lost session that the server had not acknowledged.
    pub(crate) unacked_lost: u64,
    /// Logins after the first.
    pub(crate) relogins: u64,
    /// `S2C_Kick`s.
    pub(crate) kicks: u64,
    /// `LL_Move`s heard (a stopping gate asked the client to move).
    pub(crate) moves: u64,
    /// Connections dropped (the first reconnection attempt of each drop).
    pub(crate) drops: u64,
    /// Sessions resumed.
    pub(crate) resumes: u64,
    /// Messages received from one sender (and kind) with a number not above the last.
    pub(crate) out_of_order: u64,
    /// Messages received that were never sent, or malformed.
    pub(crate) strays: u64,
    /// Payloads the client could not decode (a message it does not know).
    pub(crate) undecodable: u64,
    /// The client's task ended with an error.
    pub(crate) failures: u64,
}

/// Everything recorded; read by the checker through [`Ledger::lock`].
#[derive(Debug, Default)]
pub(crate) struct Book {
    /// The phase now.
    pub(crate) phase: usize,
    /// The users are told to chat (messages may be sent).
    pub(crate) chatting: bool,
    /// Every message, by sender and number.
    pub(crate) sent: HashMap<(u64, u64), Sent>,
    /// The last number received, by receiver, sender and kind.
    last: HashMap<(u64, u64, Kind), u64>,
    /// By client and phase.
    pub(crate) tallies: HashMap<(u64, usize), Tally>,
    /// Clients watching each room.
    pub(crate) members: HashMap<u64, usize>,
    /// Clients logged in and watching their room.
    pub(crate) ready: usize,
    /// The last words of clients that failed.
    pub(crate) failures: Vec<String>,
}

impl Book {
    /// The tally of `uid` in the current phase.
    pub(crate) fn tally(&mut self, uid: u64) -> &mut Tally {
        let phase = self.phase;
        self.tallies.entry((uid, phase)).or_default()
    }

    /// Receivers a message is due to.
    pub(crate) fn due(&self, sent: &Sent) -> usize {
        match sent.kind {
            Kind::Room => self.members.get(&sent.to).copied().unwrap_or(0),
            Kind::Private => 1,
        }
    }

    /// Of the messages sent in `phase`: per sender, those not yet received by everyone
    /// they are due to, less the refusals the sender heard; summed over senders. Zero once
    /// the phase's messages are all accounted for.
    pub(crate) fn outstanding(&self, phase: usize) -> u64 {
        let mut open: HashMap<u64, u64> = HashMap::new();
        for (&(from, _), sent) in &self.sent {
            if sent.phase == phase && distinct(&sent.receipts) < self.due(sent) {
                *open.entry(from).or_default() += 1;
            }
        }
        open.into_iter()
            .map(|(from, n)| {
                let refused = self.tallies.get(&(from, phase)).map_or(0, |t| t.refused);
                n.saturating_sub(refused)
            })
            .sum()
    }
}

/// How many different receivers.
pub(crate) fn distinct(receipts: &[u64]) -> usize {
    let mut r = receipts.to_vec();
    r.sort_unstable();
    r.dedup();
    r.len()
}

/// The shared record.
#[derive(Debug, Default)]
pub(crate) struct Ledger(Mutex<Book>);

impl Ledger {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Book> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A message about to be sent; `false` (not recorded, not to be sent) once the chat
    /// has stopped.
    pub(crate) fn sent(&self, from: u64, n: u64, kind: Kind, to: u64) -> bool {
        let mut book = self.lock();
        if !book.chatting {
            return false;
        }
        let phase = book.phase;
        let receipts = Vec::new();
        book.sent.insert(
            (from, n),
            Sent {
                phase,
                kind,
                to,
                receipts,
            },
        );
        true
    }

    /// The users may send from now on, or no more: a message recorded before the chat
    /// stopped is one the settling waits for, and none is recorded after.
    pub(crate) fn chatting(&self, on: bool) {
        self.lock().chatting = on;
    }

    /// A chat message received by `receiver`, with its text.
    pub(crate) fn received(&self, receiver: u64, from_uid: u64, text: &str) {
        let mut book = self.lock();
        let Some((kind, from, n)) = parse(text).filter(|&(_, from, _)| from == from_uid) else {
            book.tally(receiver).strays += 1;
            return;
        };
        match book.sent.get_mut(&(from, n)) {
            Some(sent) if sent.kind == kind => sent.receipts.push(receiver),
            _ => {
                book.tally(receiver).strays += 1;
                return;
            }
        }
        let last = book.last.entry((receiver, from, kind)).or_default();
        let in_order = n > *last;
        *last = (*last).max(n);
        if !in_order {
            book.tally(receiver).out_of_order += 1;
        }
    }

    /// Counts something for `uid` in the current phase.
    pub(crate) fn note(&self, uid: u64, f: impl FnOnce(&mut Tally)) {
        f(self.lock().tally(uid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_and_strangers_do_not_parse() {
        assert_eq!(parse(&text(Kind::Room, 7, 12)), Some((Kind::Room, 7, 12)));
        assert_eq!(
            parse(&text(Kind::Private, 1, 1)),
            Some((Kind::Private, 1, 1))
        );
        for bad in ["", "x1:2", "r1", "r:2", "r1:", "p1:x"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_duplicate_or_an_old_number_is_out_of_order_and_a_refusal_accounts_for_one() {
        let ledger = Ledger::default();
        ledger.lock().members.insert(1, 2);
        assert!(
            !ledger.sent(10, 1, Kind::Room, 1),
            "not while the chat is stopped"
        );
        ledger.chatting(true);
        ledger.sent(10, 1, Kind::Room, 1);
        ledger.sent(10, 2, Kind::Room, 1);
        ledger.received(11, 10, "r10:2");
        ledger.received(11, 10, "r10:1");
        ledger.received(11, 10, "r10:2");
        ledger.received(11, 99, "r10:2"); // the wrong sender
        let book = ledger.lock();
        assert_eq!(book.tallies[&(11, 0)].out_of_order, 2);
        assert_eq!(book.tallies[&(11, 0)].strays, 1);
        assert_eq!(book.outstanding(0), 2); // the sender's own copies are missing
        drop(book);
        ledger.received(10, 10, "r10:1");
        ledger.note(10, |t| t.refused += 1);
        assert_eq!(ledger.lock().outstanding(0), 0);
    }
}
