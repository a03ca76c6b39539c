#![doc = include_str!("frame/layouts.md")]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

mod builder;
#[cfg(test)]
mod tests;

pub use builder::LenCodecBuilder;

/// Most a partial frame makes [`LenCodec::decode`] reserve at once.
const MAX_RESERVE: usize = 64 * 1024;

/// leaf's default `MaxMsgLen`, taken when `max_msg_len` is 0.
const LEAF_MAX_MSG_LEN: u32 = 4096;

/// Why a frame was refused, or the stream under it failed.
///
/// ```
/// use longlink_wire::CodecError;
///
/// let e = CodecError::TooLong { len: 11, max: 10 };
/// assert_eq!(e.to_string(), "message too long: 11 bytes, the limit is 10");
/// ```
#[derive(Debug, thiserror::Error)]
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
    /// The stream ended with part of a frame buffered ([`Decoder::decode_eof`]).
    #[error("end of stream inside a frame ({buffered} bytes of it buffered)")]
    Eof {
        /// How many bytes of the unfinished frame had arrived.
        buffered: usize,
    },
    /// The stream under a `FramedRead` or `FramedWrite` failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// A length-prefix codec: leaf's `LenMsgLen`, `LittleEndian`, `MinMsgLen = 1` and `MaxMsgLen`.
///
/// Cheap to copy; one value is shared by every connection of a gate. Build it with
/// [`new`](LenCodec::new) from a gate's settings or with [`builder`](LenCodec::builder).
///
/// ```
/// use longlink_wire::LenCodec;
///
/// let codec = LenCodec::default();
/// assert_eq!((codec.header_len(), codec.little_endian(), codec.max_msg_len()), (2, false, 8192));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LenCodec {
    /// Width of the length field: 1, 2 or 4 bytes.
    len_msg_len: u8,
    /// Byte order of the length field.
    little_endian: bool,
    /// The payload limit, already clamped to what the field holds (at most `u32::MAX`).
    /// Small fields: every connection's reader and writer hold a codec.
    max_msg_len: u32,
}

impl LenCodec {
    /// A codec with a length field of `len_msg_len` bytes (1, 2 or 4) and a payload limit of
    /// `max_msg_len`, clamped to what the field can hold. `max_msg_len = 0` is refused by the
    /// gate's configuration; here it is taken as leaf's default, 4096.
    ///
    /// ```
    /// use longlink_wire::{CodecError, LenCodec};
    ///
    /// assert_eq!(LenCodec::new(2, false, 100_000)?.max_msg_len(), 65535);
    /// assert_eq!(LenCodec::new(4, false, 0)?.max_msg_len(), 4096);
    /// assert!(matches!(LenCodec::new(3, false, 10), Err(CodecError::BadLenMsgLen(3))));
    /// # Ok::<(), CodecError>(())
    /// ```
    pub fn new(
        len_msg_len: usize,
        little_endian: bool,
        max_msg_len: u32,
    ) -> Result<Self, CodecError> {
        let field_max: u64 = match len_msg_len {
            1 => u8::MAX.into(),
            2 => u16::MAX.into(),
            4 => u32::MAX.into(),
            other => return Err(CodecError::BadLenMsgLen(other)),
        };
        let wanted = if max_msg_len == 0 {
            LEAF_MAX_MSG_LEN
        } else {
            max_msg_len
        };
        let max = u64::from(wanted).min(field_max);
        Ok(LenCodec {
            len_msg_len: len_msg_len as u8, // 1, 2 or 4
            little_endian,
            max_msg_len: u32::try_from(max).unwrap_or(u32::MAX),
        })
    }

    /// A builder, starting from the [`Default`] settings (2-byte big-endian length, 8192-byte
    /// limit), in the manner of tokio-util's `LengthDelimitedCodec::builder()`.
    ///
    /// ```
    /// use longlink_wire::LenCodec;
    ///
    /// let codec = LenCodec::builder().len_msg_len(4).little_endian().max_msg_len(1 << 20).build()?;
    /// assert_eq!((codec.header_len(), codec.little_endian(), codec.max_msg_len()), (4, true, 1 << 20));
    /// # Ok::<(), longlink_wire::CodecError>(())
    /// ```
    pub fn builder() -> LenCodecBuilder {
        LenCodecBuilder::default()
    }

