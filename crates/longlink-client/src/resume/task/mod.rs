//! The task behind a [`ResumableClient`](super::ResumableClient): it owns the socket and the
//! session's numbering, reads, acknowledges, detects drops and reconnects, while the
//! application sends commands and reads events through two channels.
//!
//! The connection goes through [`Link`]'s states: `Up` (serving), `Down` (waiting out the
//! backoff), `Connecting`, `Resuming` (`LL_Resume` sent, nothing else until the answer).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};

use super::proto::{Ll, Proto};
use super::state::Numbering;
use super::{Cmd, Event, ResumeOptions, closed};
use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::{Client, ClientConfig, Messages};

mod reconnect;

type Connect = Pin<Box<dyn Future<Output = Result<Client>> + Send>>;

/// A drop being recovered from.
struct Outage {
    /// When the drop was seen: the window counts from here.
    since: Instant,
    /// The attempt being waited for or made, from 1.
    attempt: u32,
}

enum Link {
    Up(Client),
    Down(Outage, Instant),
    Connecting(Outage, Connect),
    Resuming(Outage, Client, Instant),
    Closed,
}

/// What an `Up` step ended with: `None` stays up, `Some` is the next state.
type Step = Option<Link>;

pub(crate) struct Task {
    config: ClientConfig,
    messages: Arc<Messages>,
    proto: Proto,
    opts: ResumeOptions,
    cmds: mpsc::Receiver<Cmd>,
    events: mpsc::UnboundedSender<Result<Event>>,
    n: Numbering,
    backoff: Backoff,
    /// The backoff's attempt number: it goes on growing across drops of connections that
    /// were of no use (a server that accepts and drops at once is not hammered).
    level: u32,
    /// When the current connection came up, and whether it has brought a message since.
    up_at: Instant,
    useful: bool,
    /// Waiting for `LL_Session`.
    starting: Vec<oneshot::Sender<Result<Duration>>>,
    /// The gates' addresses: the config's, then the options' others.
    addrs: Vec<String>,
    /// The one connected to (or to connect to next).
    at: usize,
    /// When to move to the next address (a stopping gate's `LL_Move`).
    move_at: Option<Instant>,
}

/// Starts the task over a connected `client`.
pub(crate) fn spawn(
    config: ClientConfig,
    messages: Arc<Messages>,
    opts: ResumeOptions,
    client: Client,
) -> (mpsc::Sender<Cmd>, mpsc::UnboundedReceiver<Result<Event>>) {
    let (cmd_tx, cmds) = mpsc::channel(256);
    let (events, event_rx) = mpsc::unbounded_channel();
    let addrs = std::iter::once(config.addr.clone())
        .chain(opts.addresses.iter().cloned())
        .collect();
    let task = Task {
        addrs,
        at: 0,
        move_at: None,
        proto: Proto::new(config.encoding, config.id_little_endian),
        backoff: Backoff::new(
            opts.initial_backoff.max(Duration::from_millis(1)),
            opts.max_backoff,
        ),
        config,
        messages,
        opts,
        cmds,
        events,
        n: Numbering::default(),
        level: 0,
        up_at: Instant::now(),
        useful: false,
        starting: Vec::new(),
    };
    tokio::spawn(task.run(client));
    (cmd_tx, event_rx)
}

impl Task {
    async fn run(mut self, client: Client) {
        let mut link = Link::Up(client);
        loop {
            link = match link {
                Link::Up(client) => self.serve(client).await,
                Link::Down(outage, at) => self.wait(outage, at).await,
                Link::Connecting(outage, connect) => self.connecting(outage, connect).await,
                Link::Resuming(outage, client, deadline) => {
                    self.resuming(outage, client, deadline).await
                }
                Link::Closed => return,
            };
        }
    }

    fn emit(&self, event: Result<Event>) {
        let _ = self.events.send(event);
    }

    /// Writes one payload, within `ack_timeout` (a write that does not complete is a dead
    /// link, e.g. a half-open one whose buffers are full).
    async fn write(&self, client: &mut Client, payload: Bytes) -> Result<()> {
        match timeout(self.opts.ack_timeout, client.send_raw(payload)).await {
            Ok(r) => r,
            Err(_) => Err(closed("write timed out")),
        }
    }

