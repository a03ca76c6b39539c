//! One simulated user: a `ResumableClient` that logs in, watches its room, and, while the
//! driver says so, says numbered lines to its room or privately to another user; everything
//! it sends and receives goes to the ledger. It logs in again (and watches again) when its
//! session is lost or a chat node says it is not logged in, and counts that.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use longlink_client::{ClientConfig, Event, Message, ResumableClient, ResumeOptions};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::ledger::{Kind, Ledger, text};
use crate::msg::{
    C2sMessage, C2sUpdateWatchRoom, C2sUserLogin, ERR_NOT_LOGGED_IN, S2cError, S2cKick, S2cMessage,
    S2cUpdateWatchRoom, S2cUserLogin, registry, token,
};

/// What the driver asks of every client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Stay connected, send nothing.
    Quiet,
    /// Send at the plan's rate.
    Chat,
    /// Close and end.
    Stop,
}

/// What every user shares: who else there is and how much to say.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Every user's uid.
    pub(crate) uids: Vec<u64>,
    /// Messages per second per user.
    pub(crate) rate: f64,
    /// The share of private messages (the rest go to the room).
    pub(crate) private_share: f64,
    /// The chat's token secret.
    pub(crate) secret: String,
    pub(crate) seed: u64,
}

/// One user: who, which room, and how it reaches a gate.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) uid: u64,
    pub(crate) room: u64,
    pub(crate) config: ClientConfig,
    /// The other gates' addresses (their proxies, the same transport), for `LL_Move`.
    pub(crate) others: Vec<String>,
}

/// A small deterministic generator (xorshift64*), one per user.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs a user until the driver says stop; a failure is recorded in the ledger.
pub(crate) async fn run(
    user: User,
    plan: Arc<Plan>,
    ledger: Arc<Ledger>,
    mode: watch::Receiver<Mode>,
    connects: Arc<Semaphore>,
) {
    let uid = user.uid;
    if let Err(e) = session(user, plan, &ledger, mode, connects).await {
        let mut book = ledger.lock();
        book.tally(uid).failures += 1;
        book.failures.push(format!("uid {uid}: {e:#}"));
    }
}

/// The user's state between events.
struct Me {
    user: User,
    plan: Arc<Plan>,
    ledger: Arc<Ledger>,
    rng: Rng,
    /// Numbers its messages, room and private alike.
    n: u64,
    logins: u64,
    /// A login is sent and not yet answered.
    logging_in: bool,
    /// Logged in and watching (once: the driver waits for every user to get here).
    ready: bool,
}

async fn session(
    user: User,
    plan: Arc<Plan>,
    ledger: &Arc<Ledger>,
    mut mode: watch::Receiver<Mode>,
    connects: Arc<Semaphore>,
) -> Result<()> {
    let permit = connects.acquire_owned().await?;
    let options = ResumeOptions {
        max_backoff: Duration::from_secs(1),
        addresses: user.others.clone(),
        ..ResumeOptions::default()
    };
    let mut client = connect(&user.config, options).await?;
    let mut me = Me {
        rng: Rng::new(plan.seed ^ user.uid),
        user,
        plan,
        ledger: Arc::clone(ledger),
        n: 0,
        logins: 0,
        logging_in: false,
        ready: false,
    };
    me.login(&client).await?;
    let mut permit = Some(permit);
    let period = Duration::from_secs_f64(1.0 / me.plan.rate.max(0.001));
    let first = Instant::now() + period.mul_f64(me.rng.unit());
    let mut tick = tokio::time::interval_at(first, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let chatting = *mode.borrow() == Mode::Chat && me.ready;
        tokio::select! {
            event = client.next() => me.on_event(&client, event).await?,
            _ = tick.tick(), if chatting => me.say(&client).await?,
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == Mode::Stop {
                    break;
                }
            }
        }
        if me.ready {
            permit.take();
        }
    }
    let _ = client.close().await;
    Ok(())
}

