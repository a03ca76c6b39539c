//! [`Waiting`]: the resumable sessions whose socket is gone and that wait for their client
//! (`resume_window`), oldest first. Each keeps the place its connection held under
//! `max_conn_num` and `max_conn_per_ip` (its [`Slot`]) while it waits, and at most
//! `max_waiting_per_ip` of them wait for one address at once.
//!
//! Over a bound, a waiting session ends, never an attached connection: the oldest waiting one
//! from the same address first. Its wait ends as if its window had lapsed (its close event
//! fires, a late `LL_Resume` hears `"expired"`). A new connection that finds every place taken
//! ends the oldest waiting session, of its own address first, rather than being refused.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use super::accept::{Admission, Slot};

/// The sessions waiting for their client, on one gate.
pub(crate) struct Waiting {
    /// `max_waiting_per_ip`.
    max_per_ip: usize,
    table: Mutex<Table>,
}

/// One waiting session's entry.
struct Entry {
    ip: IpAddr,
    /// The place its connection held; given back when the entry drops.
    _slot: Slot,
    /// Cancelled to end the session's wait.
    end: CancellationToken,
}

#[derive(Default)]
struct Table {
    next: u64,
    /// Every waiting session by the order it began waiting, oldest first.
    all: BTreeMap<u64, Entry>,
    /// The waiting sessions of each address, oldest first.
    per_ip: HashMap<IpAddr, VecDeque<u64>>,
}

impl Waiting {
    /// At most `max_per_ip` (at least 1) waiting for one address.
    pub(crate) fn new(max_per_ip: usize) -> Waiting {
        Waiting {
            max_per_ip: max_per_ip.max(1),
            table: Mutex::default(),
        }
    }

    /// Sessions waiting now.
    pub(crate) fn len(&self) -> usize {
        self.lock().all.len()
    }

    /// Ends the wait of the oldest session waiting for `ip` (`None`: for any address), and
    /// gives its place back at once. False if none waits.
    pub(crate) fn end_oldest(&self, ip: Option<IpAddr>) -> bool {
        let oldest = self.lock().pop_oldest(ip);
        oldest.map(end).is_some()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Table {
    /// Takes out the oldest entry of `ip` (`None`: of any address).
    fn pop_oldest(&mut self, ip: Option<IpAddr>) -> Option<Entry> {
        let id = match ip {
            Some(ip) => self.per_ip.get(&ip).and_then(|ids| ids.front().copied()),
            None => self.all.keys().next().copied(),
        };
        self.remove(id?)
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.all.remove(&id)?;
        if let Some(ids) = self.per_ip.get_mut(&entry.ip) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.per_ip.remove(&entry.ip);
            }
        }
        Some(entry)
    }
}

impl Admission {
    /// A session from `ip` begins waiting for its client, keeping its connection's place
    /// (`slot`). With `max_waiting_per_ip` sessions already waiting for `ip`, the oldest of
    /// them ends first.
    pub(crate) fn wait(self: &Arc<Self>, slot: Slot, ip: IpAddr) -> WaitPlace {
        let waiting = self.waiting();
        let token = CancellationToken::new();
        let (id, pushed_out) = {
            let mut table = waiting.lock();
            let full = table
                .per_ip
                .get(&ip)
                .is_some_and(|ids| ids.len() >= waiting.max_per_ip);
            let pushed_out = if full {
                tracing::debug!(%ip, "max_waiting_per_ip reached");
                table.pop_oldest(Some(ip))
            } else {
                None
            };
            let id = table.next;
            table.next += 1;
            let entry = Entry {
                ip,
                _slot: slot,
                end: token.clone(),
            };
            table.all.insert(id, entry);
            table.per_ip.entry(ip).or_default().push_back(id);
            (id, pushed_out)
        };
        if let Some(entry) = pushed_out {
            end(entry);
        }
        WaitPlace {
            admission: Arc::clone(self),
            id,
            end: token,
        }
    }
}

/// Ends the wait of a session taken out of the table; its place is given back as `entry`
/// drops (outside the table's lock).
fn end(entry: Entry) {
    tracing::debug!(ip = %entry.ip, "a waiting session makes room: its wait ends");
    if let Some(m) = crate::metrics::resume() {
        m.evicted.increment(1);
    }
    entry.end.cancel();
}

/// A waiting session's entry among the waiting ones; dropping it (the wait is over: resumed,
/// expired or ended) gives its connection's place back.
pub(crate) struct WaitPlace {
    admission: Arc<Admission>,
    id: u64,
    end: CancellationToken,
}

impl WaitPlace {
    /// Cancelled when the session must stop waiting: a newer one took its room.
    pub(crate) fn ended(&self) -> &CancellationToken {
        &self.end
    }
}

impl Drop for WaitPlace {
    fn drop(&mut self) {
        let entry = self.admission.waiting().lock().remove(self.id);
        // The slot drops after the table's lock is released.
        drop(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn waits(admission: &Arc<Admission>, ip: IpAddr) -> WaitPlace {
        let slot = admission.try_slot(ip).expect("a place");
        admission.wait(slot, ip)
    }

    #[test]
    fn one_more_than_max_waiting_per_ip_ends_the_oldest_of_that_address() {
        let admission = Arc::new(Admission::new(100, 0, 25).with_waiting_per_ip(2));
        let a1 = waits(&admission, A);
        let b1 = waits(&admission, B);
        let a2 = waits(&admission, A);
        assert_eq!((admission.open(), admission.waiting().len()), (3, 3));
        let a3 = waits(&admission, A);
        assert!(a1.ended().is_cancelled(), "the oldest of A ends");
        assert!(![&b1, &a2, &a3].iter().any(|p| p.ended().is_cancelled()));
        // Its place is given back at once, before its task has seen the end.
        assert_eq!((admission.open(), admission.waiting().len()), (3, 3));
        drop(a1);
        drop(a2);
        assert_eq!((admission.open(), admission.waiting().len()), (2, 2));
    }

    #[test]
    fn a_new_connection_over_max_conn_num_ends_a_waiting_session_of_its_address_first() {
        let admission = Arc::new(Admission::new(3, 0, 25).with_waiting_per_ip(10));
        let a1 = waits(&admission, A);
        let b1 = waits(&admission, B);
        let _attached = admission.try_slot(A).expect("the third place");
        let _b = admission
            .try_slot(B)
            .expect("B's own waiting session makes room");
        assert!(b1.ended().is_cancelled() && !a1.ended().is_cancelled());
        let _c = admission.try_slot(B).expect("then any address's");
        assert!(a1.ended().is_cancelled());
        assert!(
            admission.try_slot(B).is_none(),
            "attached ones are never ended"
        );
        assert_eq!(admission.open(), 3);
    }

    #[test]
    fn a_new_connection_over_max_conn_per_ip_ends_only_its_own_address_waiting_sessions() {
        let admission = Arc::new(Admission::new(100, 2, 25).with_waiting_per_ip(10));
        let b1 = waits(&admission, B);
        let _a1 = admission.try_slot(A).expect("a place");
        let a2 = waits(&admission, A);
        let _a3 = admission
            .try_slot(A)
            .expect("A's waiting session makes room");
        assert!(a2.ended().is_cancelled() && !b1.ended().is_cancelled());
        assert!(admission.try_slot(A).is_none());
        assert!(!b1.ended().is_cancelled());
    }
}
