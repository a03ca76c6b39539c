//! Rooms: watch a room, say something to it, or to one user.

use longlink::{Agent, Ctx};

use crate::chat::{
    Chat, ERR_BAD_REQUEST, ERR_BANNED_WORD, ERR_NO_SUCH_ROOM, ERR_NOT_LOGGED_IN, ERR_NOT_ONLINE,
    ERR_ROOM_FULL, ERR_TEXT_TOO_LONG, ERR_TOO_FAST, ERR_UNAVAILABLE, now_unix, refuse,
};
use crate::msg::{C2sMessage, C2sUpdateWatchRoom, S2cMessage, S2cUpdateWatchRoom};
use crate::presence::room_changed;
use crate::rooms::Refusal;
use longlink::cluster::ClusterError;

/// Leaves the watched room (if any) and watches `room_id` (0 = none).
pub fn watch(ctx: &mut Ctx<Chat>, msg: C2sUpdateWatchRoom, agent: &Agent) {
    let conn = ctx.conn(agent);
    if conn.uid.is_none() {
        return refuse(agent, ERR_NOT_LOGGED_IN, "log in first");
    }
    if msg.room_id != 0
        && msg.room_id != conn.room
        && let Err(why) = ctx
            .room_rules
            .check_watch(msg.room_id, ctx.rooms.len_of(&msg.room_id))
    {
        return refuse_room(agent, msg.room_id, &why);
    }
    if conn.room != 0 && conn.room != msg.room_id {
        ctx.rooms.leave(&conn.room, agent);
        room_changed(ctx, conn.room);
    }
    let before = ctx.rooms.len_of(&msg.room_id);
    let online = if msg.room_id == 0 {
        0
    } else {
        ctx.rooms.join(msg.room_id, agent)
    };
    if online != before {
        room_changed(ctx, msg.room_id);
    }
    let online = u32::try_from(online).unwrap_or(u32::MAX);
    if let Some(c) = ctx.conns.get_mut(&agent.id()) {
        c.room = msg.room_id;
        c.told = online;
    }
    let _ = agent.write(&S2cUpdateWatchRoom {
        room_id: msg.room_id,
        online,
    });
}

/// A `C2S_Message` over `[chat] max_msgs_per_sec` (on the connection's task): it is not
/// delivered; the client hears why.
pub fn too_fast(agent: &Agent) {
    refuse(
        agent,
        ERR_TOO_FAST,
        "too many messages a second; this one was not delivered",
    );
}

/// A room message (to every watcher, the sender included) or a private one.
pub fn message(ctx: &mut Ctx<Chat>, msg: C2sMessage, agent: &Agent) {
    let Some(from_uid) = ctx.conn(agent).uid else {
        return refuse(agent, ERR_NOT_LOGGED_IN, "log in first");
    };
    if msg.text.chars().count() > ctx.max_text_len {
        return refuse(
            agent,
            ERR_TEXT_TOO_LONG,
            &format!("text longer than {} characters", ctx.max_text_len),
        );
    }
    if msg.to_uid == 0
        && msg.room_id != 0
        && let Err(why) = ctx.room_rules.check_text(msg.room_id, &msg.text)
    {
        return refuse_room(agent, msg.room_id, &why);
    }
    let out = S2cMessage {
        room_id: msg.room_id,
        from_uid,
        to_uid: msg.to_uid,
        text: msg.text,
        ts: now_unix(),
    };
    if msg.to_uid != 0 {
        if let Some(to) = ctx.sessions.get(msg.to_uid) {
            let _ = to.write(&out);
            return;
        }
        let Some(cluster) = ctx.cluster.clone() else {
            return refuse(agent, ERR_NOT_ONLINE, "user not online");
        };
        // Logged in through another backend node: the directory knows its gate.
        let encoded = match agent.codec().encode(&out) {
            Ok(e) => e,
            Err(e) => return tracing::warn!(error = %e, "cannot encode S2C_Message"),
        };
        let (to_uid, agent) = (msg.to_uid, agent.clone());
        ctx.spawn(
            async move { cluster.push_uid(to_uid, &encoded).await },
            move |_ctx, result| match result {
                Ok(()) => {}
                Err(ClusterError::NotOnline(_)) => {
                    refuse(&agent, ERR_NOT_ONLINE, "user not online")
                }
                Err(e) => refuse(
                    &agent,
                    ERR_UNAVAILABLE,
                    &format!("cannot reach the user: {e}"),
                ),
            },
        );
        return;
    }
    if msg.room_id == 0 {
        return refuse(agent, ERR_BAD_REQUEST, "room_id or to_uid is required");
    }
    // Encode once; every watcher's queue shares the bytes.
    let encoded = match agent.codec().encode(&out) {
        Ok(e) => e,
        Err(e) => return tracing::warn!(error = %e, "cannot encode S2C_Message"),
    };
    ctx.rooms.broadcast(&msg.room_id, &encoded);
    let sender_watches = ctx
        .rooms
        .get(&msg.room_id)
        .is_some_and(|room| room.contains(agent));
    if !sender_watches {
        let _ = agent.write_encoded(&encoded);
    }
}

/// Tells the client why the room table refused it.
fn refuse_room(agent: &Agent, room_id: u64, why: &Refusal) {
    match why {
        Refusal::Unknown => refuse(agent, ERR_NO_SUCH_ROOM, &format!("no room {room_id}")),
        Refusal::Full(max) => refuse(
            agent,
            ERR_ROOM_FULL,
            &format!("room {room_id} is full ({max} watchers)"),
        ),
        Refusal::Banned(word) => refuse(
            agent,
            ERR_BANNED_WORD,
            &format!("room {room_id} does not allow {word:?}"),
        ),
    }
}
