//! Length-prefixed framing for TCP, byte-compatible with leaf's `MsgParser`.
//!
//! Each frame is `| len | payload |`. `len` counts payload bytes only and is 1, 2 (the default)
//! or 4 bytes wide, big-endian unless `little_endian` is set. A payload is at least 1 byte and
//! at most `max_msg_len`, which is clamped to what the length field can hold (255, 65535,
//! 2^32-1). A frame that breaks either bound is a protocol error: the connection is closed.
//!
//! ```
//! use bytes::BytesMut;
//! use longlink::codec::LenCodec;
//!
//! // 4-byte little-endian length, payload "hi": 02 00 00 00 68 69
//! let codec = LenCodec::new(4, true, 4096).unwrap();
//! let mut wire = BytesMut::new();
//! codec.encode(b"hi", &mut wire).unwrap();
//! assert_eq!(&wire[..], &[0x02, 0x00, 0x00, 0x00, 0x68, 0x69]);
//!
//! // Decoding gives the payload back; a partial frame gives `None` until the rest arrives.
//! let mut partial = BytesMut::from(&wire[..3]);
//! assert!(codec.decode(&mut partial).unwrap().is_none());
//! partial.extend_from_slice(&wire[3..]);
//! assert_eq!(&codec.decode(&mut partial).unwrap().unwrap()[..], b"hi");
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Most a partial frame makes [`LenCodec::decode`] reserve at once.
const MAX_RESERVE: usize = 64 * 1024;

/// Why a frame was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The length field announced (or the caller asked for) more than `max_msg_len` bytes.
    #[error("message too long: {len} bytes, the limit is {max}")]
    TooLong {
        /// The length that was refused.
        len: usize,
        /// The effective limit.
        max: usize,
    },
    /// The length field announced (or the caller asked for) an empty payload.
    #[error("message too short: {len} bytes, the minimum is 1")]
    TooShort {
        /// The length that was refused.
        len: usize,
    },
    /// The length field width is not 1, 2 or 4.
    #[error("len_msg_len must be 1, 2 or 4, not {0}")]
    BadLenMsgLen(usize),
}

/// A length-prefix codec: leaf's `LenMsgLen`, `LittleEndian`, `MinMsgLen = 1` and `MaxMsgLen`.
///
/// Cheap to copy; one value is shared by every connection of a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LenCodec {
    len_msg_len: usize,
    little_endian: bool,
    max_msg_len: usize,
}

impl LenCodec {
    /// A codec with a length field of `len_msg_len` bytes (1, 2 or 4) and a payload limit of
    /// `max_msg_len`, clamped to what the field can hold. `max_msg_len = 0` is refused by the
    /// gate's configuration; here it is taken as leaf's default, 4096.
    pub fn new(
        len_msg_len: usize,
        little_endian: bool,
        max_msg_len: u32,
    ) -> Result<Self, CodecError> {
        let field_max: u64 = match len_msg_len {
            1 => u8::MAX as u64,
            2 => u16::MAX as u64,
            4 => u32::MAX as u64,
            other => return Err(CodecError::BadLenMsgLen(other)),
        };
        let wanted = if max_msg_len == 0 { 4096 } else { max_msg_len };
        let max = (wanted as u64).min(field_max);
        Ok(LenCodec {
            len_msg_len,
            little_endian,
            max_msg_len: usize::try_from(max).unwrap_or(usize::MAX),
        })
    }

    /// Width of the length field in bytes.
    pub fn header_len(&self) -> usize {
        self.len_msg_len
    }

    /// The effective payload limit after clamping.
    pub fn max_msg_len(&self) -> usize {
        self.max_msg_len
    }

    /// Whether the length field is little-endian.
    pub fn little_endian(&self) -> bool {
        self.little_endian
    }

    /// Checks a payload length against the bounds (1..=max).
    pub fn check_len(&self, len: usize) -> Result<(), CodecError> {
        if len > self.max_msg_len {
            Err(CodecError::TooLong {
                len,
                max: self.max_msg_len,
            })
        } else if len < 1 {
            Err(CodecError::TooShort { len })
        } else {
            Ok(())
        }
    }

