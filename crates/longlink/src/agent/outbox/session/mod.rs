//! [`Numbering`]: the outgoing queue of a resumable session (the resume protocol of
//! [`longlink_wire::resume`]). Written messages stay in the queue, numbered, until the client
//! acknowledges them, so that a client which comes back on a new socket gets every one it
//! missed, in order. It lives inside the [`Outbox`](super::outbox::Outbox)'s lock: numbers,
//! writes and acknowledgements never race.
//!
//! The queue's items, oldest first: `sent` written and not yet acknowledged (numbers
//! `first_seq ..`), then the unwritten ones. Protocol messages (`LL_Session`, `LL_Ack`, ...)
//! go in `control`, written before anything queued and never numbered. A session that
//! changes socket (a resume, a hand-over to another gate) is in `resume`; a hand-over's
//! copy, and the letting go once the other gate has all of it, in `transfer`.

use super::items::Items;
use std::num::NonZeroU64;
use std::sync::Arc;

use bytes::Bytes;

use super::{Outbox, Queue, State};

mod resume;
mod transfer;

/// Every how many client messages the server acknowledges without waiting for the timer.
pub(super) const ACK_EVERY: u64 = 16;

/// The numbering state of one resumable session.
pub(super) struct Numbering {
    /// The number of the queue's first item.
    pub(super) first_seq: u64,
    /// Items at the front already handed to a socket (kept until acknowledged).
    pub(super) sent: usize,
    /// `resume_buffer`: most messages kept (written and not acknowledged, plus unwritten).
    pub(super) limit: usize,
    /// Protocol messages: written before the queue, never numbered.
    pub(super) control: Vec<Bytes>,
    /// The socket that serves the session (a number unique in the process); `None` while
    /// the session waits for its client.
    pub(super) socket: Option<NonZeroU64>,
    /// Client application messages handled.
    pub(super) in_seq: u64,
    /// The last `in_seq` acknowledged to the client.
    pub(super) acked_in: u64,
    /// More than `limit` messages waited: the session must end.
    pub(super) overflowed: bool,
    /// The socket is to be dropped (idle or ping timeout), the session kept.
    pub(super) drop_socket: bool,
    /// Handed over to another gate: nothing of it is here any more.
    pub(super) handed_over: bool,
    /// Held by the task that serves the session; a resume waits for it.
    pub(super) driving: Arc<tokio::sync::Mutex<()>>,
}

/// What a connection's task learns of its session at a wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionCheck {
    /// No resumable session.
    None,
    /// The session is this socket's; nothing to do.
    Mine,
    /// Another socket took the session over: stop serving it, quietly.
    TakenOver,
    /// Too many messages waited: end the session (the connection may go on).
    Overflowed,
    /// Drop the socket, keep the session (an idle or ping timeout).
    DropSocket,
}

impl Numbering {
    pub(super) fn new(limit: usize, socket: NonZeroU64, control: Option<Bytes>) -> Numbering {
        Numbering {
            first_seq: 1,
            sent: 0,
            limit,
            control: control.into_iter().collect(),
            socket: Some(socket),
            in_seq: 0,
            acked_in: 0,
            overflowed: false,
            drop_socket: false,
            handed_over: false,
            driving: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub(super) fn check(&self, socket: NonZeroU64) -> SessionCheck {
        if self.socket != Some(socket) {
            SessionCheck::TakenOver
        } else if self.overflowed {
            SessionCheck::Overflowed
        } else if self.drop_socket {
            SessionCheck::DropSocket
        } else {
            SessionCheck::Mine
        }
    }

    /// Drops the items the client has, up to `seq` (never more than were written).
    pub(super) fn ack(&mut self, items: &mut Items, seq: u64) {
        if seq < self.first_seq {
            return;
        }
        let covered = usize::try_from(seq - self.first_seq + 1).unwrap_or(usize::MAX);
        let n = covered.min(self.sent);
        items.drop_front(n);
        self.first_seq += n as u64;
        self.sent -= n;
    }
}

/// What a session without a socket learns at a wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detached {
    /// Still waiting for its client.
    Waiting,
    /// A new socket took it over.
    Resumed,
    /// It ended: closed or destroyed.
    Ended,
    /// It ended: more than `resume_buffer` messages waited.
    Overflowed,
}

/// A number for each socket that serves a session, unique in the process.
pub(crate) fn next_socket() -> NonZeroU64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // Counting up from 1, a u64 does not come back to 0 in the life of a process.
    NonZeroU64::new(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
        .unwrap_or(NonZeroU64::MAX)
}

impl Outbox {
    /// Makes the connection's session resumable, served by `socket`: `control` (the
    /// `LL_Session` answer) goes out next, then everything queued, numbered from 1. False if
    /// it already is (or the connection is closing).
    pub(crate) fn start_session(
        &self,
        limit: usize,
        socket: NonZeroU64,
        control: Option<Bytes>,
    ) -> bool {
        let mut q = self.lock();
        if q.session.is_some() || self.state() != State::Open {
            return false;
        }
        q.session = Some(Box::new(Numbering::new(limit, socket, control)));
        drop(q);
        self.wake.raise();
        true
    }

    /// Whether the connection has a resumable session.
    pub(crate) fn has_session(&self) -> bool {
        self.lock().session.is_some()
    }

    /// Whether the connection has a resumable session served by a socket.
    pub(crate) fn session_attached(&self) -> bool {
        self.lock()
            .session
            .as_ref()
            .is_some_and(|n| n.socket.is_some() && !n.handed_over)
    }

