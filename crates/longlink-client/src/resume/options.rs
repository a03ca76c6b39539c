//! What an application sets and hears of a [`ResumableClient`](super::ResumableClient): its
//! reconnection and acknowledgement timings, and the events it yields.

use std::time::Duration;

use crate::Message;

/// How a [`ResumableClient`](crate::ResumableClient) reconnects and acknowledges.
///
/// ```
/// use std::time::Duration;
/// use longlink_client::ResumeOptions;
///
/// let options = ResumeOptions {
///     ack_timeout: Duration::from_secs(3),
///     ..ResumeOptions::default()
/// };
/// assert_eq!(options.initial_backoff, Duration::from_millis(50));
/// assert_eq!(options.ack_every, 32);
/// ```
#[derive(Debug, Clone)]
pub struct ResumeOptions {
    /// The cap of the first reconnection wait (at least 1 ms); each attempt doubles it.
    /// Every wait is drawn uniformly from zero to its cap ("full jitter"). The doubling
    /// starts over after a connection that brought a message or lasted `max_backoff`; a
    /// server that accepts and drops at once sees the waits grow.
    pub initial_backoff: Duration,
    /// The largest cap of a reconnection wait.
    pub max_backoff: Duration,
    /// Acknowledge (`LL_Ack`) at the latest after this many server messages...
    pub ack_every: u64,
    /// ... or this long after the first one not yet acknowledged.
    pub ack_interval: Duration,
    /// The connection is taken as dead (and the client resumes on a new one) when a message
    /// sent is not acknowledged by the server within this, or a write does not complete
    /// within it. The server acknowledges within about 200 ms, so an application that sends
    /// a heartbeat now and then also detects a half-open connection this way.
    pub ack_timeout: Duration,
    /// The other gates of the cluster (`host:port`, the same transport and settings as the
    /// [`ClientConfig`](crate::ClientConfig)'s `addr`), taken in turn after it: when a gate that is stopping says
    /// `LL_Move{after_ms}`, the client waits that long (serving the connection meanwhile),
    /// then reconnects to the next address and resumes there; after a drop, the first
    /// attempt goes to the same address and each further one to the next. Empty: `addr`
    /// only (a gate behind one address, e.g. `reuse_port` or a load balancer).
    pub addresses: Vec<String>,
}

impl Default for ResumeOptions {
    fn default() -> Self {
        ResumeOptions {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            ack_every: 32,
            ack_interval: Duration::from_millis(200),
            ack_timeout: Duration::from_secs(10),
            addresses: Vec::new(),
        }
    }
}

/// What [`ResumableClient::next`](crate::ResumableClient::next) gives.
///
/// ```
/// use longlink_client::Event;
///
/// fn show(event: &Event) -> String {
///     match event {
///         Event::Message(msg) => format!("message {}", msg.name()),
///         Event::Reconnecting { attempt, .. } => format!("reconnecting… ({attempt})"),
///         Event::Resumed { .. } => "back".into(),
///         Event::SessionLost { reason, .. } => format!("session lost ({reason}): log in again"),
///         _ => String::new(),
///     }
/// }
/// let event = Event::Reconnecting { attempt: 2, cause: "end of stream".into() };
/// assert_eq!(show(&event), "reconnecting… (2)");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A server application message: each one once, in order, across reconnections (the
    /// `LL_` messages never come here).
    Message(Message),
    /// The connection dropped (or an attempt to get it back failed): attempt `attempt`
    /// (from 1) is about to be made, after its backoff. Messages sent meanwhile are kept.
    Reconnecting {
        /// The attempt number, from 1 for each drop.
        attempt: u32,
        /// Why the connection (or the previous attempt) ended.
        cause: String,
    },
    /// The gate is stopping (`LL_Move`): after `after`, the client moves to the next
    /// address and resumes there (a [`Reconnecting`](Event::Reconnecting), then
    /// [`Resumed`](Event::Resumed)); until then the connection goes on. A page would show
    /// "moving…".
    Moving {
        /// How long until the move.
        after: Duration,
    },
    /// The session was resumed on a new connection: nothing was lost either way.
    Resumed {
        /// How many messages sent before or during the outage the server had not handled,
        /// and were sent again.
        resent: usize,
    },
    /// The session is gone: the server refused the resume (`reason` is `"unknown"`,
    /// `"expired"`, `"replaced"` or `"overflow"`, the last one also on a live connection;
    /// `"retry"` is not a loss: the client reconnects after its backoff and resumes again),
    /// or the window passed before a connection could be made (`"expired"`), or the
    /// connection dropped before the server had answered `LL_SessionStart` (`"dropped"`).
    /// The client is now on a fresh connection, and has already asked for a new resumable
    /// session on it: the application must log in again (what it sends from now on is
    /// part of the new session).
    SessionLost {
        /// Why.
        reason: String,
        /// Messages sent in the lost session that the server had not acknowledged: it may
        /// or may not have handled them.
        unacknowledged: usize,
    },
}
