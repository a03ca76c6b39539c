//! [`LenCodecBuilder`]: a [`LenCodec`]'s settings one method at a time.

use super::{CodecError, LenCodec};

/// Settings for a [`LenCodec`], one method per option; from [`LenCodec::builder`].
///
/// The defaults are [`LenCodec::default`]'s: a 2-byte big-endian length and an 8192-byte limit.
/// The methods take and return `&mut Self`, so the builder can be set step by step:
///
/// ```
/// use longlink_wire::LenCodec;
///
/// let little_endian = true;
/// let mut builder = LenCodec::builder();
/// builder.len_msg_len(1).max_msg_len(100);
/// if little_endian {
///     builder.little_endian();
/// }
/// let codec = builder.build()?;
/// assert_eq!(codec, LenCodec::new(1, true, 100)?);
/// assert!(LenCodec::builder().len_msg_len(3).build().is_err());
/// # Ok::<(), longlink_wire::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LenCodecBuilder {
    /// Width of the length field, checked by `build`.
    len_msg_len: usize,
    /// Byte order of the length field.
    little_endian: bool,
    /// The payload limit before clamping (0: leaf's 4096).
    max_msg_len: u32,
}

impl Default for LenCodecBuilder {
    fn default() -> Self {
        LenCodecBuilder {
            len_msg_len: 2,
            little_endian: false,
            max_msg_len: 8192,
        }
    }
}

impl LenCodecBuilder {
    /// Width of the length field: 1, 2 or 4 bytes (leaf's `LenMsgLen`). Default 2.
    ///
    /// ```
    /// let codec = longlink_wire::LenCodec::builder().len_msg_len(4).build()?;
    /// assert_eq!(codec.header_len(), 4);
    /// # Ok::<(), longlink_wire::CodecError>(())
    /// ```
    pub fn len_msg_len(&mut self, len_msg_len: usize) -> &mut Self {
        self.len_msg_len = len_msg_len;
        self
    }

    /// A little-endian length field (leaf's `LittleEndian = true`).
    ///
    /// ```
    /// assert!(longlink_wire::LenCodec::builder().little_endian().build()?.little_endian());
    /// # Ok::<(), longlink_wire::CodecError>(())
    /// ```
    pub fn little_endian(&mut self) -> &mut Self {
        self.little_endian = true;
        self
    }

    /// A big-endian length field, the default.
    ///
    /// ```
    /// let codec = longlink_wire::LenCodec::builder().little_endian().big_endian().build()?;
    /// assert!(!codec.little_endian());
    /// # Ok::<(), longlink_wire::CodecError>(())
    /// ```
    pub fn big_endian(&mut self) -> &mut Self {
        self.little_endian = false;
        self
    }

    /// The largest payload (leaf's `MaxMsgLen`), clamped to what the length field holds; 0
    /// means leaf's default, 4096. Default 8192.
    ///
    /// ```
    /// let codec = longlink_wire::LenCodec::builder().len_msg_len(1).max_msg_len(1000).build()?;
    /// assert_eq!(codec.max_msg_len(), 255);
    /// # Ok::<(), longlink_wire::CodecError>(())
    /// ```
    pub fn max_msg_len(&mut self, max_msg_len: u32) -> &mut Self {
        self.max_msg_len = max_msg_len;
        self
    }

    /// The codec, as [`LenCodec::new`] makes it; a length field other than 1, 2 or 4 bytes is
    /// [`CodecError::BadLenMsgLen`].
    ///
    /// ```
    /// use longlink_wire::{CodecError, LenCodec};
    ///
    /// assert_eq!(LenCodec::builder().build()?, LenCodec::default());
    /// assert!(matches!(LenCodec::builder().len_msg_len(8).build(), Err(CodecError::BadLenMsgLen(8))));
    /// # Ok::<(), CodecError>(())
    /// ```
    pub fn build(&self) -> Result<LenCodec, CodecError> {
        LenCodec::new(self.len_msg_len, self.little_endian, self.max_msg_len)
    }
}
