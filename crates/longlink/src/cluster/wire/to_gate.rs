//! [`ToGate`]: what any node tells a gate node to do with a connection it holds, and its
//! encoding (kinds 10 and up; [`ToBackend`](super::ToBackend)'s are below 10).

use bytes::{BufMut, Bytes, BytesMut};

use super::PushUids;
use super::primitives::{Reader, WireError, put_str};

/// Any node to a gate node: act on a connection it holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToGate {
    /// Queue this payload.
    Push { conn: u64, payload: Bytes },
    /// Close gracefully (flush first).
    Close { conn: u64 },
    /// Close now.
    Destroy { conn: u64 },
    /// The connection logged in as `uid` (0: logged out) at `at` (microseconds since the
    /// Unix epoch, on the node that bound it): of two logins of one uid, the later stays.
    Bind { conn: u64, uid: u64, at: u64 },
    /// The connection joins a cluster group.
    Join { conn: u64, group: String },
    /// The connection leaves a cluster group.
    Leave { conn: u64, group: String },
    /// Queue this payload on whichever connection of this gate holds `uid`.
    /// `conn` is the connection the directory names; the gate looks further only if that
    /// one no longer holds `uid`.
    PushUid { conn: u64, uid: u64, payload: Bytes },
    /// Write `payload` (if not empty) to `uid`'s connection, then close it (`conn` as for
    /// `PushUid`).
    KickUid { conn: u64, uid: u64, payload: Bytes },
    /// `uid` logged in on another connection: say goodbye to `conn` if it still holds it.
    Displace { conn: u64, uid: u64 },
    /// Kick `uid`'s connection (`conn` as for `PushUid`) with the application's goodbye
    /// ([`Goodbye::Kicked`](crate::gate::Goodbye::Kicked) with `reason`), flushed, then closed.
    Goodbye { conn: u64, uid: u64, reason: String },
    /// Sent by a gate to itself: once it comes back, everything other nodes sent this gate
    /// before it has been applied.
    Barrier { id: u64 },
    /// Node `from` is stopping: move the connection's binding of `node_type` to another node
    /// of that type (through `ToBackend::HandOff` and `ToBackend::Adopt`).
    Move {
        conn: u64,
        node_type: String,
        from: String,
    },
    /// The gate's forwarded message `seq` (`ToBackend::Forward`) has been handled.
    Handled { seq: u64 },
    /// Queue one payload on many connections of this gate (a push to many uids).
    PushUids(PushUids),
}

const PUSH: u8 = 10;
const G_CLOSE: u8 = 11;
const DESTROY: u8 = 12;
const BIND: u8 = 13;
const JOIN: u8 = 14;
const LEAVE: u8 = 15;
const PUSH_UID: u8 = 16;
const KICK_UID: u8 = 17;
const DISPLACE: u8 = 18;
const GOODBYE: u8 = 19;
const BARRIER: u8 = 20;
const MOVE: u8 = 21;
const HANDLED: u8 = 22;
pub(super) const PUSH_UIDS: u8 = 23;

