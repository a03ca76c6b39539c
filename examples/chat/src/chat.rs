//! The chat module's state: who is logged in, who watches which room, and the connection
//! events that keep both up to date.

use std::collections::HashMap;

use longlink::cluster::{Cluster, ClusterError};
use longlink::gate::Goodbye;
use longlink::{Agent, Ctx, Groups, Sessions};

use crate::ChatConfig;
use crate::msg::{S2cError, S2cKick};
use crate::rooms::Rooms;

/// `S2C_Error.code`: a message that needs a login came before one.
pub const ERR_NOT_LOGGED_IN: i32 = 1;
/// `S2C_Error.code`: the text is longer than `[chat] max_text_len` characters.
pub const ERR_TEXT_TOO_LONG: i32 = 2;
/// `S2C_Error.code`: the receiver of a private message is not online.
pub const ERR_NOT_ONLINE: i32 = 3;
/// `S2C_Error.code`: the request is malformed (e.g. a room message to room 0).
pub const ERR_BAD_REQUEST: i32 = 4;
/// `S2C_Error.code`: the chat service (a backend node of the cluster) did not answer; the
/// request may not have been handled. Try again.
pub const ERR_UNAVAILABLE: i32 = 5;
/// `S2C_Error.code`: the room has `max_online` watchers (`[chat] rooms_file`); the previous
/// watch stays.
pub const ERR_ROOM_FULL: i32 = 6;
/// `S2C_Error.code`: the room message contains one of the room's banned words; it is not
/// delivered.
pub const ERR_BANNED_WORD: i32 = 7;
/// `S2C_Error.code`: the room is not in the room table (`[chat] rooms_file`); the previous
/// watch stays.
pub const ERR_NO_SUCH_ROOM: i32 = 8;

/// `S2C_Error.code`: more than `[chat] max_msgs_per_sec` messages in a second; this one is
/// not delivered.
pub const ERR_TOO_FAST: i32 = 9;

/// `S2C_Error.code`: room messages may have been missed (the gate missed some while NATS
/// restarted and could not get them again): sent unasked, to every watcher of a room on
/// that gate.
pub const ERR_MISSED: i32 = 10;

/// What the chat module knows of one connection. It moves with the connection when its
/// chat node stops (the connection's user data on the way: see [`on_hand_off_agent`]).
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Conn {
    /// The uid after login.
    pub uid: Option<u64>,
    /// The room watched, 0 for none.
    pub room: u64,
    /// The room's watcher count as this connection was last told it.
    pub told: u32,
}

/// The chat module's state.
pub struct Chat {
    pub(crate) secret: Vec<u8>,
    pub(crate) max_text_len: usize,
    pub(crate) sessions: Sessions,
    pub(crate) rooms: Groups<u64>,
    pub(crate) conns: HashMap<u64, Conn>,
    /// The cluster, when this node is one of several.
    pub(crate) cluster: Option<Cluster>,
    /// The room table's rules (every room open without one).
    pub(crate) room_rules: Rooms,
    /// Rooms whose watcher count changed since their last `S2C_RoomInfo`.
    pub(crate) room_info_due: std::collections::HashSet<u64>,
}

impl Chat {
    /// A chat module state from its configuration; with a cluster, rooms span every gate
    /// and private messages reach users connected anywhere.
    pub fn new(config: &ChatConfig, cluster: Option<&Cluster>) -> Self {
        Chat {
            secret: config.token_secret.as_bytes().to_vec(),
            max_text_len: config.max_text_len,
            sessions: Sessions::new(),
            rooms: Groups::in_cluster("room", cluster),
            conns: HashMap::new(),
            cluster: cluster.cloned(),
            room_rules: Rooms::open(),
            room_info_due: std::collections::HashSet::new(),
        }
    }

    /// With the rules of a room table (`[chat] rooms_file`).
    pub fn with_rooms(mut self, rooms: Rooms) -> Self {
        self.room_rules = rooms;
        self
    }

    /// Users logged in.
    pub fn online(&self) -> usize {
        self.sessions.len()
    }

    /// Watchers of a room.
    pub fn watchers(&self, room: u64) -> usize {
        self.rooms.len_of(&room)
    }