    /// Takes one whole frame's payload off the front of `src`.
    ///
    /// Returns `Ok(None)` while the frame is incomplete (and reserves room for the rest), and an
    /// error as soon as the length field is out of bounds, before the payload is read.
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        let h = self.len_msg_len;
        if src.len() < h {
            return Ok(None);
        }
        let len = self.read_len(&src[..h]);
        self.check_len(len)?;
        if src.len() < h + len {
            // Room for the rest, but not more than a step at a time: a peer's length field
            // alone must not make us allocate what it announces (up to 4 GiB).
            src.reserve((h + len - src.len()).min(MAX_RESERVE));
            return Ok(None);
        }
        src.advance(h);
        Ok(Some(src.split_to(len).freeze()))
    }

    /// Whether [`decode`](Self::decode) would give a frame (or an error) from `src` without
    /// more bytes.
    pub fn is_complete(&self, src: &[u8]) -> bool {
        let h = self.len_msg_len;
        if src.len() < h {
            return false;
        }
        let len = self.read_len(&src[..h]);
        self.check_len(len).is_err() || src.len() >= h + len
    }

    /// Appends the length field for a payload of `len` bytes.
    pub fn encode_header(&self, len: usize, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.check_len(len)?;
        // check_len bounds len by the field's maximum, so these casts cannot truncate.
        match (self.len_msg_len, self.little_endian) {
            (1, _) => dst.put_u8(len as u8),
            (2, false) => dst.put_u16(len as u16),
            (2, true) => dst.put_u16_le(len as u16),
            (_, false) => dst.put_u32(len as u32),
            (_, true) => dst.put_u32_le(len as u32),
        }
        Ok(())
    }

    /// Appends a whole frame (length field, then payload).
    pub fn encode(&self, payload: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.reserve(self.len_msg_len + payload.len());
        self.encode_header(payload.len(), dst)?;
        dst.extend_from_slice(payload);
        Ok(())
    }

    fn read_len(&self, b: &[u8]) -> usize {
        match (self.len_msg_len, self.little_endian) {
            (1, _) => b[0] as usize,
            (2, false) => u16::from_be_bytes([b[0], b[1]]) as usize,
            (2, true) => u16::from_le_bytes([b[0], b[1]]) as usize,
            (_, false) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
            (_, true) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
        }
    }
}

