//! [`Admission`]: the places under `max_conn_num` and `max_conn_per_ip` that every
//! connection holds until its socket is closed ([`Slot`]; a resumable session keeps it
//! while it waits for its client: [`WaitPlace`]), those under `handshake_share`
//! that a connection holds while in its handshake (TLS, the WebSocket upgrade;
//! [`HandshakePlace`]), and the capped answers of 503 to WebSocket upgrades over the limit
//! ([`Refusal`]).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use super::waiting::Waiting;
use crate::metrics::{Reject, reject};

/// Most WebSocket upgrades answered with 503 at once.
const MAX_REFUSING: usize = 64;

/// The connection limits of one gate.
pub(crate) struct Admission {
    /// `max_conn_num`: one count across both listeners.
    max_conn_num: usize,
    /// Places taken (handshakes in progress included).
    open: AtomicUsize,
    /// `max_conn_per_ip` (0: off).
    max_conn_per_ip: usize,
    /// Places taken per address, when `max_conn_per_ip` is on.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// WebSocket handshakes being answered with 503 (over the limit), themselves capped.
    refusing: Arc<AtomicUsize>,
    /// Most handshakes in progress at once: `handshake_share` percent of `max_conn_num`.
    max_handshakes: usize,
    /// The handshakes in progress.
    handshakes: Mutex<Handshakes>,
    /// The sessions waiting for their client, each holding its connection's place.
    waiting: Waiting<Slot>,
}

/// Which bound a new connection found full.
#[derive(Debug, Clone, Copy)]
enum Full {
    /// `max_conn_num`.
    Total,
    /// `max_conn_per_ip`.
    PerIp,
}

/// The handshakes in progress, oldest first, each with the token that ends it.
#[derive(Default)]
struct Handshakes {
    next: u64,
    pending: BTreeMap<u64, CancellationToken>,
}

impl Admission {
    pub(crate) fn new(
        max_conn_num: usize,
        max_conn_per_ip: usize,
        handshake_share: u8,
    ) -> Admission {
        let max_handshakes = max_conn_num.saturating_mul(handshake_share.into()) / 100;
        Admission {
            max_conn_num,
            open: AtomicUsize::new(0),
            max_conn_per_ip,
            per_ip: Mutex::new(HashMap::new()),
            refusing: Arc::new(AtomicUsize::new(0)),
            max_handshakes: max_handshakes.max(1),
            handshakes: Mutex::new(Handshakes::default()),
            // No bound of its own until `with_waiting_per_ip` sets `max_waiting_per_ip`.
            waiting: Waiting::new(usize::MAX),
        }
    }

    /// At most `max_waiting_per_ip` sessions wait for their client from one address.
    pub(crate) fn with_waiting_per_ip(mut self, max_waiting_per_ip: usize) -> Admission {
        self.waiting = Waiting::new(max_waiting_per_ip);
        self
    }

    /// The sessions waiting for their client.
    pub(crate) fn waiting(&self) -> &Waiting<Slot> {
        &self.waiting
    }

    /// A place among the handshakes in progress, ended with the gate (`shutdown`) or when
    /// pushed out. When every place is taken, the oldest handshake is ended to make room:
    /// sockets that connect and say nothing hold at most `handshake_share` of `max_conn_num`
    /// (and their memory), and cannot keep a real client, whose handshake takes a round
    /// trip, from connecting (one that refused newcomers instead could be shut out by a few
    /// silent sockets renewed every `http_timeout`).
    pub(super) fn handshake(self: &Arc<Self>, shutdown: &CancellationToken) -> HandshakePlace {
        let token = shutdown.child_token();
        let (id, oldest) = {
            let mut h = self.lock_handshakes();
            let oldest = if h.pending.len() >= self.max_handshakes {
                h.pending.pop_first().map(|(_, t)| t)
            } else {
                None
            };
            let id = h.next;
            h.next += 1;
            h.pending.insert(id, token.clone());
            (id, oldest)
        };
        if let Some(oldest) = oldest {
            tracing::debug!("too many handshakes in progress: the oldest is ended");
            reject(Reject::Handshakes);
            oldest.cancel();
        }
        HandshakePlace {
            admission: Arc::clone(self),
            id,
            token,
        }
    }

    fn lock_handshakes(&self) -> MutexGuard<'_, Handshakes> {
        self.handshakes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Places taken under `max_conn_num`.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Takes a place under `max_conn_num`, or `None` when full; and under `max_conn_per_ip`
    /// for `ip`, unless the address is not known yet (`None`: see [`settle`](Self::settle)).
    /// Never overshoots, however many accepts race. When every place is taken but some by
    /// sessions waiting for their client, the oldest of those ends (of `ip` first) and gives
    /// its place to this connection.
    pub(super) fn try_slot(self: &Arc<Self>, ip: Option<IpAddr>) -> Option<Slot> {
        // Each turn ends one waiting session; a few suffice unless other accepts race.
        for _ in 0..4 {
            let full = match self.try_place(ip) {
                Ok(slot) => return Some(slot),
                Err(full) => full,
            };
            let made_room = match full {
                Full::PerIp => self.waiting.end_oldest(ip),
                Full::Total => {
                    (ip.is_some() && self.waiting.end_oldest(ip)) || self.waiting.end_oldest(None)
                }
            };
            if !made_room {
                return self.refuse(ip, full);
            }
        }
        self.try_place(ip)
            .map_or_else(|full| self.refuse(ip, full), Some)
    }