    /// Width of the length field in bytes.
    ///
    /// ```
    /// assert_eq!(longlink_wire::LenCodec::new(1, false, 10)?.header_len(), 1);
    /// # Ok::<(), longlink_wire::CodecError>(())
    /// ```
    pub fn header_len(&self) -> usize {
        usize::from(self.len_msg_len)
    }

    /// The effective payload limit after clamping.
    ///
    /// ```
    /// assert_eq!(longlink_wire::LenCodec::new(1, false, 4096)?.max_msg_len(), 255);
    /// # Ok::<(), longlink_wire::CodecError>(())
    /// ```
    pub fn max_msg_len(&self) -> usize {
        usize::try_from(self.max_msg_len).unwrap_or(usize::MAX)
    }

    /// Whether the length field is little-endian.
    ///
    /// ```
    /// assert!(!longlink_wire::LenCodec::default().little_endian());
    /// ```
    pub fn little_endian(&self) -> bool {
        self.little_endian
    }

    /// Checks a payload length against the bounds (1..=max).
    ///
    /// ```
    /// use longlink_wire::{CodecError, LenCodec};
    ///
    /// let codec = LenCodec::new(2, false, 10)?;
    /// assert!(codec.check_len(10).is_ok());
    /// assert!(matches!(codec.check_len(0), Err(CodecError::TooShort { len: 0 })));
    /// assert!(matches!(codec.check_len(11), Err(CodecError::TooLong { len: 11, max: 10 })));
    /// # Ok::<(), CodecError>(())
    /// ```
    pub fn check_len(&self, len: usize) -> Result<(), CodecError> {
        if len > self.max_msg_len() {
            Err(CodecError::TooLong {
                len,
                max: self.max_msg_len(),
            })
        } else if len < 1 {
            Err(CodecError::TooShort { len })
        } else {
            Ok(())
        }
    }

    /// Takes one whole frame's payload off the front of `src`.
    ///
    /// Returns `Ok(None)` while the frame is incomplete (and reserves room for the rest, at
    /// most 64 KiB at a time), and an error as soon as the length field is out of bounds,
    /// before the payload is read. See Examples 4 and 5 in the [module docs](self).
    ///
    /// ```
    /// use bytes::BytesMut;
    ///
    /// let mut src = BytesMut::from(&b"\x00\x01a\x00"[..]);
    /// let codec = longlink_wire::LenCodec::default();
    /// assert_eq!(&codec.decode(&mut src)?.unwrap()[..], b"a");
    /// assert_eq!(codec.decode(&mut src)?, None);
    /// assert_eq!(&src[..], b"\x00");
    /// # Ok::<(), longlink_wire::CodecError>(())
    /// ```
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        let h = self.header_len();
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
    ///
    /// ```
    /// let codec = longlink_wire::LenCodec::default();
    /// assert!(!codec.is_complete(b"\x00\x02h"));
    /// assert!(codec.is_complete(b"\x00\x02hi"));
    /// assert!(codec.is_complete(b"\x00\x00")); // an error needs no more bytes either
    /// ```
    pub fn is_complete(&self, src: &[u8]) -> bool {
        let h = self.header_len();
        if src.len() < h {
            return false;
        }
        let len = self.read_len(&src[..h]);
        self.check_len(len).is_err() || src.len() >= h + len
    }

    /// Appends the length field for a payload of `len` bytes (for a payload written
    /// separately, e.g. with vectored writes). Nothing is written on error.
    ///
    /// ```
    /// use bytes::BytesMut;
    ///
    /// let mut dst = BytesMut::new();
    /// longlink_wire::LenCodec::new(2, true, 4096)?.encode_header(300, &mut dst)?;
    /// assert_eq!(&dst[..], &[0x2c, 0x01]);
    /// # Ok::<(), longlink_wire::CodecError>(())
    /// ```
    pub fn encode_header(&self, len: usize, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.check_len(len)?;
        self.put_header(len, dst);
        Ok(())
    }

