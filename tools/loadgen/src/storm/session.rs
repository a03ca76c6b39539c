//! One resumable session of the storm, over raw TCP and JSON, speaking the resume protocol as
//! `longlink-client`'s `ResumableClient` does (`LL_SessionStart`, `LL_Ack` every 32 messages
//! or 200 ms, `LL_Resume` first on a new socket, the client's own messages kept until the
//! server acknowledges them and resent after `LL_Resumed`, the same jittered backoff), at a
//! fraction of its cost: one task, one socket, no channels. It logs in, watches its room and
//! checks the room's numbered stream (`s0`, `s1`, ...) exactly once and in order; on the
//! process's cut it drops its socket and resumes on a random gate, and on `LL_Move` it waits
//! `after_ms` and resumes on a random other gate.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::wire::{Conn, Rng, frame, parse};
use super::{Shared, now_ns};
use crate::{IO_TIMEOUT, MAX_SKIPPED_FRAMES, sign_token};

/// Acknowledge after this many messages...
const ACK_EVERY: u64 = 32;
/// ... or this long after the first one not acknowledged.
const ACK_INTERVAL: Duration = Duration::from_millis(200);
/// The first reconnection wait's cap; each attempt doubles it, up to `MAX_BACKOFF`.
const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The chat's message types that are volatile: not numbered by the server.
const VOLATILE: &[&str] = &["S2C_Typing"];

/// What one turn of the serving loop ends with.
enum Step {
    Go,
    Ack,
    Cut,
    Move,
    Dropped(String),
    Lost(String),
}

pub(super) struct Session {
    idx: usize,
    uid: u64,
    room: u64,
    source: IpAddr,
    gate: SocketAddr,
    token: String,
    /// The server's numbered messages received, and the last count acknowledged.
    received: u64,
    acked: u64,
    ack_due: Option<Instant>,
    /// The client's application messages numbered so far, and those not yet acknowledged.
    sent: u64,
    kept: VecDeque<(u64, Vec<u8>)>,
    /// The next stream number expected.
    next: u64,
    move_at: Option<Instant>,
    rng: Rng,
}

impl Session {
    pub(super) fn new(idx: usize, uid: u64, room: u64, source: IpAddr, gate: SocketAddr) -> Self {
        Session {
            idx,
            uid,
            room,
            source,
            gate,
            token: String::new(),
            received: 0,
            acked: 0,
            ack_due: None,
            sent: 0,
            kept: VecDeque::new(),
            next: 0,
            move_at: None,
            rng: Rng::new(uid ^ now_ns()),
        }
    }

    /// Connects, makes the session resumable, logs in and watches the room.
    pub(super) async fn open(&mut self, sh: &Shared) -> Result<Conn> {
        let mut conn = Conn::open(self.source, self.gate).await?;
        conn.write(&frame(&json!({"LL_SessionStart": {}}))).await?;
        let body = self.expect(&mut conn, sh, "LL_Session").await?;
        self.token = body["token"].as_str().unwrap_or_default().to_owned();
        ensure!(!self.token.is_empty(), "LL_Session without a token");
        let exp = (now_ns() / 1_000_000_000) as i64 + 3600;
        let token = sign_token(sh.secret.as_bytes(), self.uid, exp);
        let login = json!({"C2S_UserLogin": {"token": token, "login_plat": 1}});
        self.send(&mut conn, &login).await?;
        let answer = self.expect(&mut conn, sh, "S2C_UserLogin").await?;
        ensure!(answer["ret"] == json!(1), "login refused: {answer}");
        let watch = json!({"C2S_UpdateWatchRoom": {"room_id": self.room}});
        self.send(&mut conn, &watch).await?;
        self.expect(&mut conn, sh, "S2C_UpdateWatchRoom").await?;
        Ok(conn)
    }

    /// Numbers, keeps and writes an application message.
    async fn send(&mut self, conn: &mut Conn, msg: &Value) -> Result<()> {
        self.sent += 1;
        let bytes = frame(msg);
        conn.write(&bytes).await?;
        self.kept.push_back((self.sent, bytes));
        Ok(())
    }

