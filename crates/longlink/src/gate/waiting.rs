//! [`Waiting`]: the resumable sessions whose socket is gone and that wait for their client
//! (`resume_window`), oldest first. Each keeps the place its connection held under
//! `max_conn_num` and `max_conn_per_ip` (`admission`'s `Slot`, the table's `P`) while it
//! waits, and at most `max_waiting_per_ip` of them wait for one address at once.
//!
//! Over a bound, a waiting session ends, never an attached connection: the oldest waiting one
//! from the same address first. Its wait ends as if its window had lapsed (its close event
//! fires, a late `LL_Resume` hears `"expired"`). A new connection that finds every place taken
//! ends the oldest waiting session, of its own address first, rather than being refused.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

/// The sessions waiting for their client, on one gate, each with the place `P` it keeps.
pub(crate) struct Waiting<P> {
    /// `max_waiting_per_ip`.
    max_per_ip: usize,
    /// Set while the gate drains: it accepts nothing, so no address can add sessions, and
    /// the clients moving away must not push each other's sessions out.
    unbounded: AtomicBool,
    table: Mutex<Table<P>>,
}

/// One waiting session's entry.
struct Entry<P> {
    ip: IpAddr,
    /// The place its connection held; given back when the entry drops.
    place: P,
    /// Cancelled to end the session's wait.
    end: CancellationToken,
}

struct Table<P> {
    next: u64,
    /// Every waiting session by the order it began waiting, oldest first.
    all: BTreeMap<u64, Entry<P>>,
    /// The waiting sessions of each address, oldest first.
    per_ip: HashMap<IpAddr, VecDeque<u64>>,
}

impl<P> Waiting<P> {
    /// At most `max_per_ip` (at least 1) waiting for one address.
    pub(crate) fn new(max_per_ip: usize) -> Waiting<P> {
        Waiting {
            max_per_ip: max_per_ip.max(1),
            unbounded: AtomicBool::new(false),
            table: Mutex::new(Table {
                next: 0,
                all: BTreeMap::new(),
                per_ip: HashMap::new(),
            }),
        }
    }

    /// From now on no session is pushed out by `max_waiting_per_ip` (the gate drains).
    pub(crate) fn unbound(&self) {
        self.unbounded.store(true, Ordering::Release);
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

    /// A session from `ip` begins waiting for its client, keeping `place`: its number in the
    /// table and the token that ends its wait. With `max_waiting_per_ip` sessions already
    /// waiting for `ip`, the oldest of them ends first.
    pub(crate) fn insert(&self, place: P, ip: IpAddr) -> (u64, CancellationToken) {
        let token = CancellationToken::new();
        let (id, pushed_out) = {
            let mut table = self.lock();
            let full = !self.unbounded.load(Ordering::Acquire)
                && table
                    .per_ip
                    .get(&ip)
                    .is_some_and(|ids| ids.len() >= self.max_per_ip);
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
                place,
                end: token.clone(),
            };
            table.all.insert(id, entry);
            table.per_ip.entry(ip).or_default().push_back(id);
            (id, pushed_out)
        };
        if let Some(entry) = pushed_out {
            end(entry);
        }
        (id, token)
    }

    /// The wait of session `id` is over: its place, given back as it drops (after the
    /// table's lock is released).
    pub(crate) fn remove(&self, id: u64) -> Option<P> {
        let entry = self.lock().remove(id);
        entry.map(|e| e.place)
    }

    fn lock(&self) -> MutexGuard<'_, Table<P>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<P> Table<P> {
    /// Takes out the oldest entry of `ip` (`None`: of any address).
    fn pop_oldest(&mut self, ip: Option<IpAddr>) -> Option<Entry<P>> {
        let id = match ip {
            Some(ip) => self.per_ip.get(&ip).and_then(|ids| ids.front().copied()),
            None => self.all.keys().next().copied(),
        };
        self.remove(id?)
    }

    fn remove(&mut self, id: u64) -> Option<Entry<P>> {
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

/// Ends the wait of a session taken out of the table; its place is given back as `entry`
/// drops (outside the table's lock).
fn end<P>(entry: Entry<P>) {
    tracing::debug!(ip = %entry.ip, "a waiting session makes room: its wait ends");
    if let Some(m) = crate::metrics::resume() {
        m.evicted.increment(1);
    }
    entry.end.cancel();
}
