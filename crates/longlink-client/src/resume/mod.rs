//! [`ResumableClient`]: a client that reconnects by itself and resumes its session. The
//! handle and its types are here; the task that owns the socket is in `task`, the
//! numbering in `state`, the `LL_` messages in `proto`.

mod proto;
mod state;
mod task;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use longlink_wire::Transport;
use tokio::sync::{mpsc, oneshot};

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::{Client, ClientConfig, Message, Messages};

/// What the application asks of the task.
enum Cmd {
    /// An encoded application message.
    Send(Bytes),
    /// Make the connection's session resumable; the answer is the window.
    StartSession(oneshot::Sender<Result<Duration>>),
    /// Drop the socket now and resume on a new one.
    Reconnect,
    /// Close for good.
    Close(oneshot::Sender<Result<()>>),
}

/// A connection (or the client) that has ended, and why.
fn closed(reason: &str) -> Error {
    Error::Closed {
        code: None,
        reason: reason.to_owned(),
    }
}

/// How a [`ResumableClient`] reconnects and acknowledges.
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
    /// [`ClientConfig`]'s `addr`), taken in turn after it: when a gate that is stopping says
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

/// What [`ResumableClient::next`] gives.
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

/// A handle that sends through a [`ResumableClient`] from another task.
///
/// ```no_run
/// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
/// # struct Hello { #[prost(string, tag = "1")] name: String }
/// # async fn run(client: &longlink_client::ResumableClient) -> longlink_client::Result<()> {
/// let sender = client.sender();
/// tokio::spawn(async move { sender.send(&Hello { name: "ann".into() }).await });
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ResumableSender {
    cmds: mpsc::Sender<Cmd>,
    codec: Codec,
}

impl std::fmt::Debug for ResumableSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumableSender")
            .field("closed", &self.cmds.is_closed())
            .finish_non_exhaustive()
    }
}

fn gone() -> Error {
    closed("the resumable client is closed")
}

impl ResumableSender {
    /// Encodes and sends a registered message: numbered and kept until the server
    /// acknowledges it, so that a message sent while the connection is down goes out after
    /// the resume. If the session is lost instead, the messages not acknowledged are
    /// dropped (and counted in [`Event::SessionLost`]). Encoding errors and a payload over
    /// `max_msg_len` are returned here, and nothing is sent.
    ///
    /// ```no_run
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Hello { #[prost(string, tag = "1")] name: String }
    /// # async fn run(sender: longlink_client::ResumableSender) -> longlink_client::Result<()> {
    /// sender.send(&Hello { name: "ann".into() }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send<T: Any>(&self, msg: &T) -> Result<()> {
        let c = &self.codec;
        let payload = c.messages.encode(msg, c.encoding, c.id_little_endian)?;
        let min = usize::from(c.transport == Transport::Tcp);
        if payload.len() < min || payload.len() > c.max_payload {
            return Err(Error::BadLength {
                len: payload.len(),
                max: c.max_payload,
            });
        }
        let cmd = Cmd::Send(Bytes::from(payload));
        self.cmds.send(cmd).await.map_err(|_| gone())
    }

    /// Drops the current connection and resumes the session on a new one at once (after a
    /// network change, say); messages in flight are not lost. Does nothing while the client
    /// is already reconnecting.
    ///
    /// ```no_run
    /// # async fn run(sender: longlink_client::ResumableSender) -> longlink_client::Result<()> {
    /// sender.reconnect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn reconnect(&self) -> Result<()> {
        self.cmds.send(Cmd::Reconnect).await.map_err(|_| gone())
    }
}

/// A client that reconnects by itself and resumes its session, on a server with
/// `resume_window` on (the `LL_` messages of [`longlink_wire::resume`]): the application
/// reads one stream of [`Event`]s, each server message once and in order across drops, and
/// the server handles each message sent once and in order.
///
/// A task owns the socket. It numbers the server's application messages and acknowledges
/// them (`LL_Ack` every [`ack_every`](ResumeOptions::ack_every) messages or after
/// [`ack_interval`](ResumeOptions::ack_interval)), and keeps each message sent until the
/// server acknowledges it. On a drop (an error, end of stream, or no acknowledgement within
/// [`ack_timeout`](ResumeOptions::ack_timeout)) it reconnects with a jittered exponential
/// backoff and sends `LL_Resume`; on `LL_Resumed` it resends what the server had not
/// handled, and the server replays what the client had not received. If the session cannot
/// be resumed (refused, or the window passed), [`Event::SessionLost`] says so, on a fresh
/// connection that is already resumable again. The task reads and acknowledges even while
/// the application does not call [`next`](Self::next): events wait, unbounded, in memory.
///
/// ```no_run
/// use longlink_client::{ClientConfig, Event, Messages, ResumableClient, ResumeOptions};
///
/// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
/// # struct Hello { #[prost(string, tag = "1")] name: String }
/// # async fn run() -> longlink_client::Result<()> {
/// let mut messages = Messages::new();
/// messages.register::<Hello>()?;
/// let config = ClientConfig::ws("127.0.0.1:3653");
/// let mut client = ResumableClient::connect(config, messages, ResumeOptions::default()).await?;
/// client.send(&Hello { name: "ann".into() }).await?;
/// loop {
///     match client.next().await? {
///         Event::Message(msg) => println!("{}", msg.name()),
///         Event::Reconnecting { attempt, .. } => println!("reconnecting… ({attempt})"),
///         Event::SessionLost { .. } => {
///             client.send(&Hello { name: "ann".into() }).await?; // log in again
///         }
///         _ => {}
///     }
/// }
/// # }
/// ```
pub struct ResumableClient {
    sender: ResumableSender,
    events: mpsc::UnboundedReceiver<Result<Event>>,
    connect_timeout: Duration,
}

