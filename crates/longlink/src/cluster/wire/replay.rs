//! Asking a node again for group broadcasts (or commands) a gate missed
//! (`P.replay.<node>`): the request names the publisher number (`Ll-Src`), the last number
//! the gate has and the stream (empty: group broadcasts; a gate's id: its commands); the
//! answer carries what the node still holds after it, in order.

use bytes::{BufMut, Bytes, BytesMut};

use super::primitives::{Reader, WireError, put_blob, put_str};

/// The answer is cut after this many payload bytes (NATS's default limit is 1 MiB); the
/// gate asks again from the last one.
pub(crate) const ANSWER_BYTES: usize = 512 * 1024;

/// A gate's request: everything publisher `src` numbered after `after`, of its group
/// broadcasts (`gate` empty) or of its commands to gate `gate`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReplayRequest {
    pub(crate) src: u64,
    pub(crate) after: u64,
    pub(crate) gate: String,
}

/// One broadcast again: its number, its subject's group token and its payload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Replayed {
    pub(crate) seq: u64,
    pub(crate) token: String,
    pub(crate) payload: Bytes,
}

/// The node's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReplayAnswer {
    /// The node is still publisher `src` (false: it restarted, or is another node; what it
    /// numbered is gone).
    pub(crate) known: bool,
    /// The last number the node had given when it answered: a broadcast numbered up to it
    /// that is not in `entries` (nor after them, when `more`) is gone for good.
    pub(crate) last: u64,
    /// The answer was cut: more follows the last entry (ask again).
    pub(crate) more: bool,
    /// In order, numbered after the request's `after`.
    pub(crate) entries: Vec<Replayed>,
}

impl ReplayRequest {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(18 + self.gate.len());
        out.put_u64_le(self.src);
        out.put_u64_le(self.after);
        put_str(&mut out, &self.gate);
        out.freeze()
    }

    pub(crate) fn decode(b: Bytes) -> Result<ReplayRequest, WireError> {
        let mut r = Reader(b);
        Ok(ReplayRequest {
            src: r.u64()?,
            after: r.u64()?,
            gate: r.str()?,
        })
    }
}

impl ReplayAnswer {
    pub(crate) fn encode(&self) -> Bytes {
        let size: usize = self.entries.iter().map(|e| e.payload.len() + 32).sum();
        let mut out = BytesMut::with_capacity(16 + size);
        out.put_u8(u8::from(self.known));
        out.put_u64_le(self.last);
        out.put_u8(u8::from(self.more));
        for e in &self.entries {
            out.put_u64_le(e.seq);
            put_str(&mut out, &e.token);
            put_blob(&mut out, &e.payload);
        }
        out.freeze()
    }

    pub(crate) fn decode(b: Bytes) -> Result<ReplayAnswer, WireError> {
        let mut r = Reader(b);
        let known = r.u8()? != 0;
        let last = r.u64()?;
        let more = r.u8()? != 0;
        let mut entries = Vec::new();
        while !r.is_empty() {
            entries.push(Replayed {
                seq: r.u64()?,
                token: r.str()?,
                payload: r.blob()?,
            });
        }
        Ok(ReplayAnswer {
            known,
            last,
            more,
            entries,
        })
    }
}
