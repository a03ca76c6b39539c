//! Who is there: typing signals (`C2S_Typing` in, the volatile `S2C_Typing` out to the
//! room's other watchers) and the room's watcher count (`S2C_RoomInfo`, latest per room).
//!
//! A count change is not sent at once: changes within [`ROOM_INFO_DELAY`] are one
//! `S2C_RoomInfo`, and a watcher that was already told the count (the one that just joined,
//! by its `S2C_UpdateWatchRoom`) is not told again. A room that fills up with n watchers
//! costs each of them a few messages, not n, and the node one room broadcast per change, not n
//! writes.

use std::time::Duration;

use longlink::{Agent, Ctx};

use crate::chat::{Chat, ERR_NOT_LOGGED_IN, refuse};
use crate::msg::{C2sTyping, S2cRoomInfo, S2cTyping};

/// How long count changes gather before their `S2C_RoomInfo` goes out.
pub const ROOM_INFO_DELAY: Duration = Duration::from_millis(100);

/// "I am typing in this room": the room's other watchers get `S2C_Typing` (volatile: a
/// watcher that is behind does not), as a room broadcast that leaves the sender out. A room
/// the sender does not watch is ignored.
pub fn typing(ctx: &mut Ctx<Chat>, msg: C2sTyping, agent: &Agent) {
    let conn = ctx.conn(agent);
    let Some(uid) = conn.uid else {
        return refuse(agent, ERR_NOT_LOGGED_IN, "log in first");
    };
    if msg.room_id == 0 || msg.room_id != conn.room {
        return;
    }
    if ctx.rooms.get(&msg.room_id).is_none() {
        return;
    }
    let signal = S2cTyping {
        room_id: msg.room_id,
        uid,
    };
    let encoded = match agent.codec().encode(&signal) {
        Ok(e) => e,
        Err(e) => return tracing::warn!(error = %e, "cannot encode S2C_Typing"),
    };
    // One broadcast (in a cluster, one NATS message for every gate), the sender left out.
    ctx.rooms.broadcast_except(&msg.room_id, &encoded, agent);
}

/// The watcher count of `room` changed: its `S2C_RoomInfo` goes out within
/// [`ROOM_INFO_DELAY`].
pub(crate) fn room_changed(ctx: &mut Ctx<Chat>, room: u64) {
    if room == 0 {
        return;
    }
    let first = ctx.room_info_due.is_empty();
    ctx.room_info_due.insert(room);
    if first {
        ctx.after(ROOM_INFO_DELAY, send_room_info);
    }
}

/// Tells the watchers of every room whose count changed the count, save those who know it.
/// As a rule that is one room broadcast (in a cluster one NATS message, each gate writing to
/// its own watchers), leaving out the one watcher that knows the count already, if any (the
/// last to join, told by its `S2C_UpdateWatchRoom`); only when several know it are the others
/// told one by one. One by one, a room that fills up with n watchers at r joins a second cost
/// the node about n times r/10 writes a second (each a command to the watcher's gate): in a
/// login storm of 100,000 connections over 100 rooms, the chat node's turn on its CPU went to
/// them, and new connections' binding requests waited past `request_timeout`.
fn send_room_info(ctx: &mut Ctx<Chat>) {
    let due = std::mem::take(&mut ctx.room_info_due);
    for room_id in due {
        let chat: &mut Chat = ctx;
        let Some(room) = chat.rooms.get(&room_id) else {
            continue;
        };
        let online = u32::try_from(room.len()).unwrap_or(u32::MAX);
        let knows = |chat: &Chat, watcher: &Agent| {
            chat.conns
                .get(&watcher.id())
                .is_some_and(|c| c.told == online)
        };
        let mut knowing = room.members().filter(|w| knows(chat, w));
        let (first, second) = (knowing.next().cloned(), knowing.next().is_some());
        let mut unaware = Vec::new();
        for watcher in room.members() {
            if let Some(conn) = chat.conns.get_mut(&watcher.id())
                && conn.told != online
            {
                conn.told = online;
                unaware.push(watcher);
            }
        }
        let Some(any) = unaware.first() else {
            continue;
        };
        let encoded = match any.codec().encode(&S2cRoomInfo { room_id, online }) {
            Ok(e) => e,
            Err(e) => return tracing::warn!(error = %e, "cannot encode S2C_RoomInfo"),
        };
        match (first, second) {
            (None, _) => {
                chat.rooms.broadcast(&room_id, &encoded);
            }
            (Some(knower), false) => {
                chat.rooms.broadcast_except(&room_id, &encoded, &knower);
            }
            (Some(_), true) => {
                for watcher in unaware {
                    let _ = watcher.write_encoded(&encoded);
                }
            }
        }
    }
}
