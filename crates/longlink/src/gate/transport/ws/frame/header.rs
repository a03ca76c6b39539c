//! Client frames in, at the level of the wire: a frame's header as read (not yet checked
//! against the protocol or the decoder's state), its opcode, and the unmasking of its
//! payload.

/// A frame's opcode, once known to be one RFC 6455 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// 0x0: the next fragment of the open message.
    Continuation,
    /// 0x1: a text message (or its first fragment).
    Text,
    /// 0x2: a binary message (or its first fragment).
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

/// A frame header as read off the wire, not yet checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    /// The first byte: FIN, RSV1-3, opcode.
    pub(super) b0: u8,
    /// Whether the MASK bit is set.
    pub(super) masked: bool,
    /// The masking key (zeros when unmasked).
    pub(super) mask: [u8; 4],
    /// The header's own length: 2 to 14 bytes.
    pub(super) header_len: usize,
    /// The declared payload length.
    pub(super) len: u64,
}

impl Header {
    /// Reads the header at the front of `buf`; `None` if it is not all there yet.
    pub(super) fn parse(buf: &[u8]) -> Option<Header> {
        let (&b0, rest) = buf.split_first()?;
        let (&b1, rest) = rest.split_first()?;
        let (len, rest) = match b1 & 0x7f {
            126 => {
                let (n, rest) = rest.split_first_chunk::<2>()?;
                (u64::from(u16::from_be_bytes(*n)), rest)
            }
            127 => {
                let (n, rest) = rest.split_first_chunk::<8>()?;
                (u64::from_be_bytes(*n), rest)
            }
            n => (u64::from(n), rest),
        };
        let masked = b1 & 0x80 != 0;
        let (mask, rest) = if masked {
            let (mask, rest) = rest.split_first_chunk::<4>()?;
            (*mask, rest)
        } else {
            ([0; 4], rest)
        };
        Some(Header {
            b0,
            masked,
            mask,
            header_len: buf.len() - rest.len(),
            len,
        })
    }

    /// The header length the bytes at the front of `buf` announce (2 while unknown).
    pub(super) fn announced_len(buf: &[u8]) -> usize {
        let Some(&b1) = buf.get(1) else { return 2 };
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
    }

    /// Whether FIN is set.
    pub(super) fn fin(&self) -> bool {
        self.b0 & 0x80 != 0
    }
}

/// XORs `data` with the repeating 4-byte `key`, 8 bytes at a time.
pub(super) fn unmask(data: &mut [u8], key: [u8; 4]) {
    let [a, b, c, d] = key;
    let wide = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(word) = <&mut [u8; 8]>::try_from(chunk) {
            *word = (u64::from_ne_bytes(*word) ^ wide).to_ne_bytes();
        }
    }
    // The tail starts at a multiple of 8, so at the key's first byte.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}