/// Connects, with a few tries (a gate may be starting).
async fn connect(config: &ClientConfig, options: ResumeOptions) -> Result<ResumableClient> {
    let messages = registry()?;
    let mut last = None;
    for _ in 0..5 {
        match ResumableClient::connect(config.clone(), Arc::clone(&messages), options.clone()).await
        {
            Ok(client) => return Ok(client),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last.expect("five tries")).context("connect")
}

impl Me {
    async fn login(&mut self, client: &ResumableClient) -> Result<()> {
        self.logging_in = true;
        self.logins += 1;
        if self.logins > 1 {
            self.ledger.note(self.user.uid, |t| t.relogins += 1);
        }
        let token = token(&self.plan.secret, self.user.uid);
        client
            .send(&C2sUserLogin {
                token,
                login_plat: 1,
            })
            .await?;
        Ok(())
    }

    /// One line, to the room or to another user; nothing once the driver has stopped the
    /// chat (the mode is read before this task hears of it: the ledger decides).
    async fn say(&mut self, client: &ResumableClient) -> Result<()> {
        let (uid, n) = (self.user.uid, self.n + 1);
        let uids = &self.plan.uids;
        let private = uids.len() > 1 && self.rng.unit() < self.plan.private_share;
        let (kind, to, room_id, to_uid) = if private {
            let mut to = uid;
            while to == uid {
                to = uids[(self.rng.next() % uids.len() as u64) as usize];
            }
            (Kind::Private, to, 0, to)
        } else {
            (Kind::Room, self.user.room, self.user.room, 0)
        };
        if !self.ledger.sent(uid, n, kind, to) {
            return Ok(());
        }
        self.n = n;
        let msg = C2sMessage {
            room_id,
            to_uid,
            text: text(kind, uid, n),
        };
        client.send(&msg).await?;
        Ok(())
    }

    async fn on_event(
        &mut self,
        client: &ResumableClient,
        event: longlink_client::Result<Event>,
    ) -> Result<()> {
        let uid = self.user.uid;
        match event {
            Ok(Event::Message(msg)) => self.on_message(client, msg).await?,
            Ok(Event::Moving { .. }) => self.ledger.note(uid, |t| t.moves += 1),
            Ok(Event::Reconnecting { attempt: 1, .. }) => self.ledger.note(uid, |t| t.drops += 1),
            Ok(Event::Resumed { .. }) => self.ledger.note(uid, |t| t.resumes += 1),
            Ok(Event::SessionLost { unacknowledged, .. }) => {
                self.ledger.note(uid, |t| {
                    t.sessions_lost += 1;
                    t.unacked_lost += unacknowledged as u64;
                });
                self.login(client).await?;
            }
            Ok(_) => {}
            Err(e) if e.is_closed() => bail!("the client ended: {e}"),
            Err(_) => self.ledger.note(uid, |t| t.undecodable += 1),
        }
        Ok(())
    }

    async fn on_message(&mut self, client: &ResumableClient, msg: Message) -> Result<()> {
        let uid = self.user.uid;
        if let Some(m) = msg.downcast_ref::<S2cMessage>() {
            self.ledger.received(uid, m.from_uid, &m.text);
        } else if let Some(e) = msg.downcast_ref::<S2cError>() {
            self.on_error(client, e).await?;
        } else if let Some(login) = msg.downcast_ref::<S2cUserLogin>() {
            if login.ret != 1 {
                bail!("login refused: {}", login.msg);
            }
            self.logging_in = false;
            let watch = C2sUpdateWatchRoom {
                room_id: self.user.room,
            };
            client.send(&watch).await?;
        } else if msg.downcast_ref::<S2cUpdateWatchRoom>().is_some() {
            if !self.ready {
                self.ready = true;
                self.ledger.lock().ready += 1;
            }
        } else if msg.downcast_ref::<S2cKick>().is_some() {
            self.ledger.note(uid, |t| t.kicks += 1);
        }
        Ok(())
    }

    /// A refusal: of a chat message (the gate's "C2S_Message: ..." when no chat node
    /// answered, a private message's "cannot reach the user" or "not online", or "log in
    /// first" once logged in), or of something else. "Log in first" means the chat node now
    /// serving this connection does not know the login: log in again.
    async fn on_error(&mut self, client: &ResumableClient, e: &S2cError) -> Result<()> {
        let uid = self.user.uid;
        let not_logged_in = e.code == ERR_NOT_LOGGED_IN;
        let of_a_message = e.msg.contains("C2S_Message")
            || e.msg.contains("cannot reach the user")
            || e.msg.contains("not online")
            || (not_logged_in && self.ready);
        self.ledger.note(uid, |t| {
            if of_a_message {
                t.refused += 1;
            } else {
                t.other_errors += 1;
            }
        });
        if not_logged_in && !self.logging_in {
            self.login(client).await?;
        }
        Ok(())
    }
}