    /// Queues a protocol message for the socket serving the session, if one does (a
    /// session waiting for its client gets nothing). False if none does.
    pub(crate) fn push_control_attached(&self, payload: Bytes) -> bool {
        let mut q = self.lock();
        let open = self.state() == State::Open;
        match &mut q.session {
            Some(n) if open && n.socket.is_some() && !n.handed_over => n.control.push(payload),
            _ => return false,
        }
        drop(q);
        self.wake.raise();
        true
    }

    /// Queues a protocol message: before anything queued, never numbered (without a
    /// session: at the end of the queue, past its bound: they are few).
    pub(crate) fn push_control(&self, payload: Bytes) {
        let mut q = self.lock();
        if self.state() == State::Destroyed {
            return;
        }
        match &mut q.session {
            Some(n) => n.control.push(payload),
            None => q.items.push_back(payload),
        }
        drop(q);
        self.wake.raise();
    }

    /// What the task serving the session through `socket` must do now.
    pub(crate) fn check_session(&self, socket: NonZeroU64) -> SessionCheck {
        self.lock()
            .session
            .as_ref()
            .map_or(SessionCheck::None, |n| n.check(socket))
    }

    /// Counts one client application message read from `socket`. `Err(())`: the socket no
    /// longer serves the session (drop the message: the client sends it again). `Ok(Some(seq))`:
    /// an acknowledgement is due, up to `seq`.
    pub(crate) fn count_incoming(&self, socket: NonZeroU64) -> Result<Option<u64>, ()> {
        let mut q = self.lock();
        let Some(n) = &mut q.session else {
            return Ok(None);
        };
        if n.socket != Some(socket) {
            return Err(());
        }
        n.in_seq += 1;
        if n.in_seq - n.acked_in >= ACK_EVERY {
            n.acked_in = n.in_seq;
            return Ok(Some(n.in_seq));
        }
        Ok(None)
    }

    /// An acknowledgement of client messages, if one is due (for the timer).
    pub(crate) fn due_ack(&self) -> Option<u64> {
        let mut q = self.lock();
        let n = q.session.as_mut().filter(|n| n.socket.is_some())?;
        (n.in_seq > n.acked_in).then(|| {
            n.acked_in = n.in_seq;
            n.in_seq
        })
    }

    /// The client has every message up to `seq`: forget them.
    pub(crate) fn ack(&self, seq: u64) {
        let mut q = self.lock();
        let Queue { items, session, .. } = &mut *q;
        if let Some(n) = session {
            n.ack(items, seq);
        }
    }

    /// The socket `socket` is gone; the session waits for its client. False if the session
    /// is not (or no longer) that socket's.
    pub(crate) fn detach(&self, socket: NonZeroU64) -> bool {
        let mut q = self.lock();
        let open = self.state() == State::Open;
        let Queue { items, session, .. } = &mut *q;
        match session {
            Some(n) if n.socket == Some(socket) && !n.overflowed && open => {
                n.socket = None;
                n.drop_socket = false;
                n.control = Vec::new();
                // Volatile payloads are not kept for a client away from its socket.
                items.drop_volatile(n.sent);
                true
            }
            _ => false,
        }
    }

    /// Closes gracefully, unless another socket took the session over from `socket` (`None`:
    /// the connection has no session): then it leaves the session alone and says false.
    pub(crate) fn close_from(&self, socket: Option<NonZeroU64>) -> bool {
        let mut q = self.lock();
        if socket.is_some() && q.session.as_ref().is_some_and(|n| n.socket != socket) {
            return false;
        }
        if self.state() == State::Open {
            self.set_state(&mut q, State::Closing);
            drop(q);
            self.wake.raise();
        }
        true
    }

    /// Asks the serving task to drop its socket and keep the session (an idle or ping
    /// timeout). False if there is no session served by a socket.
    pub(crate) fn request_drop_socket(&self) -> bool {
        let mut q = self.lock();
        let open = self.state() == State::Open;
        match &mut q.session {
            Some(n) if n.socket.is_some() && !n.overflowed && open => {
                n.drop_socket = true;
                drop(q);
                self.wake.raise();
                true
            }
            _ => false,
        }
    }

    /// A session without a socket, at a wake-up: still waiting, resumed, or ended.
    pub(crate) fn detached(&self) -> Detached {
        let q = self.lock();
        match &q.session {
            Some(n) if n.handed_over => Detached::Resumed,
            Some(n) if n.overflowed => Detached::Overflowed,
            _ if self.state() != State::Open => Detached::Ended,
            Some(n) if n.socket.is_none() => Detached::Waiting,
            Some(_) => Detached::Resumed,
            None => Detached::Ended,
        }
    }

    /// Ends a session still waiting for its client (its window lapsed): the queue is
    /// dropped. False if a socket took it over first (or it had ended).
    pub(crate) fn expire(&self) -> bool {
        let mut q = self.lock();
        if self.state() != State::Open || q.session.as_ref().is_none_or(|n| n.socket.is_some()) {
            return false;
        }
        self.set_state(&mut q, State::Destroyed);
        q.items.clear();
        true
    }

    /// Ends the session but keeps the connection (it went over `resume_buffer` while
    /// served): written payloads are forgotten, unwritten ones stay queued, `notice`
    /// (`LL_ResumeRefused`) goes out first. False if there was no session.
    pub(crate) fn end_session(&self, notice: Option<Bytes>) -> bool {
        let mut q = self.lock();
        let Queue { items, session, .. } = &mut *q;
        let Some(n) = session.take() else {
            return false;
        };
        items.drop_front(n.sent);
        for c in n.control.into_iter().chain(notice).rev() {
            items.push_front(c);
        }
        drop(q);
        self.wake.raise();
        true
    }
}
