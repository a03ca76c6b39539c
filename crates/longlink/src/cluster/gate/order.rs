//! The order of one gate's numbered group broadcasts, per publisher: each is delivered in
//! its publisher's order, once. A number that is missing (this gate was not subscribed when
//! it went by: NATS restarting) holds those after it until the publisher has sent the
//! missing ones again (`cluster::replay`); what it no longer has, or what cannot be asked
//! for within `request_timeout`, is counted lost and the rest goes on.

use std::collections::{BTreeMap, HashMap};

use crate::cluster::groupseq::Num;
use crate::cluster::wire::ReplayAnswer;
use crate::codec::Encoded;

/// A broadcast to deliver: its number and group token.
pub(super) type Due = (Num, String, Encoded);

/// One publisher's state here.
struct Publisher {
    /// Everything numbered up to it has been delivered (or counted lost).
    mark: u64,
    node: String,
    /// Heard or sent again, waiting for a missing number before them.
    held: BTreeMap<u64, (String, Encoded)>,
    /// A request for missing numbers is under way.
    fetching: bool,
}

/// Ask `node` (publisher `src`) for everything after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fetch {
    pub(super) src: u64,
    pub(super) node: String,
    pub(super) after: u64,
}

/// What an event makes ready: broadcasts to deliver now (in order), how many are lost, and
/// a request to make.
#[derive(Default)]
pub(super) struct Ready {
    pub(super) due: Vec<Due>,
    pub(super) lost: u64,
    pub(super) fetch: Option<Fetch>,
}

/// Every publisher this gate has heard.
#[derive(Default)]
pub(super) struct Order {
    pubs: HashMap<u64, Publisher>,
}

impl Order {
    /// Per publisher, the last number delivered.
    pub(super) fn marks(&self) -> HashMap<u64, u64> {
        self.pubs.iter().map(|(src, p)| (*src, p.mark)).collect()
    }

    /// Per publisher that says where it is: its node and the last number delivered.
    pub(super) fn marks_by_node(&self) -> impl Iterator<Item = (u64, &str, u64)> + '_ {
        self.pubs
            .iter()
            .filter(|(_, p)| !p.node.is_empty())
            .map(|(src, p)| (*src, p.node.as_str(), p.mark))
    }

    pub(super) fn mark(&self, src: u64) -> Option<u64> {
        self.pubs.get(&src).map(|p| p.mark)
    }

    /// A broadcast heard live. The first heard of a publisher starts its count.
    pub(super) fn heard(&mut self, num: Num, token: &str, msg: &Encoded) -> Ready {
        let p = self.pubs.entry(num.src).or_insert_with(|| Publisher {
            mark: num.seq.saturating_sub(1),
            node: String::new(),
            held: BTreeMap::new(),
            fetching: false,
        });
        if !num.node.is_empty() {
            p.node.clone_from(&num.node);
        }
        let mut ready = Ready::default();
        if num.seq <= p.mark || p.held.contains_key(&num.seq) {
            return ready;
        }
        if num.seq == p.mark + 1 && p.held.is_empty() {
            p.mark = num.seq;
            ready.due.push((num, token.to_owned(), msg.clone()));
            return ready;
        }
        p.held.insert(num.seq, (token.to_owned(), msg.clone()));
        if p.node.is_empty() {
            // A publisher that does not say where it is cannot be asked.
            drain(num.src, p, u64::MAX, &mut ready);
        } else if !p.fetching {
            p.fetching = true;
            ready.fetch = Some(Fetch {
                src: num.src,
                node: p.node.clone(),
                after: p.mark,
            });
        }
        ready
    }

    /// The answer to a request for publisher `src` (`None`: none came in time).
    pub(super) fn answered(&mut self, src: u64, answer: Option<ReplayAnswer>) -> Ready {
        let mut ready = Ready::default();
        let Some(p) = self.pubs.get_mut(&src) else {
            return ready;
        };
        p.fetching = false;
        let held_last = p.held.last_key_value().map_or(0, |(k, _)| *k);
        let (lost_upto, more) = match answer {
            Some(a) if a.known => {
                let last_entry = a.entries.last().map(|e| e.seq);
                for e in a.entries {
                    if e.seq > p.mark {
                        let msg = Encoded::from_wire(e.payload);
                        p.held.entry(e.seq).or_insert((e.token, msg));
                    }
                }
                match last_entry {
                    Some(last) if a.more => (0, Some(last)),
                    _ => (a.last, None),
                }
            }
            // The node restarted (or is not the publisher): what it numbered is gone.
            Some(_) => (held_last, None),
            None => (held_last, None),
        };
        drain(src, p, lost_upto, &mut ready);
        if let Some(after) = more {
            p.fetching = true;
            ready.fetch = Some(Fetch {
                src,
                node: p.node.clone(),
                after,
            });
        } else if !p.held.is_empty() {
            p.fetching = true;
            ready.fetch = Some(Fetch {
                src,
                node: p.node.clone(),
                after: p.mark,
            });
        }
        ready
    }

    /// After this gate's NATS connection came back: ask every publisher that says where it
    /// is for what came after its mark (what it sent last may have gone by unheard).
    pub(super) fn sweep(&mut self) -> Vec<Fetch> {
        let mut out = Vec::new();
        for (src, p) in &mut self.pubs {
            if p.node.is_empty() || p.fetching {
                continue;
            }
            p.fetching = true;
            out.push(Fetch {
                src: *src,
                node: p.node.clone(),
                after: p.mark,
            });
        }
        out
    }

    /// Forgets a publisher that is gone for good (its node answered as another publisher).
    pub(super) fn forget_if_idle(&mut self, src: u64) {
        if self
            .pubs
            .get(&src)
            .is_some_and(|p| p.held.is_empty() && !p.fetching)
        {
            self.pubs.remove(&src);
        }
    }
}