    /// Puts the length field of a payload of `len` bytes, `len` checked by `check_len`
    /// (which bounds it by the field's maximum, so these casts cannot truncate).
    fn put_header(&self, len: usize, dst: &mut impl BufMut) {
        match (self.len_msg_len, self.little_endian) {
            (1, _) => dst.put_u8(len as u8),
            (2, false) => dst.put_u16(len as u16),
            (2, true) => dst.put_u16_le(len as u16),
            (_, false) => dst.put_u32(len as u32),
            (_, true) => dst.put_u32_le(len as u32),
        }
    }

    /// Appends a whole frame (length field, then payload). Nothing is written on error. See
    /// Examples 1 to 3 in the [module docs](self).
    ///
    /// ```
    /// use bytes::BytesMut;
    ///
    /// let mut dst = BytesMut::new();
    /// let codec = longlink_wire::LenCodec::default();
    /// codec.encode(b"ok", &mut dst)?;
    /// assert_eq!(&dst[..], b"\x00\x02ok");
    /// assert!(codec.encode(b"", &mut dst).is_err());
    /// assert_eq!(dst.len(), 4);
    /// # Ok::<(), longlink_wire::CodecError>(())
    /// ```
    pub fn encode(&self, payload: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.reserve(self.header_len() + payload.len());
        self.encode_header(payload.len(), dst)?;
        dst.extend_from_slice(payload);
        Ok(())
    }

    /// Writes the whole frame of `payload` (length field, then payload) to the front of
    /// `out` and returns its length; `None`, with nothing written, when the length is not
    /// allowed (as [`encode`](Self::encode) refuses it) or the frame does not fit in `out`.
    ///
    /// ```
    /// let codec = longlink_wire::LenCodec::default();
    /// let mut out = [0u8; 8];
    /// assert_eq!(codec.encode_to_slice(b"ok", &mut out), Some(4));
    /// assert_eq!(&out[..4], b"\x00\x02ok");
    /// assert_eq!(codec.encode_to_slice(b"", &mut out), None);
    /// assert_eq!(codec.encode_to_slice(&[1; 7], &mut out), None); // 9 bytes
    /// ```
    pub fn encode_to_slice(&self, payload: &[u8], out: &mut [u8]) -> Option<usize> {
        let len = payload.len();
        self.check_len(len).ok()?;
        let h = self.header_len();
        let (mut header, body) = out.get_mut(..h + len)?.split_at_mut(h);
        self.put_header(len, &mut header);
        body.copy_from_slice(payload);
        Some(h + len)
    }

    /// The payload of `data` when `data` is exactly one whole frame with an allowed length
    /// (the common read of a request-reply client: one message), else `None`; then
    /// [`decode`](Self::decode) it from a buffer as usual, which also says what is wrong.
    ///
    /// ```
    /// let codec = longlink_wire::LenCodec::default();
    /// assert_eq!(codec.exactly_one(b"\x00\x02hi"), Some(&b"hi"[..]));
    /// assert_eq!(codec.exactly_one(b"\x00\x02hi\x00"), None); // more after it
    /// assert_eq!(codec.exactly_one(b"\x00\x02h"), None); // not all of it yet
    /// assert_eq!(codec.exactly_one(b"\x00\x00"), None); // too short: decode says so
    /// ```
    pub fn exactly_one<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        let h = self.header_len();
        let payload = data.get(h..)?;
        let len = self.read_len(data);
        (len == payload.len() && self.check_len(len).is_ok()).then_some(payload)
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

impl Decoder for LenCodec {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        LenCodec::decode(self, src)
    }

    /// As [`decode`](LenCodec::decode), but bytes left that do not make a whole frame are
    /// [`CodecError::Eof`]: the peer closed in the middle of a frame.
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match LenCodec::decode(self, src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(CodecError::Eof {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<Bytes> for LenCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        LenCodec::encode(self, &item, dst)
    }
}

impl Encoder<&[u8]> for LenCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        LenCodec::encode(self, item, dst)
    }
}
