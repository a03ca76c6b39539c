//! A drop being recovered from: the backoff's wait, the connect, and the resume that follows
//! ([`Link`]'s `Down`, `Connecting` and `Resuming` states), while commands keep coming.

use std::sync::Arc;

use longlink_wire::resume::RefuseReason;
use tokio::time::{Instant, sleep_until};

use super::super::proto::Ll;
use super::super::{Cmd, Event, closed};
use super::{Connect, Link, Outage, Task};
use crate::Client;
use crate::error::Error;

impl Task {
    /// The connection dropped: reconnect, after the first backoff.
    pub(super) fn dropped(&mut self, cause: String) -> Link {
        for reply in self.starting.drain(..) {
            let why = format!(
                "the connection ended before LL_Session ({cause}): is the server's resume_window on?"
            );
            let _ = reply.send(Err(Error::Session(why)));
        }
        if self.useful || self.up_at.elapsed() >= self.opts.max_backoff {
            self.level = 0;
        }
        let outage = Outage {
            since: Instant::now(),
            attempt: 0,
        };
        self.retry(outage, cause)
    }

    /// The gate asked the client to move (`LL_Move`) and the delay is over: drop this
    /// connection and resume on the next address at once.
    pub(super) fn moving(&mut self) -> Link {
        self.move_at = None;
        self.at = (self.at + 1) % self.addrs.len();
        self.level = 0;
        let outage = Outage {
            since: Instant::now(),
            attempt: 1,
        };
        self.emit(Ok(Event::Reconnecting {
            attempt: 1,
            cause: format!("the gate is stopping: moving to {}", self.addrs[self.at]),
        }));
        Link::Down(outage, Instant::now())
    }

    /// The next attempt of an outage, after its backoff: the first to the same address,
    /// each further one to the next.
    fn retry(&mut self, mut outage: Outage, cause: String) -> Link {
        outage.attempt += 1;
        if outage.attempt > 1 {
            self.at = (self.at + 1) % self.addrs.len();
        }
        self.level += 1;
        let at = Instant::now() + self.backoff.delay(self.level);
        self.emit(Ok(Event::Reconnecting {
            attempt: outage.attempt,
            cause,
        }));
        Link::Down(outage, at)
    }

    /// A command while there is no working connection; `Some` ends the state.
    fn command_while_down(&mut self, cmd: Option<Cmd>) -> Option<Link> {
        match cmd {
            None => Some(Link::Closed),
            Some(Cmd::Close(done)) => {
                let _ = done.send(Ok(()));
                Some(Link::Closed)
            }
            // Kept for after the resume (and dropped if the session is lost).
            Some(Cmd::Send(payload)) => {
                self.n.outgoing(&payload, None);
                None
            }
            Some(Cmd::StartSession(reply)) => {
                let _ = reply.send(if self.n.token.is_some() {
                    Ok(self.n.window)
                } else {
                    Err(closed("reconnecting"))
                });
                None
            }
            Some(Cmd::Reconnect) => None,
        }
    }

    pub(super) async fn wait(&mut self, outage: Outage, at: Instant) -> Link {
        loop {
            tokio::select! {
                cmd = self.cmds.recv() => if let Some(link) = self.command_while_down(cmd) {
                    return link;
                },
                _ = sleep_until(at) => {
                    let mut config = self.config.clone();
                    config.addr = self.addrs[self.at].clone();
                    let connect = Client::connect(config, Arc::clone(&self.messages));
                    return Link::Connecting(outage, Box::pin(connect));
                }
                _ = self.events.closed() => return Link::Closed,
            }
        }
    }

    pub(super) async fn connecting(&mut self, outage: Outage, mut connect: Connect) -> Link {
        loop {
            tokio::select! {
                cmd = self.cmds.recv() => if let Some(link) = self.command_while_down(cmd) {
                    return link;
                },
                r = &mut connect => return match r {
                    Ok(client) => self.connected(outage, client).await,
                    Err(e) => self.retry(outage, e.to_string()),
                },
                _ = self.events.closed() => return Link::Closed,
            }
        }
    }

    /// A new socket: resume on it if the window allows, or start afresh.
    async fn connected(&mut self, outage: Outage, mut client: Client) -> Link {
        let token = self.n.token.clone();
        let Some(token) = token.filter(|_| outage.since.elapsed() < self.n.window) else {
            let reason = if self.n.token.is_some() {
                "expired"
            } else {
                "dropped"
            };
            self.lose(reason.into());
            return self.restart(&mut client).await.unwrap_or(Link::Up(client));
        };
        self.n.resuming();
        let resume = self.proto.resume(&token, self.n.received);
        match self.write(&mut client, resume).await {
            Ok(()) => {
                let deadline = Instant::now() + self.config.connect_timeout;
                Link::Resuming(outage, client, deadline)
            }
            Err(e) => self.retry(outage, e.to_string()),
        }
    }

    /// `LL_Resume` sent: nothing else until the answer.
    pub(super) async fn resuming(
        &mut self,
        outage: Outage,
        mut client: Client,
        deadline: Instant,
    ) -> Link {
        loop {
            let payload = tokio::select! {
                cmd = self.cmds.recv() => {
                    if let Some(link) = self.command_while_down(cmd) {
                        return link;
                    }
                    continue;
                }
                p = client.recv_raw() => match p {
                    Ok(p) => p,
                    Err(e) => return self.retry(outage, e.to_string()),
                },
                _ = sleep_until(deadline) => {
                    return self.retry(outage, "no answer to LL_Resume".into());
                }
                _ = self.events.closed() => return Link::Closed,
            };
            if !self.proto.is_protocol(&payload) {
                continue; // nothing of the session's comes before the answer
            }
            match self.proto.decode(&payload) {
                Ok(Ll::Resumed { token, last_seq }) => {
                    let resend = self.n.on_resumed(token, last_seq, Instant::now());
                    let resent = resend.len();
                    for payload in resend {
                        if let Err(e) = self.write(&mut client, payload).await {
                            return self.dropped(e.to_string());
                        }
                    }
                    self.emit(Ok(Event::Resumed { resent }));
                    return Link::Up(client);
                }
                // The session is still there (moving it between gates failed): drop this
                // connection and resume again after the backoff, while the window lasts.
                Ok(Ll::Refused(reason)) if reason == RefuseReason::Retry.as_str() => {
                    return self.retry(outage, "resume refused: retry".into());
                }
                Ok(Ll::Refused(reason)) => {
                    self.lose(reason);
                    return self.restart(&mut client).await.unwrap_or(Link::Up(client));
                }
                Ok(_) => {}
                Err(e) => self.emit(Err(e)),
            }
        }
    }
}
