//! The envelopes' building blocks: a length-prefixed string written, and a reader of bytes,
//! integers and strings that fails with a [`WireError`] where the input runs short.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why an envelope could not be read.
#[derive(Debug, thiserror::Error)]
#[error("malformed cluster envelope: {0}")]
pub(crate) struct WireError(pub(super) &'static str);

/// Writes `s` after its `u16` length (cut at 65,535 bytes).
pub(super) fn put_str(out: &mut BytesMut, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.put_u16_le(len);
    out.put_slice(&s.as_bytes()[..len as usize]);
}

/// Writes `b` after its `u32` length.
pub(super) fn put_blob(out: &mut BytesMut, b: &[u8]) {
    out.put_u32_le(b.len() as u32);
    out.put_slice(b);
}

/// Reads an envelope from the front.
pub(super) struct Reader(pub(super) Bytes);

impl Reader {
    pub(super) fn u8(&mut self) -> Result<u8, WireError> {
        if self.0.remaining() < 1 {
            return Err(WireError("truncated"));
        }
        Ok(self.0.get_u8())
    }

    pub(super) fn u64(&mut self) -> Result<u64, WireError> {
        if self.0.remaining() < 8 {
            return Err(WireError("truncated integer"));
        }
        Ok(self.0.get_u64_le())
    }

    pub(super) fn str(&mut self) -> Result<String, WireError> {
        if self.0.remaining() < 2 {
            return Err(WireError("truncated string length"));
        }
        let len = self.0.get_u16_le() as usize;
        if self.0.remaining() < len {
            return Err(WireError("truncated string"));
        }
        let bytes = self.0.split_to(len);
        String::from_utf8(bytes.to_vec()).map_err(|_| WireError("string is not utf-8"))
    }

    /// Bytes after their `u32` length ([`put_blob`]).
    pub(super) fn blob(&mut self) -> Result<Bytes, WireError> {
        if self.0.remaining() < 4 {
            return Err(WireError("truncated length"));
        }
        let len = self.0.get_u32_le() as usize;
        if self.0.remaining() < len {
            return Err(WireError("truncated bytes"));
        }
        Ok(self.0.split_to(len))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn rest(self) -> Bytes {
        self.0
    }
}
