//! Who is there: typing signals (`C2S_Typing` in, the volatile `S2C_Typing` out to the
//! room's other watchers) and the room's watcher count (`S2C_RoomInfo`, latest per room).
//!
//! A count change is not sent at once: changes within [`ROOM_INFO_DELAY`] are one
//! `S2C_RoomInfo`, and a watcher that was already told the count (the one that just joined,
//! by its `S2C_UpdateWatchRoom`) is not told again. A room that fills up with n watchers
//! costs each of them a few messages, not n.

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
fn send_room_info(ctx: &mut Ctx<Chat>) {
    let due = std::mem::take(&mut ctx.room_info_due);
    for room_id in due {
        let chat: &mut Chat = ctx;
        let Some(room) = chat.rooms.get(&room_id) else {
            continue;
        };
        let online = u32::try_from(room.len()).unwrap_or(u32::MAX);
        let mut encoded = None;
        for watcher in room.members() {
            let Some(conn) = chat.conns.get_mut(&watcher.id()) else {
                continue;
            };
            if conn.told == online {
                continue;
            }
            conn.told = online;
            let info = S2cRoomInfo { room_id, online };
            let encoded = match &encoded {
                Some(e) => e,
                None => match watcher.codec().encode(&info) {
                    Ok(e) => encoded.insert(e),
                    Err(e) => return tracing::warn!(error = %e, "cannot encode S2C_RoomInfo"),
                },
            };
            let _ = watcher.write_encoded(encoded);
        }
    }
}