/// Delivers `p`'s held broadcasts in order; a missing number up to `lost_upto` is counted
/// lost and passed.
fn drain(src: u64, p: &mut Publisher, lost_upto: u64, ready: &mut Ready) {
    while let Some(first) = p.held.first_key_value().map(|(k, _)| *k) {
        if first > p.mark + 1 {
            let passed = (first - 1).min(lost_upto);
            if passed <= p.mark {
                break;
            }
            ready.lost += passed - p.mark;
            p.mark = passed;
            continue;
        }
        let (token, msg) = p.held.remove(&first).expect("the first key is there");
        p.mark = first;
        let num = Num {
            src,
            seq: first,
            node: p.node.clone(),
        };
        ready.due.push((num, token, msg));
    }
    if p.held.is_empty() && lost_upto != u64::MAX && lost_upto > p.mark {
        ready.lost += lost_upto - p.mark;
        p.mark = lost_upto;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::wire::Replayed;
    use bytes::Bytes;

    fn num(seq: u64) -> Num {
        Num {
            src: 1,
            seq,
            node: "n1".into(),
        }
    }

    fn msg(seq: u64) -> Encoded {
        Encoded::from_wire(Bytes::from(seq.to_string()))
    }

    fn seqs(r: &Ready) -> Vec<u64> {
        r.due.iter().map(|(n, _, _)| n.seq).collect()
    }

    fn answer(last: u64, entries: &[u64]) -> Option<ReplayAnswer> {
        Some(ReplayAnswer {
            known: true,
            last,
            more: false,
            entries: entries
                .iter()
                .map(|&seq| Replayed {
                    seq,
                    token: "t".into(),
                    payload: Bytes::from(seq.to_string()),
                })
                .collect(),
        })
    }

    #[test]
    fn a_gap_holds_what_follows_until_it_is_filled_in_order_once() {
        let mut o = Order::default();
        assert_eq!(seqs(&o.heard(num(5), "t", &msg(5))), [5]);
        assert!(o.heard(num(5), "t", &msg(5)).due.is_empty(), "a duplicate");
        let r = o.heard(num(8), "t", &msg(8));
        assert!(r.due.is_empty());
        let fetch = r.fetch.expect("the missing ones are asked for");
        assert_eq!((fetch.node.as_str(), fetch.after), ("n1", 5));
        let r = o.heard(num(9), "t", &msg(9));
        assert!(
            r.due.is_empty() && r.fetch.is_none(),
            "one request at a time"
        );
        let r = o.answered(1, answer(9, &[6, 7, 8, 9]));
        assert_eq!(seqs(&r), [6, 7, 8, 9]);
        assert_eq!((r.lost, r.fetch), (0, None));
        assert_eq!(o.mark(1), Some(9));
        assert!(
            o.heard(num(7), "t", &msg(7)).due.is_empty(),
            "sent again and late"
        );
    }

    #[test]
    fn what_the_publisher_no_longer_has_is_counted_lost() {
        let mut o = Order::default();
        o.heard(num(1), "t", &msg(1));
        o.heard(num(10), "t", &msg(10));
        // It keeps only 8 and after: 2 to 7 are lost.
        let r = o.answered(1, answer(10, &[8, 9, 10]));
        assert_eq!(seqs(&r), [8, 9, 10]);
        assert_eq!(r.lost, 6);
        // No answer: what waits goes on, the gap counted lost.
        o.heard(num(13), "t", &msg(13));
        let r = o.answered(1, None);
        assert_eq!((seqs(&r), r.lost), (vec![13], 2));
    }

    #[test]
    fn a_sweep_asks_for_what_came_after_the_last_delivered() {
        let mut o = Order::default();
        o.heard(num(3), "t", &msg(3));
        let fetches = o.sweep();
        assert_eq!(fetches.len(), 1);
        assert_eq!(fetches[0].after, 3);
        assert!(o.sweep().is_empty(), "already asking");
        let r = o.answered(1, answer(5, &[4, 5]));
        assert_eq!((seqs(&r), r.lost), (vec![4, 5], 0));
        // Nothing new, nothing lost.
        o.sweep();
        let r = o.answered(1, answer(5, &[]));
        assert_eq!((r.due.len(), r.lost), (0, 0));
    }
}