    /// Reads (and takes in) frames until one named `name`; its body.
    async fn expect(&mut self, conn: &mut Conn, sh: &Shared, name: &str) -> Result<Value> {
        for _ in 0..MAX_SKIPPED_FRAMES {
            let payload = timeout(IO_TIMEOUT, conn.next())
                .await
                .with_context(|| format!("timed out waiting for {name}"))??;
            let (got, body) = parse(&payload)?;
            if let Step::Lost(why) = self.take(&got, &body, sh) {
                bail!("the session ended: {why}");
            }
            ensure!(got != "S2C_Error", "the server answered {body}");
            if got == name {
                return Ok(body);
            }
        }
        bail!("no {name}")
    }

    /// Takes in one server message.
    fn take(&mut self, name: &str, body: &Value, sh: &Shared) -> Step {
        match name {
            "LL_Ack" => {
                let seq = body["seq"].as_u64().unwrap_or(0);
                while self.kept.front().is_some_and(|(n, _)| *n <= seq) {
                    self.kept.pop_front();
                }
            }
            "LL_Move" => {
                if self.move_at.is_none() {
                    let after = Duration::from_millis(body["after_ms"].as_u64().unwrap_or(0));
                    self.move_at = Some(Instant::now() + after);
                    sh.counts.moves_told.fetch_add(1, Ordering::Relaxed);
                    sh.counts
                        .first_move_ns
                        .fetch_min(now_ns(), Ordering::Relaxed);
                }
            }
            "LL_ResumeRefused" => {
                return Step::Lost(format!("refused on a live connection: {body}"));
            }
            n if n.starts_with("LL_") || VOLATILE.contains(&n) => {}
            _ => {
                self.received += 1;
                if self.ack_due.is_none() {
                    self.ack_due = Some(Instant::now() + ACK_INTERVAL);
                }
                if name == "S2C_Message" && body["room_id"].as_u64() == Some(self.room) {
                    self.stream(body, sh);
                }
                if self.received - self.acked >= ACK_EVERY {
                    return Step::Ack;
                }
            }
        }
        Step::Go
    }