impl ToGate {
    pub(crate) fn encode(&self) -> Bytes {
        let extra = match self {
            ToGate::Push { payload, .. }
            | ToGate::PushUid { payload, .. }
            | ToGate::KickUid { payload, .. } => payload.len(),
            _ => 0,
        };
        let mut out = BytesMut::with_capacity(24 + extra);
        match self {
            ToGate::Push { conn, payload } => put_push(&mut out, *conn, payload),
            ToGate::Close { conn } => {
                out.put_u8(G_CLOSE);
                out.put_u64_le(*conn);
            }
            ToGate::Destroy { conn } => {
                out.put_u8(DESTROY);
                out.put_u64_le(*conn);
            }
            ToGate::Bind { conn, uid, at } => {
                out.put_u8(BIND);
                out.put_u64_le(*conn);
                out.put_u64_le(*uid);
                out.put_u64_le(*at);
            }
            ToGate::Join { conn, group } => {
                out.put_u8(JOIN);
                out.put_u64_le(*conn);
                put_str(&mut out, group);
            }
            ToGate::Leave { conn, group } => {
                out.put_u8(LEAVE);
                out.put_u64_le(*conn);
                put_str(&mut out, group);
            }
            ToGate::PushUid { conn, uid, payload } => {
                out.put_u8(PUSH_UID);
                out.put_u64_le(*conn);
                out.put_u64_le(*uid);
                out.put_slice(payload);
            }
            ToGate::KickUid { conn, uid, payload } => {
                out.put_u8(KICK_UID);
                out.put_u64_le(*conn);
                out.put_u64_le(*uid);
                out.put_slice(payload);
            }
            ToGate::Displace { conn, uid } => {
                out.put_u8(DISPLACE);
                out.put_u64_le(*conn);
                out.put_u64_le(*uid);
            }
            ToGate::Goodbye { conn, uid, reason } => {
                out.put_u8(GOODBYE);
                out.put_u64_le(*conn);
                out.put_u64_le(*uid);
                put_str(&mut out, reason);
            }
            ToGate::Barrier { id } => {
                out.put_u8(BARRIER);
                out.put_u64_le(*id);
            }
            ToGate::Move {
                conn,
                node_type,
                from,
            } => {
                out.put_u8(MOVE);
                out.put_u64_le(*conn);
                put_str(&mut out, node_type);
                put_str(&mut out, from);
            }
            ToGate::Handled { seq } => put_handled(&mut out, *seq),
            ToGate::PushUids(many) => {
                out.reserve(many.len());
                out.put_u8(PUSH_UIDS);
                many.put(&mut out);
            }
        }
        out.freeze()
    }

    pub(crate) fn decode(bytes: Bytes) -> Result<ToGate, WireError> {
        let mut r = Reader(bytes);
        Ok(match r.u8()? {
            PUSH => ToGate::Push {
                conn: r.u64()?,
                payload: r.rest(),
            },
            G_CLOSE => ToGate::Close { conn: r.u64()? },
            DESTROY => ToGate::Destroy { conn: r.u64()? },
            BIND => ToGate::Bind {
                conn: r.u64()?,
                uid: r.u64()?,
                at: r.u64()?,
            },
            JOIN => ToGate::Join {
                conn: r.u64()?,
                group: r.str()?,
            },
            LEAVE => ToGate::Leave {
                conn: r.u64()?,
                group: r.str()?,
            },
            PUSH_UID => ToGate::PushUid {
                conn: r.u64()?,
                uid: r.u64()?,
                payload: r.rest(),
            },
            KICK_UID => ToGate::KickUid {
                conn: r.u64()?,
                uid: r.u64()?,
                payload: r.rest(),
            },
            DISPLACE => ToGate::Displace {
                conn: r.u64()?,
                uid: r.u64()?,
            },
            GOODBYE => ToGate::Goodbye {
                conn: r.u64()?,
                uid: r.u64()?,
                reason: r.str()?,
            },
            BARRIER => ToGate::Barrier { id: r.u64()? },
            MOVE => ToGate::Move {
                conn: r.u64()?,
                node_type: r.str()?,
                from: r.str()?,
            },
            HANDLED => ToGate::Handled { seq: r.u64()? },
            PUSH_UIDS => ToGate::PushUids(PushUids::read(r)?),
            _ => return Err(WireError("unknown kind")),
        })
    }
}

/// `ToGate::Push`, appended to `out` (also by the publisher, straight into a batch).
pub(super) fn put_push(out: &mut BytesMut, conn: u64, payload: &[u8]) {
    out.put_u8(PUSH);
    out.put_u64_le(conn);
    out.put_slice(payload);
}

/// `ToGate::Handled`, appended to `out` (also by the publisher, straight into a batch).
pub(super) fn put_handled(out: &mut BytesMut, seq: u64) {
    out.put_u8(HANDLED);
    out.put_u64_le(seq);
}
