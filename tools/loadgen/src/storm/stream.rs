//! The rooms' numbered streams: one plain (not resumable) connection per room, logged in as
//! its own uid, says `s0`, `s1`, ... to the room at a steady rate until told to stop. The
//! chat echoes each one to its sender (who does not watch the room); an `S2C_Error` instead
//! (a message refused, so missing at every watcher through no fault of the resume) is
//! counted.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval, timeout};

use super::wire::{Conn, frame, parse};
use super::{Shared, now_ns};
use crate::{IO_TIMEOUT, MAX_SKIPPED_FRAMES, sign_token};

/// Connects a room's sender to `gate` and logs it in as `uid`.
pub(super) async fn connect(
    sh: &Shared,
    source: IpAddr,
    gate: SocketAddr,
    uid: u64,
) -> Result<Conn> {
    let mut conn = Conn::open(source, gate).await?;
    let exp = (now_ns() / 1_000_000_000) as i64 + 3600;
    let token = sign_token(sh.secret.as_bytes(), uid, exp);
    let login = json!({"C2S_UserLogin": {"token": token, "login_plat": 1}});
    conn.write(&frame(&login)).await?;
    for _ in 0..MAX_SKIPPED_FRAMES {
        let payload = timeout(IO_TIMEOUT, conn.next()).await??;
        let (name, body) = parse(&payload)?;
        if name == "S2C_UserLogin" {
            ensure!(body["ret"] == json!(1), "sender login refused: {body}");
            return Ok(conn);
        }
    }
    bail!("no S2C_UserLogin for the sender {uid}")
}

/// Says `s<k>` to `room` `rate` times a second until `stop` turns true; `sent[r]` is how
/// many it said.
pub(super) async fn run(
    mut conn: Conn,
    sh: Arc<Shared>,
    r: usize,
    room: u64,
    rate: f64,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut k: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let say = json!({"C2S_Message": {"room_id": room, "to_uid": 0, "text": format!("s{k}")}});
                if let Err(e) = conn.write(&frame(&say)).await {
                    sh.error(format!("the sender of room {room}: {e:#}"));
                    return;
                }
                k += 1;
                sh.sent[r].store(k, Ordering::Relaxed);
            }
            p = conn.next() => match p.and_then(|p| parse(&p)) {
                Ok((name, body)) if name == "S2C_Error" => {
                    sh.counts.sender_errors.fetch_add(1, Ordering::Relaxed);
                    sh.error(format!("the sender of room {room} heard {body}"));
                }
                Ok(_) => {}
                Err(e) => {
                    sh.error(format!("the sender of room {room}: {e:#}"));
                    return;
                }
            },
            r = stop.changed() => if r.is_err() || *stop.borrow() {
                return;
            },
        }
    }
}
