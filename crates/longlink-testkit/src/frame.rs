//! leaf's TCP framing, written from the spec: a length field (1, 2 or 4 bytes, big- or
//! little-endian; by default 2 bytes big-endian), then the payload.

/// The TCP length field: its width in bytes and its byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// 1, 2 or 4.
    pub len: usize,
    /// Little-endian rather than big-endian.
    pub little_endian: bool,
}

impl Default for Framing {
    /// 2 bytes, big-endian: leaf's default and the chat's.
    fn default() -> Self {
        Framing {
            len: 2,
            little_endian: false,
        }
    }
}

impl Framing {
    /// The length field for a payload of `n` bytes; `None` if `n` does not fit in it.
    pub fn try_header(&self, n: usize) -> Option<Vec<u8>> {
        Some(match (self.len, self.little_endian) {
            (1, _) => vec![u8::try_from(n).ok()?],
            (2, false) => u16::try_from(n).ok()?.to_be_bytes().to_vec(),
            (2, true) => u16::try_from(n).ok()?.to_le_bytes().to_vec(),
            (4, false) => u32::try_from(n).ok()?.to_be_bytes().to_vec(),
            (4, true) => u32::try_from(n).ok()?.to_le_bytes().to_vec(),
            (len, _) => panic!("a length field of {len} bytes"),
        })
    }

    /// The length field for a payload of `n` bytes; panics if `n` does not fit in it.
    pub fn header(&self, n: usize) -> Vec<u8> {
        self.try_header(n)
            .unwrap_or_else(|| panic!("{n} bytes do not fit a {}-byte length", self.len))
    }

    /// `payload` with its length field in front; panics if it does not fit.
    pub fn frame(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = self.header(payload.len());
        out.extend_from_slice(payload);
        out
    }

    /// `payload` with its length field in front; `None` if it does not fit.
    pub fn try_frame(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let mut out = self.try_header(payload.len())?;
        out.extend_from_slice(payload);
        Some(out)
    }

    /// The length a length field says (`h` holds at least [`Framing::len`] bytes).
    pub fn parse_len(&self, h: &[u8]) -> usize {
        match (self.len, self.little_endian) {
            (1, _) => usize::from(h[0]),
            (2, false) => usize::from(u16::from_be_bytes([h[0], h[1]])),
            (2, true) => usize::from(u16::from_le_bytes([h[0], h[1]])),
            (4, false) => u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize,
            (4, true) => u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize,
            (len, _) => panic!("a length field of {len} bytes"),
        }
    }

    /// Takes the first whole frame off the front of `buf` (bytes read and not yet framed)
    /// and returns its payload; `None` while the frame is still incomplete.
    pub fn take(&self, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
        if buf.len() < self.len {
            return None;
        }
        let end = self.len + self.parse_len(buf);
        if buf.len() < end {
            return None;
        }
        let payload = buf[self.len..end].to_vec();
        buf.drain(..end);
        Some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_width_and_byte_order() {
        for (len, little_endian, header) in [
            (1, false, &[0x16][..]),
            (2, false, &[0x00, 0x16]),
            (2, true, &[0x16, 0x00]),
            (4, false, &[0x00, 0x00, 0x00, 0x16]),
            (4, true, &[0x16, 0x00, 0x00, 0x00]),
        ] {
            let f = Framing { len, little_endian };
            assert_eq!(f.header(0x16), header);
            assert_eq!(f.parse_len(header), 0x16);
        }
        assert_eq!(
            Framing {
                len: 1,
                little_endian: false
            }
            .try_header(256),
            None
        );
        assert_eq!(Framing::default().try_frame(&[0; 65_536]), None);
    }

    #[test]
    fn take_waits_for_a_whole_frame() {
        let f = Framing::default();
        let mut buf = f.frame(b"abc");
        buf.extend_from_slice(&f.frame(b"de")[..3]);
        assert_eq!(f.take(&mut buf).as_deref(), Some(&b"abc"[..]));
        assert_eq!(f.take(&mut buf), None);
        buf.push(b'e');
        assert_eq!(f.take(&mut buf).as_deref(), Some(&b"de"[..]));
        assert!(buf.is_empty());
        assert_eq!(f.take(&mut buf), None);
    }
}