impl Default for LenCodec {
    /// leaf's gate defaults as used by golib's `service/gate`: 2-byte big-endian length,
    /// 8192-byte payload limit.
    fn default() -> Self {
        LenCodec {
            len_msg_len: 2,
            little_endian: false,
            max_msg_len: 8192,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_two_byte_big_endian_header() {
        let payload = br#"{"Hello":{"name":"echo:tcp","N":0,"Html":""}}"#;
        assert_eq!(payload.len(), 45);
        let mut out = BytesMut::new();
        LenCodec::new(2, false, 4096)
            .unwrap()
            .encode(payload, &mut out)
            .unwrap();
        assert_eq!(&out[..2], &[0x00, 0x2d]);
        assert_eq!(&out[2..], &payload[..]);
    }

    #[test]
    fn golden_four_byte_little_endian() {
        let mut out = BytesMut::new();
        LenCodec::new(4, true, 4096)
            .unwrap()
            .encode(&[0x68, 0x69], &mut out)
            .unwrap();
        assert_eq!(&out[..], &[0x02, 0x00, 0x00, 0x00, 0x68, 0x69]);
    }

    #[test]
    fn golden_one_byte() {
        let mut out = BytesMut::new();
        LenCodec::new(1, false, 4096)
            .unwrap()
            .encode(b"abc", &mut out)
            .unwrap();
        assert_eq!(&out[..], &[0x03, b'a', b'b', b'c']);
    }

    #[test]
    fn max_is_clamped_to_the_field() {
        assert_eq!(LenCodec::new(1, false, 4096).unwrap().max_msg_len(), 255);
        assert_eq!(
            LenCodec::new(2, false, 100_000).unwrap().max_msg_len(),
            65535
        );
        assert_eq!(
            LenCodec::new(4, false, 100_000).unwrap().max_msg_len(),
            100_000
        );
        assert_eq!(LenCodec::new(2, false, 0).unwrap().max_msg_len(), 4096);
        assert_eq!(
            LenCodec::new(3, false, 10),
            Err(CodecError::BadLenMsgLen(3))
        );
    }

    #[test]
    fn oversize_header_is_refused_before_the_payload_arrives() {
        let codec = LenCodec::new(2, false, 10).unwrap();
        let mut src = BytesMut::from(&[0x00, 0x0b][..]);
        assert_eq!(
            codec.decode(&mut src),
            Err(CodecError::TooLong { len: 11, max: 10 })
        );
    }

    #[test]
    fn zero_length_frame_is_an_error() {
        let codec = LenCodec::default();
        let mut src = BytesMut::from(&[0x00, 0x00, 0x41][..]);
        assert_eq!(codec.decode(&mut src), Err(CodecError::TooShort { len: 0 }));
    }

    #[test]
    fn outgoing_bounds_are_checked() {
        let codec = LenCodec::new(1, false, 4096).unwrap();
        let mut out = BytesMut::new();
        assert!(matches!(
            codec.encode(&[0u8; 256], &mut out),
            Err(CodecError::TooLong { len: 256, max: 255 })
        ));
        assert!(matches!(
            codec.encode(&[], &mut out),
            Err(CodecError::TooShort { len: 0 })
        ));
        assert!(out.is_empty(), "nothing is written for a refused frame");
    }

    #[test]
    fn one_byte_at_a_time() {
        let codec = LenCodec::new(2, true, 4096).unwrap();
        let mut wire = BytesMut::new();
        codec.encode(b"hello", &mut wire).unwrap();
        codec.encode(b"w", &mut wire).unwrap();
        let mut src = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            src.put_u8(*b);
            while codec.is_complete(&src) {
                got.push(codec.decode(&mut src).unwrap().unwrap());
            }
            assert!(codec.decode(&mut src).unwrap().is_none());
        }
        assert_eq!(
            got,
            vec![Bytes::from_static(b"hello"), Bytes::from_static(b"w")]
        );
        assert!(src.is_empty());
    }

    fn codec_strategy() -> impl Strategy<Value = LenCodec> {
        (prop_oneof![Just(1usize), Just(2), Just(4)], any::<bool>())
            .prop_map(|(n, le)| LenCodec::new(n, le, 300).unwrap())
    }

    proptest! {
        /// Any split of a byte stream decodes to the same frames.
        #[test]
        fn any_split_decodes_the_same(
            codec in codec_strategy(),
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..255), 0..12),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut wire = BytesMut::new();
            for p in &payloads {
                codec.encode(p, &mut wire).unwrap();
            }
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            points.push(0);
            points.push(wire.len());
            points.sort_unstable();
            let mut src = BytesMut::new();
            let mut got = Vec::new();
            for w in points.windows(2) {
                src.extend_from_slice(&wire[w[0]..w[1]]);
                while let Some(f) = codec.decode(&mut src).unwrap() {
                    got.push(f.to_vec());
                }
            }
            prop_assert_eq!(got, payloads);
            prop_assert!(src.is_empty());
        }

        /// Arbitrary bytes never panic the decoder, and every frame it yields is within bounds.
        #[test]
        fn garbage_never_panics(codec in codec_strategy(), data in prop::collection::vec(any::<u8>(), 0..600)) {
            let mut src = BytesMut::from(&data[..]);
            while let Ok(Some(f)) = codec.decode(&mut src) {
                prop_assert!(!f.is_empty() && f.len() <= codec.max_msg_len());
            }
        }
    }
}
