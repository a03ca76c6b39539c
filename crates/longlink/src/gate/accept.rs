//! Accepting: one loop per listener, and [`Admission`], the places under `max_conn_num` and
//! `max_conn_per_ip` that every connection holds until its socket is closed (or, for a
//! resumable session, until it stops waiting for its client: see `waiting`), and those under
//! `handshake_share` that a connection holds while in its handshake (TLS, the WebSocket
//! upgrade).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::handshake::{Bounds, handshake_then_serve, tls_tcp, ws_handshake};
use super::stream::Halves;
use super::waiting::Waiting;
use super::{Shared, conn};
use crate::agent::Transport;
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
    waiting: Waiting,
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
    pub(crate) fn waiting(&self) -> &Waiting {
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

    /// Takes a place under `max_conn_num`, or `None` when full. Never overshoots, however many
    /// accepts race. When every place is taken but some by sessions waiting for their client,
    /// the oldest of those ends (of `ip` first) and gives its place to this connection.
    pub(super) fn try_slot(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        // Each turn ends one waiting session; a few suffice unless other accepts race.
        for _ in 0..4 {
            let full = match self.try_place(ip) {
                Ok(slot) => return Some(slot),
                Err(full) => full,
            };
            let made_room = match full {
                Full::PerIp => self.waiting.end_oldest(Some(ip)),
                Full::Total => self.waiting.end_oldest(Some(ip)) || self.waiting.end_oldest(None),
            };
            if !made_room {
                return self.refuse(ip, full);
            }
        }
        self.try_place(ip)
            .map_or_else(|full| self.refuse(ip, full), Some)
    }

    /// Takes a place under `max_conn_num` and `max_conn_per_ip`, or says which is full.
    fn try_place(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Full> {
        if !try_increment(&self.open, self.max_conn_num) {
            return Err(Full::Total);
        }
        // From here on the slot gives the global place back when dropped.
        let mut slot = Slot {
            admission: Arc::clone(self),
            ip: None,
        };
        if self.max_conn_per_ip > 0 {
            let mut per_ip = self.lock_per_ip();
            let n = per_ip.entry(ip).or_insert(0);
            if *n >= self.max_conn_per_ip {
                return Err(Full::PerIp);
            }
            *n += 1;
            slot.ip = Some(ip);
        }
        Ok(slot)
    }

    /// A new connection from `ip` is refused: `full` is taken by attached connections.
    fn refuse(&self, ip: IpAddr, full: Full) -> Option<Slot> {
        match full {
            Full::Total => reject(Reject::MaxConn),
            Full::PerIp => {
                tracing::debug!(%ip, "too many connections from this address");
                reject(Reject::PerIp);
            }
        }
        None
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

/// Accepts until the gate stops; each connection gets its place, then its task.
pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, transport: Transport) {
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => {
                backoff = Duration::ZERO;
                pair
            }
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait and retry
                // (leaf: 5 ms doubling up to 1 s).
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                tracing::warn!(error = %e, retry_in = ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if !shared.tcp_keepalive.is_zero() {
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(shared.tcp_keepalive)
                .with_interval(shared.tcp_keepalive);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        }
        let slot = shared.admission.try_slot(remote.ip());
        match transport {
            Transport::Tcp => {
                let Some(slot) = slot else {
                    tracing::debug!(%remote, "too many connections");
                    drop(stream);
                    continue;
                };
                let local = stream.local_addr().unwrap_or(remote);
                if let Some(acceptor) = shared.tls_tcp.clone() {
                    let place = shared.admission.handshake(&shared.shutdown);
                    let bounds = Bounds::new(&shared, place.token().clone());
                    let handshake = tls_tcp(
                        Arc::clone(&shared),
                        acceptor,
                        stream,
                        (local, remote),
                        bounds,
                    );
                    shared
                        .tracker
                        .spawn(handshake_then_serve(handshake, slot, place));
                    continue;
                }
                let agent = shared.new_agent(Transport::Tcp, local, remote);
                let (reader, writer) = stream.halves(shared.frames, shared.frames, &[]);
                conn::spawn(Arc::clone(&shared), agent, reader, writer, slot);
            }
            Transport::Ws => {
                // Over the limit, a client gets a polite 503, but only so many at once: a
                // flood of refused upgrades must not hold sockets open up to http_timeout.
                let admitted = match slot {
                    Some(slot) => Ok((slot, shared.admission.handshake(&shared.shutdown))),
                    None => match Refusal::take(&shared.admission.refusing) {
                        Some(r) => Err(r),
                        None => {
                            tracing::debug!(%remote, "too many connections");
                            continue;
                        }
                    },
                };
                let handshake = ws_handshake(Arc::clone(&shared), stream, remote, admitted);
                shared.tracker.spawn(handshake);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_handshake_over_the_share_pushes_out_the_oldest() {
        let shutdown = CancellationToken::new();
        // 25 % of 8: two places.
        let admission = Arc::new(Admission::new(8, 0, 25));
        let a = admission.handshake(&shutdown);
        let b = admission.handshake(&shutdown);
        assert!(!a.token().is_cancelled() && !b.token().is_cancelled());
        let c = admission.handshake(&shutdown);
        assert!(a.token().is_cancelled(), "the oldest is pushed out");
        assert!(!b.token().is_cancelled() && !c.token().is_cancelled());
        // A finished handshake gives its place back: nobody is pushed out.
        drop(b);
        let d = admission.handshake(&shutdown);
        assert!(!c.token().is_cancelled() && !d.token().is_cancelled());
        // The gate's stop ends them all.
        shutdown.cancel();
        assert!(c.token().is_cancelled() && d.token().is_cancelled());
    }

    #[test]
    fn the_share_is_at_least_one_place() {
        let shutdown = CancellationToken::new();
        let admission = Arc::new(Admission::new(2, 0, 25));
        let a = admission.handshake(&shutdown);
        let b = admission.handshake(&shutdown);
        assert!(a.token().is_cancelled() && !b.token().is_cancelled());
        assert_eq!(Admission::new(10_000, 0, 25).max_handshakes, 2_500);
        assert_eq!(
            Admission::new(usize::MAX, 0, 100).max_handshakes,
            usize::MAX / 100
        );
    }
}
