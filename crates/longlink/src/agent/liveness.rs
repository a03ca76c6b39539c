//! [`Liveness`]: when a local connection's peer was last heard from, and its outstanding
//! WebSocket ping; read by the gate's sweep, written by the connection's task. Clocks are
//! milliseconds since the gate started.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub(crate) struct Liveness {
    /// When the peer last sent anything (a message or a control frame such as a pong): for
    /// the ping and its deadline.
    last_seen_ms: AtomicU64,
    /// When the peer last sent an application message: for `idle_timeout`.
    last_msg_ms: AtomicU64,
    /// A WebSocket ping is wanted (set by the sweep, taken by the connection's task).
    ping_wanted: AtomicBool,
    /// When the outstanding ping was asked for (0: none outstanding).
    ping_at_ms: AtomicU64,
    /// When the frame being received was begun (0: none is): for `read_timeout`.
    partial_at_ms: AtomicU64,
}

impl Liveness {
    pub(crate) fn new(now_ms: u64) -> Liveness {
        Liveness {
            last_seen_ms: AtomicU64::new(now_ms),
            last_msg_ms: AtomicU64::new(now_ms),
            ping_wanted: AtomicBool::new(false),
            ping_at_ms: AtomicU64::new(0),
            partial_at_ms: AtomicU64::new(0),
        }
    }

    /// The peer sent a control frame (a pong) at `now_ms`: it is alive.
    pub(crate) fn touch(&self, now_ms: u64) {
        self.last_seen_ms.store(now_ms, Ordering::Relaxed);
        self.ping_at_ms.store(0, Ordering::Relaxed);
    }

    /// The peer sent an application message at `now_ms`: alive, and not idle.
    pub(crate) fn touch_message(&self, now_ms: u64) {
        self.touch(now_ms);
        self.last_msg_ms.store(now_ms, Ordering::Relaxed);
    }

    /// A new socket serves the connection (a resumed session) at `now_ms`: alive, not idle,
    /// no ping outstanding.
    pub(crate) fn reset(&self, now_ms: u64) {
        self.touch_message(now_ms);
        self.ping_wanted.store(false, Ordering::Relaxed);
    }

    pub(crate) fn last_seen_ms(&self) -> u64 {
        self.last_seen_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn last_msg_ms(&self) -> u64 {
        self.last_msg_ms.load(Ordering::Relaxed)
    }

    /// Asks for a WebSocket ping unless one is outstanding; true if asked (wake the task).
    pub(crate) fn request_ping(&self, now_ms: u64) -> bool {
        let asked = self.ping_at_ms.compare_exchange(
            0,
            now_ms.max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if asked.is_ok() {
            self.ping_wanted.store(true, Ordering::Relaxed);
        }
        asked.is_ok()
    }

    /// When the outstanding ping was asked for, if one is.
    pub(crate) fn ping_outstanding_since(&self) -> Option<u64> {
        match self.ping_at_ms.load(Ordering::Relaxed) {
            0 => None,
            at => Some(at),
        }
    }

    /// Whether the reader holds part of a frame (`partial`), the time being `now_ms()`: the
    /// frame's deadline starts when it is begun and ends when no frame is partial.
    pub(crate) fn set_partial(&self, partial: bool, now_ms: impl FnOnce() -> u64) {
        let at = self.partial_at_ms.load(Ordering::Relaxed);
        if partial && at == 0 {
            self.partial_at_ms.store(now_ms().max(1), Ordering::Relaxed);
        } else if !partial && at != 0 {
            self.partial_at_ms.store(0, Ordering::Relaxed);
        }
    }

    /// When the frame being received was begun, if one is.
    pub(crate) fn partial_since(&self) -> Option<u64> {
        match self.partial_at_ms.load(Ordering::Relaxed) {
            0 => None,
            at => Some(at),
        }
    }

    /// Whether a ping is wanted (and no longer, once taken).
    pub(crate) fn take_ping(&self) -> bool {
        self.ping_wanted.swap(false, Ordering::Relaxed)
    }
}
