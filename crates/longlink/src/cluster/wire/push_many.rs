//! [`PushUids`]: one payload for many connections of one gate, so that a push to many uids
//! (the server API's batch) costs one NATS message per gate, not one per uid.
//!
//! ```text
//! | count: u64 | (conn: u64, uid: u64) x count | payload (the rest) |
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::primitives::{Reader, WireError};

/// Queue `payload` on each target's connection: `conn` is the one the directory names for
/// `uid`; the gate looks further only if that one no longer holds `uid`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PushUids {
    /// (conn, uid), in the order to write them.
    pub(crate) targets: Vec<(u64, u64)>,
    pub(crate) payload: Bytes,
}

/// Bytes per target on the wire.
const TARGET_LEN: usize = 16;

impl PushUids {
    /// The bytes `put` writes, after the envelope's kind byte.
    pub(super) fn len(&self) -> usize {
        8 + self.targets.len() * TARGET_LEN + self.payload.len()
    }

    pub(super) fn put(&self, out: &mut BytesMut) {
        out.reserve(self.len());
        out.put_u64_le(self.targets.len() as u64);
        for &(conn, uid) in &self.targets {
            out.put_u64_le(conn);
            out.put_u64_le(uid);
        }
        out.put_slice(&self.payload);
    }

    pub(super) fn read(mut r: Reader) -> Result<PushUids, WireError> {
        let count = r.u64()?;
        // The count is checked against the bytes present before anything is allocated.
        let fits = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(TARGET_LEN))
            .is_some_and(|need| need <= r.0.len());
        if !fits {
            return Err(WireError("more targets than bytes"));
        }
        let mut targets = Vec::with_capacity(count as usize);
        for _ in 0..count {
            targets.push((r.u64()?, r.u64()?));
        }
        Ok(PushUids {
            targets,
            payload: r.rest(),
        })
    }
}
