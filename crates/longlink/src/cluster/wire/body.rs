//! The envelopes a node's publisher encodes itself, straight into the NATS message that
//! carries them (alone, or into a batch): the ones sent once per client message (a forwarded
//! message, a push, an acknowledgement), which would otherwise be encoded into a buffer of
//! their own and then copied into the batch. The bytes are the same as those of
//! [`ToBackend::encode`](super::ToBackend::encode) and [`ToGate::encode`]: both write
//! through the same functions (`put_forward`, `put_push`, `put_handled`).

use bytes::{BufMut, Bytes, BytesMut};

use super::put_forward;
use super::to_gate::{ToGate, put_handled, put_push};

/// One envelope on its way to the publisher.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// Encoded already.
    Bytes(Bytes),
    /// `ToBackend::Forward` from this node (its id is given when it is encoded).
    Forward { conn: u64, seq: u64, payload: Bytes },
    /// `ToGate::Push`.
    Push { conn: u64, payload: Bytes },
    /// `ToGate::Handled`.
    Handled { seq: u64 },
}

impl Body {
    /// A command to a gate: encoded by the publisher if it is one of the hot ones, now if not.
    pub(crate) fn command(msg: ToGate) -> Body {
        match msg {
            ToGate::Push { conn, payload } => Body::Push { conn, payload },
            ToGate::Handled { seq } => Body::Handled { seq },
            other => Body::Bytes(other.encode()),
        }
    }

    /// Its size encoded, `node` being this node's id.
    pub(crate) fn len(&self, node: &str) -> usize {
        match self {
            Body::Bytes(b) => b.len(),
            Body::Forward { payload, .. } => {
                1 + 2 + node.len().min(u16::MAX as usize) + 16 + payload.len()
            }
            Body::Push { payload, .. } => 1 + 8 + payload.len(),
            Body::Handled { .. } => 1 + 8,
        }
    }

    /// Appends it, encoded, to `out`.
    pub(crate) fn write(&self, node: &str, out: &mut BytesMut) {
        match self {
            Body::Bytes(b) => out.put_slice(b),
            Body::Forward { conn, seq, payload } => put_forward(out, node, *conn, *seq, payload),
            Body::Push { conn, payload } => put_push(out, *conn, payload),
            Body::Handled { seq } => put_handled(out, *seq),
        }
    }

    /// It encoded, alone (what is encoded already is not copied).
    pub(crate) fn into_bytes(self, node: &str) -> Bytes {
        if let Body::Bytes(b) = self {
            return b;
        }
        let mut out = BytesMut::with_capacity(self.len(node));
        self.write(node, &mut out);
        out.freeze()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::cluster::wire::ToBackend;

    pub(in crate::cluster::wire) fn bodies() -> Vec<(Body, Bytes)> {
        let payload = Bytes::from_static(b"{\"C2S_Hi\":{}}");
        let forward = ToBackend::Forward {
            gate: "gate-1".into(),
            conn: 7,
            seq: u64::MAX,
            payload: payload.clone(),
        };
        let push = ToGate::Push {
            conn: 9,
            payload: payload.clone(),
        };
        let close = ToGate::Close { conn: 3 };
        vec![
            (
                Body::Forward {
                    conn: 7,
                    seq: u64::MAX,
                    payload: payload.clone(),
                },
                forward.encode(),
            ),
            (Body::command(push.clone()), push.encode()),
            (
                Body::command(ToGate::Handled { seq: 42 }),
                ToGate::Handled { seq: 42 }.encode(),
            ),
            (Body::command(close.clone()), close.encode()),
            (Body::Bytes(payload.clone()), payload),
        ]
    }

    #[test]
    fn a_body_encodes_as_the_envelope_it_stands_for() {
        for (body, want) in bodies() {
            assert_eq!(body.len("gate-1"), want.len(), "{body:?}");
            assert_eq!(body.into_bytes("gate-1"), want);
        }
    }
}