    /// A room message: `s<k>` must be the next number.
    fn stream(&mut self, body: &Value, sh: &Shared) {
        let text = body["text"].as_str().unwrap_or_default();
        let Some(k) = text.strip_prefix('s').and_then(|k| k.parse::<u64>().ok()) else {
            return;
        };
        let c = &sh.counts;
        c.stream_received.fetch_add(1, Ordering::Relaxed);
        if k < self.next {
            c.dups.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if k > self.next {
            c.gaps.fetch_add(k - self.next, Ordering::Relaxed);
        }
        self.next = k + 1;
        sh.next[self.idx].store(self.next, Ordering::Relaxed);
    }

    /// Serves the session until it is lost (then it says why).
    pub(super) async fn serve(&mut self, mut conn: Conn, sh: Arc<Shared>) -> String {
        let mut cut = sh.cut.clone();
        cut.borrow_and_update();
        loop {
            let now = Instant::now();
            let step = tokio::select! {
                p = conn.next() => match p.and_then(|p| parse(&p)) {
                    Ok((name, body)) => self.take(&name, &body, &sh),
                    Err(e) => Step::Dropped(format!("{e:#}")),
                },
                _ = cut.changed() => Step::Cut,
                _ = sleep_until(self.move_at.unwrap_or(now)), if self.move_at.is_some() => Step::Move,
                _ = sleep_until(self.ack_due.unwrap_or(now)), if self.ack_due.is_some() => Step::Ack,
            };
            let c = &sh.counts;
            let moved = match step {
                Step::Go => continue,
                Step::Ack => {
                    let ack = frame(&json!({"LL_Ack": {"seq": self.received}}));
                    (self.acked, self.ack_due) = (self.received, None);
                    match conn.write(&ack).await {
                        Ok(()) => continue,
                        Err(e) => {
                            c.drops.fetch_add(1, Ordering::Relaxed);
                            sh.error(format!("uid {}: {e:#}", self.uid));
                            self.resume(conn, &sh, None, true).await
                        }
                    }
                }
                Step::Cut => {
                    c.cut.fetch_add(1, Ordering::Relaxed);
                    let r = self.resume(conn, &sh, None, true).await;
                    if r.is_ok() {
                        c.resumed.fetch_add(1, Ordering::Relaxed);
                        c.last_resumed_ns.fetch_max(now_ns(), Ordering::Relaxed);
                    }
                    r
                }
                Step::Move => {
                    let from = self.gate;
                    let r = self.resume(conn, &sh, Some(from), false).await;
                    if r.is_ok() {
                        c.moved.fetch_add(1, Ordering::Relaxed);
                        c.last_moved_ns.fetch_max(now_ns(), Ordering::Relaxed);
                    }
                    r
                }
                Step::Dropped(why) => {
                    c.drops.fetch_add(1, Ordering::Relaxed);
                    sh.error(format!("uid {} dropped on {}: {why}", self.uid, self.gate));
                    self.resume(conn, &sh, None, true).await
                }
                Step::Lost(why) => Err(why),
            };
            match moved {
                Ok(new) => conn = new,
                Err(why) => return why,
            }
        }
    }

    /// Drops `old` and resumes on a gate drawn from `sh.resume_to` (not `avoid`, if there is
    /// another), the first attempt at once (a move) or after a jittered wait (a drop), then
    /// with the backoff doubling; until the window passes.
    async fn resume(
        &mut self,
        old: Conn,
        sh: &Shared,
        avoid: Option<SocketAddr>,
        jitter_first: bool,
    ) -> std::result::Result<Conn, String> {
        drop(old);
        (self.move_at, self.ack_due) = (None, None);
        let since = Instant::now();
        let mut cap = INITIAL_BACKOFF;
        let mut wait = jitter_first;
        loop {
            if wait {
                let ms = self.rng.below(cap.as_millis() as u64 + 1);
                sleep(Duration::from_millis(ms)).await;
                cap = (cap * 2).min(MAX_BACKOFF);
            }
            wait = true;
            if since.elapsed() >= sh.window {
                return Err(format!("not resumed within the window ({:?})", sh.window));
            }
            let choices: Vec<SocketAddr> = sh
                .resume_to
                .iter()
                .copied()
                .filter(|g| Some(*g) != avoid || sh.resume_to.len() == 1)
                .collect();
            let gate = choices[self.rng.below(choices.len() as u64) as usize];
            match self.try_resume(gate).await {
                Ok(Ok(conn)) => {
                    self.gate = gate;
                    return Ok(conn);
                }
                Ok(Err(reason)) if reason == "retry" => {
                    sh.counts.retries.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(reason)) => return Err(format!("resume refused on {gate}: {reason}")),
                Err(e) => {
                    sh.counts.reconnect_errors.fetch_add(1, Ordering::Relaxed);
                    sh.error(format!("uid {} resuming on {gate}: {e:#}", self.uid));
                }
            }
        }
    }

    /// One attempt: the connection on `LL_Resumed` (the kept messages the server had not
    /// handled resent), the reason on `LL_ResumeRefused`, or an error.
    async fn try_resume(&mut self, gate: SocketAddr) -> Result<std::result::Result<Conn, String>> {
        let mut conn = Conn::open(self.source, gate).await?;
        let resume = json!({"LL_Resume": {"token": self.token, "last_seq": self.received}});
        conn.write(&frame(&resume)).await?;
        for _ in 0..MAX_SKIPPED_FRAMES {
            let payload = timeout(IO_TIMEOUT, conn.next())
                .await
                .context("no answer to LL_Resume")??;
            let (name, body) = parse(&payload)?;
            match name.as_str() {
                "LL_Resumed" => {
                    self.token = body["token"].as_str().unwrap_or_default().to_owned();
                    let handled = body["last_seq"].as_u64().unwrap_or(0);
                    while self.kept.front().is_some_and(|(n, _)| *n <= handled) {
                        self.kept.pop_front();
                    }
                    for (_, bytes) in &self.kept {
                        conn.write(bytes).await?;
                    }
                    self.acked = self.received;
                    return Ok(Ok(conn));
                }
                "LL_ResumeRefused" => {
                    let reason = body["reason"].as_str().unwrap_or_default();
                    return Ok(Err(reason.to_owned()));
                }
                _ => {} // nothing of the session's comes before the answer
            }
        }
        bail!("no answer to LL_Resume")
    }
}
