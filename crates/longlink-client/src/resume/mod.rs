//! [`ResumableClient`]: a client that reconnects by itself and resumes its session. The
//! handle and its types are here; the task that owns the socket is in `task`, the
//! numbering in `state`, the `LL_` messages in `proto`.

mod options;
mod proto;
mod state;
mod task;

pub use options::{Event, ResumeOptions};

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use longlink_wire::Transport;
use tokio::sync::{mpsc, oneshot};

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::{Client, ClientConfig, Messages};

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