impl std::fmt::Debug for ResumableClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumableClient")
            .field("transport", &self.sender.codec.transport)
            .field("encoding", &self.sender.codec.encoding)
            .finish_non_exhaustive()
    }
}

impl ResumableClient {
    /// Connects as [`Client::connect`] does, then starts a resumable session
    /// (`LL_SessionStart`, before anything else is sent) and waits for the server's
    /// answer. A server that does not answer within `connect_timeout` (resume off) is
    /// [`Error::Session`].
    ///
    /// ```no_run
    /// use longlink_client::{ClientConfig, Messages, ResumableClient, ResumeOptions};
    ///
    /// # async fn run() -> longlink_client::Result<()> {
    /// let config = ClientConfig::tcp("127.0.0.1:3563");
    /// let client = ResumableClient::connect(config, Messages::new(), ResumeOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(
        config: ClientConfig,
        messages: impl Into<Arc<Messages>>,
        options: ResumeOptions,
    ) -> Result<ResumableClient> {
        let messages = messages.into();
        let client = Client::connect(config.clone(), Arc::clone(&messages)).await?;
        let codec = client.reader.codec.clone();
        let connect_timeout = config.connect_timeout;
        let (cmds, events) = task::spawn(config, messages, options, client);
        let client = ResumableClient {
            sender: ResumableSender { cmds, codec },
            events,
            connect_timeout,
        };
        match client.start_session().await {
            Ok(_) => Ok(client),
            Err(e) => {
                let _ = client.close().await;
                Err(e)
            }
        }
    }

    /// Sends a registered message; see [`ResumableSender::send`].
    ///
    /// ```no_run
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Hello { #[prost(string, tag = "1")] name: String }
    /// # async fn run(client: &longlink_client::ResumableClient) -> longlink_client::Result<()> {
    /// client.send(&Hello { name: "ann".into() }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send<T: Any>(&self, msg: &T) -> Result<()> {
        self.sender.send(msg).await
    }

    /// The next event: a server message, or news of the connection. An undecodable
    /// message is an error that leaves the client usable ([`Error::is_closed`] is false);
    /// after [`close`](Self::close) (or the task's end) it is [`Error::Closed`]. Cancel
    /// safe.
    ///
    /// ```no_run
    /// # async fn run(client: &mut longlink_client::ResumableClient) -> longlink_client::Result<()> {
    /// if let longlink_client::Event::Message(msg) = client.next().await? {
    ///     println!("{}", msg.name());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next(&mut self) -> Result<Event> {
        self.events.recv().await.unwrap_or_else(|| Err(gone()))
    }

    /// Asks for a resumable session on the current connection and waits for the answer
    /// (the window), at most `connect_timeout`.
    async fn start_session(&self) -> Result<Duration> {
        let (tx, rx) = oneshot::channel();
        let cmds = &self.sender.cmds;
        cmds.send(Cmd::StartSession(tx)).await.map_err(|_| gone())?;
        match tokio::time::timeout(self.connect_timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(gone()),
            Err(_) => Err(Error::Session(format!(
                "no LL_Session within {:?} (is the server's resume_window on?)",
                self.connect_timeout
            ))),
        }
    }

    /// Drops the current connection and resumes on a new one; see
    /// [`ResumableSender::reconnect`].
    ///
    /// ```no_run
    /// # async fn run(client: &longlink_client::ResumableClient) -> longlink_client::Result<()> {
    /// client.reconnect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn reconnect(&self) -> Result<()> {
        self.sender.reconnect().await
    }

    /// A handle to send from other tasks.
    ///
    /// ```no_run
    /// # async fn run(client: &longlink_client::ResumableClient) {
    /// let sender = client.sender();
    /// # }
    /// ```
    pub fn sender(&self) -> ResumableSender {
        self.sender.clone()
    }

    /// The registry this client encodes and decodes with.
    ///
    /// ```no_run
    /// # fn run(client: &longlink_client::ResumableClient) {
    /// println!("{} message types", client.messages().len());
    /// # }
    /// ```
    pub fn messages(&self) -> &Arc<Messages> {
        &self.sender.codec.messages
    }

    /// Closes for good: flushes, closes the socket (TCP: FIN; WebSocket: a close frame) and
    /// stops reconnecting. Messages not yet acknowledged are dropped. The protocol has no
    /// goodbye: the server keeps the session for its window, and its module sees the close
    /// event when the window lapses.
    ///
    /// ```no_run
    /// # async fn run(client: longlink_client::ResumableClient) -> longlink_client::Result<()> {
    /// client.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.sender.cmds.send(Cmd::Close(tx)).await.is_err() {
            return Ok(()); // the task has ended
        }
        rx.await.unwrap_or(Ok(()))
    }
}