    /// What is known of a connection.
    pub fn conn(&self, agent: &Agent) -> Conn {
        self.conns.get(&agent.id()).copied().unwrap_or_default()
    }
}

/// A connection opened. Nothing is kept of it until it logs in (its entry in `conns` is made
/// then): an idle connection costs the chat nothing. One that brought a token in its upgrade
/// (`?token=`) logs in now ([`login::at_upgrade`](crate::login::at_upgrade)).
pub fn on_new_agent(ctx: &mut Ctx<Chat>, agent: &Agent) {
    crate::login::at_upgrade(ctx, agent);
}

/// A connection closed: it leaves its room and, if it still holds its uid, logs out.
pub fn on_close_agent(ctx: &mut Ctx<Chat>, agent: &Agent) {
    let Some(conn) = ctx.conns.remove(&agent.id()) else {
        return;
    };
    if conn.room != 0 {
        ctx.rooms.leave(&conn.room, agent);
        crate::presence::room_changed(ctx, conn.room);
    }
    if let Some(uid) = conn.uid {
        ctx.sessions.unbind(uid, agent);
    }
}

/// This chat node stops and the connection moves to another one: what the module knows of it
/// goes into its user data (which moves with it) and leaves the module's maps. Its gate
/// keeps its login and room: leaving them here is not told to the gate.
pub fn on_hand_off_agent(ctx: &mut Ctx<Chat>, agent: &Agent) {
    let Some(conn) = ctx.conns.remove(&agent.id()) else {
        return;
    };
    if conn.room != 0 {
        ctx.rooms.leave(&conn.room, agent);
    }
    if let Some(uid) = conn.uid {
        ctx.sessions.unbind(uid, agent);
    }
    agent.set_user_data(conn);
}

/// A connection moved here from a chat node that stops: it is logged in and in its room
/// here, as it was there, with no new login.
pub fn on_adopt_agent(ctx: &mut Ctx<Chat>, agent: &Agent) {
    let Some(conn) = agent.user_data::<Conn>() else {
        return;
    };
    agent.clear_user_data();
    let mut conn = conn;
    if let Some(uid) = conn.uid {
        if ctx.sessions.get(uid).is_some_and(|other| other != agent) {
            // A later login of the same uid came here meanwhile: it stays (its gate displaces
            // this connection).
            tracing::debug!(
                uid,
                conn = agent.id(),
                "moved connection lost its login to a newer one"
            );
            conn.uid = None;
        } else {
            ctx.sessions.bind(uid, agent);
        }
    }
    if conn.room != 0 {
        ctx.rooms.join(conn.room, agent);
    }
    ctx.conns.insert(agent.id(), conn);
}

/// The gate is closing a connection on its own account (shutdown, idle, rate limit): it gets
/// `S2C_Kick` with the reason (`"shutdown"`, `"idle"`, `"rate limit"`), flushed before the
/// close.
pub fn on_goodbye(agent: &Agent, why: Goodbye) {
    let _ = agent.write(&S2cKick {
        reason: why.reason().into(),
    });
}

/// A gate node could not get a chat message handled by a backend: the client gets
/// `S2C_Error{code: 5}` (the connection stays open).
pub fn on_forward_error(agent: &Agent, message: &str, error: &ClusterError) {
    refuse(
        agent,
        ERR_UNAVAILABLE,
        &format!("chat service unavailable ({message}: {error})"),
    );
}

/// A gate node lost room messages for good in a NATS outage (see
/// [`GateBuilder::on_broadcast_loss`](longlink::gate::GateBuilder::on_broadcast_loss)): each
/// watcher there gets `S2C_Error{code: 10}`.
pub fn on_broadcast_loss(agent: &Agent) {
    refuse(
        agent,
        ERR_MISSED,
        "room messages may have been missed (the chat service lost them in an outage)",
    );
}

/// Refuses a request with `S2C_Error`; the connection stays open.
pub(crate) fn refuse(agent: &Agent, code: i32, msg: &str) {
    let _ = agent.write(&S2cError {
        code,
        msg: msg.to_owned(),
    });
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
