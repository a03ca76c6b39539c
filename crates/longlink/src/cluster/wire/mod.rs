//! The cluster's own envelopes on NATS: small binary headers in front of the client payload,
//! which crosses untouched (encoded once by the node that wrote it).
//!
//! Every envelope starts with a one-byte kind. Integers are little-endian `u64`; strings
//! carry a `u16` length. A malformed envelope is an error, never a panic.

use bytes::{BufMut, Bytes, BytesMut};

/// Gate node to backend node: one connection's life.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToBackend {
    /// A connection opened (sent as a request to the type's queue group; the reply is the
    /// node id that took it).
    Open {
        gate: String,
        conn: u64,
        transport: u8,
        local: String,
        remote: String,
    },
    /// A client message, acknowledged on its reply subject (from older gates: see `Forward`).
    Msg {
        gate: String,
        conn: u64,
        payload: Bytes,
    },
    /// A client message, the gate's forwarded message `seq`: once handled, acknowledged by
    /// `ToGate::Handled { seq }` to `gate`, usually in one NATS message with the answers. Its
    /// NATS reply subject only hears NATS's "no responders".
    Forward {
        gate: String,
        conn: u64,
        seq: u64,
        payload: Bytes,
    },
    /// The connection closed.
    Close { gate: String, conn: u64 },
    /// The connection's session moved to another gate (a resume there): the same agent
    /// goes on, reaching `to_conn` on `to_gate` (sent as a request: the reply says it has).
    Rebind {
        gate: String,
        conn: u64,
        to_gate: String,
        to_conn: u64,
        transport: u8,
        local: String,
        remote: String,
    },
    /// A stopping node's connection moves to another node of its type: sent to the stopping
    /// node (as a request, in order after the connection's messages); the reply is the
    /// connection's state there ([`AgentState`]), or empty if it does not hold it.
    HandOff { gate: String, conn: u64 },
    /// Take this connection, with its state (sent as a request to the type's queue group;
    /// the reply is the node id that took it).
    Adopt(Adopt),
    /// Is any node of this type serving? (a request to the type's queue group; the reply is
    /// the node id of one that is).
    Probe,
    /// Which of `gate`'s messages has this node acknowledged lately? (a request to the node's
    /// own subject, from a gate back from a NATS outage; the reply is their sequence
    /// numbers, `u64` each).
    Acked { gate: String },
}

const OPEN: u8 = 1;
const MSG: u8 = 2;
const CLOSE: u8 = 3;
const REBIND: u8 = 4;
const HAND_OFF: u8 = 5;
const ADOPT: u8 = 6;
const PROBE: u8 = 7;
const FORWARD: u8 = 8;
const ACKED: u8 = 9;

impl ToBackend {
    pub(crate) fn encode(&self) -> Bytes {
        let extra = match self {
            ToBackend::Msg { gate, payload, .. } | ToBackend::Forward { gate, payload, .. } => {
                gate.len() + payload.len()
            }
            _ => 0,
        };
        let mut out = BytesMut::with_capacity(32 + extra);
        match self {
            ToBackend::Open {
                gate,
                conn,
                transport,
                local,
                remote,
            } => {
                out.put_u8(OPEN);
                put_str(&mut out, gate);
                out.put_u64_le(*conn);
                out.put_u8(*transport);
                put_str(&mut out, local);
                put_str(&mut out, remote);
            }
            ToBackend::Msg {
                gate,
                conn,
                payload,
            } => {
                out.put_u8(MSG);
                put_str(&mut out, gate);
                out.put_u64_le(*conn);
                out.put_slice(payload);
            }
            ToBackend::Forward {
                gate,
                conn,
                seq,
                payload,
            } => put_forward(&mut out, gate, *conn, *seq, payload),
            ToBackend::Close { gate, conn } => {
                out.put_u8(CLOSE);
                put_str(&mut out, gate);
                out.put_u64_le(*conn);
            }
            ToBackend::Rebind {
                gate,
                conn,
                to_gate,
                to_conn,
                transport,
                local,
                remote,
            } => {
                out.put_u8(REBIND);
                put_str(&mut out, gate);
                out.put_u64_le(*conn);
                put_str(&mut out, to_gate);
                out.put_u64_le(*to_conn);
                out.put_u8(*transport);
                put_str(&mut out, local);
                put_str(&mut out, remote);
            }
            ToBackend::HandOff { gate, conn } => {
                out.put_u8(HAND_OFF);
                put_str(&mut out, gate);
                out.put_u64_le(*conn);
            }
            ToBackend::Adopt(adopt) => {
                out.put_u8(ADOPT);
                adopt.put(&mut out);
            }
            ToBackend::Probe => out.put_u8(PROBE),
            ToBackend::Acked { gate } => {
                out.put_u8(ACKED);
                put_str(&mut out, gate);
            }
        }
        out.freeze()
    }

    pub(crate) fn decode(bytes: Bytes) -> Result<ToBackend, WireError> {
        let mut r = Reader(bytes);
        Ok(match r.u8()? {
            OPEN => ToBackend::Open {
                gate: r.str()?,
                conn: r.u64()?,
                transport: r.u8()?,
                local: r.str()?,
                remote: r.str()?,
            },
            MSG => ToBackend::Msg {
                gate: r.str()?,
                conn: r.u64()?,
                payload: r.rest(),
            },
            FORWARD => ToBackend::Forward {
                gate: r.str()?,
                conn: r.u64()?,
                seq: r.u64()?,
                payload: r.rest(),
            },
            CLOSE => ToBackend::Close {
                gate: r.str()?,
                conn: r.u64()?,
            },
            REBIND => ToBackend::Rebind {
                gate: r.str()?,
                conn: r.u64()?,
                to_gate: r.str()?,
                to_conn: r.u64()?,
                transport: r.u8()?,
                local: r.str()?,
                remote: r.str()?,
            },
            HAND_OFF => ToBackend::HandOff {
                gate: r.str()?,
                conn: r.u64()?,
            },
            ADOPT => ToBackend::Adopt(Adopt::read(r)?),
            PROBE => ToBackend::Probe,
            ACKED => ToBackend::Acked { gate: r.str()? },
            _ => return Err(WireError("unknown kind")),
        })
    }
}

/// `ToBackend::Forward`, appended to `out` (also by the publisher, straight into a batch).
fn put_forward(out: &mut BytesMut, gate: &str, conn: u64, seq: u64, payload: &[u8]) {
    out.put_u8(FORWARD);
    put_str(out, gate);
    out.put_u64_le(conn);
    out.put_u64_le(seq);
    out.put_slice(payload);
}

pub(crate) mod batch;
mod body;
mod handover;
mod holder;
mod moving;
mod primitives;
mod push_many;
mod replay;
#[cfg(test)]
mod tests;
mod to_gate;
mod transfer;

pub(crate) use batch::BatchWriter;
pub(crate) use body::Body;
pub(crate) use handover::{HandoverAnswer, HandoverRequest};
pub(crate) use holder::{Holder, now_micros};
pub(crate) use moving::{Adopt, AgentState};
pub(crate) use primitives::WireError;
use primitives::{Reader, put_str};
pub(crate) use push_many::PushUids;
pub(crate) use replay::{ANSWER_BYTES, ReplayAnswer, ReplayRequest, Replayed};
pub(crate) use to_gate::ToGate;
pub(crate) use transfer::{HandoverReply, HandoverStep, decode_items, encode_items};