    /// Counts `slot`, taken before its address was known, under `max_conn_per_ip` for `ip`
    /// (ending that address's oldest waiting sessions as [`try_slot`](Self::try_slot) does);
    /// false when the address has no place left (the slot then gives back only its place
    /// under `max_conn_num`). A slot already counted stays as it is.
    pub(super) fn settle(&self, slot: &mut Slot, ip: IpAddr) -> bool {
        if self.max_conn_per_ip == 0 || slot.ip.is_some() {
            return true;
        }
        for _ in 0..4 {
            if self.try_ip(ip) {
                slot.ip = Some(ip);
                return true;
            }
            if !self.waiting.end_oldest(Some(ip)) {
                break;
            }
        }
        self.refuse(Some(ip), Full::PerIp);
        false
    }

    /// Takes a place under `max_conn_num` and (for a known `ip`) `max_conn_per_ip`, or says
    /// which is full.
    fn try_place(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Slot, Full> {
        if !try_increment(&self.open, self.max_conn_num) {
            return Err(Full::Total);
        }
        // From here on the slot gives the global place back when dropped.
        let mut slot = Slot {
            admission: Arc::clone(self),
            ip: None,
        };
        if let Some(ip) = ip.filter(|_| self.max_conn_per_ip > 0) {
            if !self.try_ip(ip) {
                return Err(Full::PerIp);
            }
            slot.ip = Some(ip);
        }
        Ok(slot)
    }

    /// Takes a place under `max_conn_per_ip` for `ip`, if one is left.
    fn try_ip(&self, ip: IpAddr) -> bool {
        let mut per_ip = self.lock_per_ip();
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= self.max_conn_per_ip {
            return false;
        }
        *n += 1;
        true
    }

    /// A new connection from `ip` is refused: `full` is taken by attached connections.
    fn refuse(&self, ip: Option<IpAddr>, full: Full) -> Option<Slot> {
        match full {
            Full::Total => reject(Reject::MaxConn),
            Full::PerIp => {
                tracing::debug!(ip = ?ip, "too many connections from this address");
                reject(Reject::PerIp);
            }
        }
        None
    }

    /// A session from `ip` begins waiting for its client, keeping its connection's place
    /// (`slot`). With `max_waiting_per_ip` sessions already waiting for `ip`, the oldest of
    /// them ends first.
    pub(crate) fn wait(self: &Arc<Self>, slot: Slot, ip: IpAddr) -> WaitPlace {
        let (id, end) = self.waiting.insert(slot, ip);
        WaitPlace {
            admission: Arc::clone(self),
            id,
            end,
        }
    }

    /// A place among the WebSocket upgrades being answered with 503, or `None` when
    /// [`MAX_REFUSING`] are.
    pub(super) fn refusal(&self) -> Option<Refusal> {
        Refusal::take(&self.refusing)
    }

    fn lock_per_ip(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_ip.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connection's place under `max_conn_num`; dropping it frees the place.
pub(crate) struct Slot {
    admission: Arc<Admission>,
    /// Counted under `max_conn_per_ip` too.
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut per_ip = self.admission.lock_per_ip();
            if let Some(n) = per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        self.admission.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's place among the handshakes in progress; dropping it (the handshake is
/// over) frees the place.
pub(crate) struct HandshakePlace {
    admission: Arc<Admission>,
    id: u64,
    /// Cancelled when the gate stops or a newer handshake takes this place.
    token: CancellationToken,
}

impl HandshakePlace {
    /// Cancelled when the handshake must end: the gate stops, or it was pushed out.
    pub(super) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl Drop for HandshakePlace {
    fn drop(&mut self) {
        self.admission.lock_handshakes().pending.remove(&self.id);
    }
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
        // The slot drops after the table's lock is released.
        drop(self.admission.waiting.remove(self.id));
    }
}

/// Adds one to `counter` unless it has reached `max`; never overshoots, however many race.
fn try_increment(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

/// A place among the handshakes being refused; dropping it frees the place.
pub(super) struct Refusal(Arc<AtomicUsize>);

impl Refusal {
    fn take(counter: &Arc<AtomicUsize>) -> Option<Refusal> {
        try_increment(counter, MAX_REFUSING).then(|| Refusal(Arc::clone(counter)))
    }
}

impl Drop for Refusal {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests;