    /// Serves a working connection until it drops or the client closes.
    async fn serve(&mut self, mut client: Client) -> Link {
        (self.up_at, self.useful) = (Instant::now(), false);
        self.move_at = None;
        loop {
            let now = Instant::now();
            let ack_at = self.n.ack_due;
            let dead_at = self.n.ack_deadline(self.opts.ack_timeout);
            let step = tokio::select! {
                cmd = self.cmds.recv() => self.command(&mut client, cmd).await,
                payload = client.recv_raw() => match payload {
                    Ok(p) => self.payload(&mut client, p).await,
                    Err(e) => Some(self.dropped(e.to_string())),
                },
                _ = sleep_until(ack_at.unwrap_or(now)), if ack_at.is_some() => {
                    let ack = self.proto.ack(self.n.take_ack());
                    match self.write(&mut client, ack).await {
                        Ok(()) => None,
                        Err(e) => Some(self.dropped(e.to_string())),
                    }
                }
                _ = sleep_until(self.move_at.unwrap_or(now)), if self.move_at.is_some() => {
                    Some(self.moving())
                }
                _ = sleep_until(dead_at.unwrap_or(now)), if dead_at.is_some() => {
                    let why = format!("no LL_Ack within {:?}", self.opts.ack_timeout);
                    Some(self.dropped(why))
                }
                _ = self.events.closed() => Some(Link::Closed),
            };
            if let Some(link) = step {
                return link;
            }
        }
    }

    async fn command(&mut self, client: &mut Client, cmd: Option<Cmd>) -> Step {
        match cmd {
            None => Some(Link::Closed),
            Some(Cmd::Close(done)) => {
                let r = timeout(self.opts.ack_timeout, client.writer.close()).await;
                let _ = done.send(r.unwrap_or(Ok(())));
                Some(Link::Closed)
            }
            Some(Cmd::Send(payload)) => {
                self.n.outgoing(&payload, Some(Instant::now()));
                match self.write(client, payload).await {
                    Ok(()) => None,
                    Err(e) => Some(self.dropped(e.to_string())),
                }
            }
            Some(Cmd::StartSession(reply)) => {
                if self.n.token.is_some() {
                    let _ = reply.send(Ok(self.n.window));
                    return None;
                }
                self.starting.push(reply);
                if self.n.counting_out {
                    return None; // LL_SessionStart already sent
                }
                self.restart(client).await
            }
            Some(Cmd::Reconnect) => Some(self.dropped("reconnect asked".into())),
        }
    }

    /// A payload on a working connection.
    async fn payload(&mut self, client: &mut Client, payload: Bytes) -> Step {
        if !self.proto.is_protocol(&payload) {
            self.useful = true;
            let now = Instant::now();
            let msg =
                self.messages
                    .decode(&payload, self.config.encoding, self.config.id_little_endian);
            // Volatile messages are not numbered (one that does not decode counts: the
            // server numbers what it does not know to be volatile).
            let volatile = msg.as_ref().is_ok_and(|m| !m.delivery().numbered());
            if !volatile {
                self.n.on_received(now, self.opts.ack_interval);
            }
            self.emit(msg.map(Event::Message));
            if self.n.ack_now(now, self.opts.ack_every) {
                let ack = self.proto.ack(self.n.take_ack());
                if let Err(e) = self.write(client, ack).await {
                    return Some(self.dropped(e.to_string()));
                }
            }
            return None;
        }
        match self.proto.decode(&payload) {
            Ok(Ll::Ack(seq)) => self.n.on_ack(seq),
            Ok(Ll::Session { token, window_s }) => {
                if self.n.counting_out && self.n.token.is_none() {
                    let window = Duration::from_secs(window_s.into());
                    self.n.on_session(token, window);
                    for reply in self.starting.drain(..) {
                        let _ = reply.send(Ok(window));
                    }
                }
            }
            // On a live connection: the session ended (over resume_buffer); the connection
            // goes on, as a fresh one.
            Ok(Ll::Refused(reason)) => {
                if self.n.counting_out {
                    self.lose(reason);
                    return self.restart(client).await;
                }
            }
            Ok(Ll::Move(after_ms)) => {
                if self.n.token.is_some() && self.move_at.is_none() {
                    let after = Duration::from_millis(after_ms.into());
                    self.move_at = Some(Instant::now() + after);
                    self.emit(Ok(Event::Moving { after }));
                }
            }
            Ok(Ll::Resumed { .. } | Ll::Other) => {}
            Err(e) => self.emit(Err(e)),
        }
        None
    }

    /// Starts a new session on `client`: `LL_SessionStart`, before anything else is sent.
    async fn restart(&mut self, client: &mut Client) -> Step {
        self.n.start();
        match self.write(client, self.proto.session_start()).await {
            Ok(()) => None,
            Err(e) => Some(self.dropped(e.to_string())),
        }
    }

    /// The session is gone (the connection, if any, is a fresh one): tell the application.
    fn lose(&mut self, reason: String) {
        let unacknowledged = self.n.lose();
        for reply in self.starting.drain(..) {
            let _ = reply.send(Err(Error::Session(reason.clone())));
        }
        self.emit(Ok(Event::SessionLost {
            reason,
            unacknowledged,
        }));
    }
}
