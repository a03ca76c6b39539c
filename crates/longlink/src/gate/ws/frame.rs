//! A sans-IO, server-side WebSocket (RFC 6455) frame codec: bytes in, events out; frames
//! out into a caller's buffer.
//!
//! The decoder holds no buffer of its own while idle: it reads frames straight from the
//! caller's read buffer, and an unfragmented data frame's payload is that buffer's bytes
//! unmasked in place (`split_to` then `freeze`, no copy). Only a fragmented message is
//! assembled into a buffer of the decoder's, released once the message is delivered.
//!
//! No extensions are negotiated, so the reserved bits must be clear. Client frames must be
//! masked; server frames ([`encode_binary`] and the others) never are.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Close code for a protocol violation.
pub(crate) const CLOSE_PROTOCOL: u16 = 1002;
/// Close code for payload data that is not valid (bad UTF-8).
pub(crate) const CLOSE_BAD_DATA: u16 = 1007;
/// Close code for a message over the size limit.
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;
/// The largest payload of a control frame (ping, pong, close).
const MAX_CONTROL: usize = 125;

/// What the decoder produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WsEvent {
    /// A whole data message (fragments assembled), binary or text (text already checked to
    /// be UTF-8).
    Message(Bytes),
    /// A ping with its payload (the caller answers with a pong carrying the same payload).
    Ping(Bytes),
    /// A pong.
    Pong,
    /// A close frame: its code if one was given (`None` for an empty close payload), and its
    /// reason.
    Close(Option<u16>, String),
}

/// Why the peer's bytes are not acceptable; the connection is to be closed with
/// [`close_code`](WsError::close_code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WsError {
    /// A data frame, or a data message as assembled so far, longer than the limit (1009).
    TooBig(String),
    /// A protocol violation (1002).
    Protocol(String),
    /// A text message or close reason that is not UTF-8 (1007).
    BadUtf8(String),
}

impl WsError {
    /// The close code to answer with: 1009, 1002 or 1007.
    pub(crate) fn close_code(&self) -> u16 {
        match self {
            WsError::TooBig(_) => CLOSE_TOO_BIG,
            WsError::Protocol(_) => CLOSE_PROTOCOL,
            WsError::BadUtf8(_) => CLOSE_BAD_DATA,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::TooBig(why) => write!(f, "message too big: {why}"),
            WsError::Protocol(why) => write!(f, "protocol error: {why}"),
            WsError::BadUtf8(why) => write!(f, "invalid UTF-8: {why}"),
        }
    }
}

impl std::error::Error for WsError {}

/// A frame's opcode, once known to be one RFC 6455 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
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
struct Header {
    /// The first byte: FIN, RSV1-3, opcode.
    b0: u8,
    /// Whether the MASK bit is set.
    masked: bool,
    /// The masking key (zeros when unmasked).
    mask: [u8; 4],
    /// The header's own length: 2 to 14 bytes.
    header_len: usize,
    /// The declared payload length.
    len: u64,
}

impl Header {
    /// Reads the header at the front of `buf`; `None` if it is not all there yet.
    fn parse(buf: &[u8]) -> Option<Header> {
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
    fn announced_len(buf: &[u8]) -> usize {
        let Some(&b1) = buf.get(1) else { return 2 };
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
    }

    /// Whether FIN is set.
    fn fin(&self) -> bool {
        self.b0 & 0x80 != 0
    }
}

/// Decodes a client's frames into [`WsEvent`]s; sans-IO (the caller reads into a
/// `BytesMut` and hands it over).
///
/// After an error the connection is to be closed: decoding further is not meaningful.
#[derive(Debug)]
pub(crate) struct WsDecoder {
    /// The largest data frame and the largest assembled message, in bytes.
    max_msg_len: usize,
    /// The kind ([`Op::Text`] or [`Op::Binary`]) of the fragmented message in progress.
    open: Option<Op>,
    /// The fragmented message's payload so far; empty (no allocation) otherwise.
    assembly: BytesMut,
}

impl WsDecoder {
    /// A decoder that refuses data frames and messages over `max_msg_len` bytes.
    pub(crate) fn new(max_msg_len: usize) -> Self {
        WsDecoder {
            max_msg_len,
            open: None,
            assembly: BytesMut::new(),
        }
    }

    /// Takes one event off the front of `buf` if a whole one is there; `Ok(None)` when more
    /// bytes are needed. Each frame's bytes are removed from `buf` as it is consumed (the
    /// fragments of a message are moved into the decoder's own buffer on the way, so one
    /// call may consume several frames). A frame is checked as soon as its header is in
    /// `buf`, so one over the limit is refused before its payload is buffered.
    ///
    /// An unfragmented message's payload is `buf`'s own bytes, unmasked in place.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<WsEvent>, WsError> {
        loop {
            let Some(header) = Header::parse(buf) else {
                return Ok(None);
            };
            let (op, len) = self.check(&header)?;
            if buf.len() - header.header_len < len {
                return Ok(None);
            }
            buf.advance(header.header_len);
            let mut payload = buf.split_to(len);
            unmask(&mut payload, header.mask);
            let event = match op {
                Op::Ping => WsEvent::Ping(payload.freeze()),
                Op::Pong => WsEvent::Pong,
                Op::Close => close_event(&payload)?,
                Op::Text | Op::Binary | Op::Continuation => {
                    match self.data(op, header.fin(), payload)? {
                        Some(message) => WsEvent::Message(message),
                        None => continue,
                    }
                }
            };
            return Ok(Some(event));
        }
    }

    /// At least how many more bytes `buf` needs before [`decode`](Self::decode) can make
    /// progress: the rest of the header, or, once the header is there, the rest of the frame
    /// (so a reader can reserve once for a big frame). 0 if the frame is already whole, or
    /// if `decode` will refuse it.
    pub(crate) fn wanted(&self, buf: &BytesMut) -> usize {
        match Header::parse(buf) {
            None => Header::announced_len(buf).saturating_sub(buf.len()),
            Some(header) => match self.check(&header) {
                Ok((_, len)) => header
                    .header_len
                    .saturating_add(len)
                    .saturating_sub(buf.len()),
                Err(_) => 0,
            },
        }
    }

    /// Whether `buf` starts with at least one whole frame (header and payload), valid or
    /// not; no checks, no state change.
    pub(crate) fn has_frame(buf: &[u8]) -> bool {
        Header::parse(buf)
            .is_some_and(|header| (buf.len() - header.header_len) as u64 >= header.len)
    }

    /// Checks a header against the protocol and the limit, in the decoder's current state;
    /// returns its opcode and payload length.
    fn check(&self, header: &Header) -> Result<(Op, usize), WsError> {
        if header.b0 & 0x70 != 0 {
            return Err(protocol("reserved bits set (no extension was negotiated)"));
        }
        let op = match header.b0 & 0x0f {
            0x0 => Op::Continuation,
            0x1 => Op::Text,
            0x2 => Op::Binary,
            0x8 => Op::Close,
            0x9 => Op::Ping,
            0xA => Op::Pong,
            n => return Err(WsError::Protocol(format!("unknown opcode {n:#x}"))),
        };
        if !header.masked {
            return Err(protocol("unmasked client frame"));
        }
        if header.len >> 63 != 0 {
            return Err(protocol("64-bit payload length with the top bit set"));
        }
        if matches!(op, Op::Close | Op::Ping | Op::Pong) {
            if !header.fin() {
                return Err(protocol("fragmented control frame"));
            }
            if header.len > MAX_CONTROL as u64 {
                return Err(WsError::Protocol(format!(
                    "control frame of {} bytes (over {MAX_CONTROL})",
                    header.len
                )));
            }
            return Ok((op, header.len as usize));
        }
        match (op, self.open) {
            (Op::Continuation, None) => return Err(protocol("continuation frame without a start")),
            (Op::Text | Op::Binary, Some(_)) => {
                return Err(protocol(
                    "new data frame while a fragmented message is open",
                ));
            }
            _ => {}
        }
        // `assembly` is empty unless a message is open, so this is the frame's own length
        // for an unfragmented one, the message's so far for a fragment.
        let total = (self.assembly.len() as u64).saturating_add(header.len);
        if total > self.max_msg_len as u64 {
            return Err(WsError::TooBig(format!(
                "{total} bytes, over the limit of {}",
                self.max_msg_len
            )));
        }
        Ok((op, header.len as usize))
    }

    /// Takes a data frame's (unmasked) payload: a whole message if this completes one.
    fn data(&mut self, op: Op, fin: bool, payload: BytesMut) -> Result<Option<Bytes>, WsError> {
        if op != Op::Continuation {
            if fin {
                return finish(op, payload).map(Some);
            }
            self.open = Some(op);
        }
        self.assembly.extend_from_slice(&payload);
        if !fin {
            return Ok(None);
        }
        let kind = self.open.take().unwrap_or(Op::Binary);
        finish(kind, std::mem::take(&mut self.assembly)).map(Some)
    }
}

/// A whole message of `kind`: checked to be UTF-8 if text, frozen.
fn finish(kind: Op, message: BytesMut) -> Result<Bytes, WsError> {
    if kind == Op::Text && std::str::from_utf8(&message).is_err() {
        return Err(WsError::BadUtf8("text message".into()));
    }
    Ok(message.freeze())
}

/// A close frame's event from its (unmasked) payload: empty, or a code and a UTF-8 reason.
fn close_event(payload: &[u8]) -> Result<WsEvent, WsError> {
    match payload {
        [] => Ok(WsEvent::Close(None, String::new())),
        [_] => Err(protocol("close payload of 1 byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !valid_close_code(code) {
                return Err(WsError::Protocol(format!("invalid close code {code}")));
            }
            let reason =
                std::str::from_utf8(reason).map_err(|_| WsError::BadUtf8("close reason".into()))?;
            Ok(WsEvent::Close(Some(code), reason.to_owned()))
        }
    }
}

/// Whether a peer may send `code` in a close frame (RFC 6455 7.4 and the IANA registry):
/// 1000-1003, 1007-1014 and 3000-4999.
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A protocol error with a fixed reason.
fn protocol(why: &str) -> WsError {
    WsError::Protocol(why.to_owned())
}

/// XORs `data` with the repeating 4-byte `key`, 8 bytes at a time.
fn unmask(data: &mut [u8], key: [u8; 4]) {
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

/// Appends an unmasked frame header: FIN, `opcode`, and `len` in its shortest form.
fn put_header(opcode: u8, len: usize, out: &mut BytesMut) {
    out.reserve(10 + len);
    out.put_u8(0x80 | opcode);
    if len < 126 {
        out.put_u8(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.put_u8(126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// Appends one whole, unmasked binary frame carrying `payload` to `out`.
pub(crate) fn encode_binary(payload: &[u8], out: &mut BytesMut) {
    put_header(0x2, payload.len(), out);
    out.extend_from_slice(payload);
}

/// Appends a ping frame to `out`; a payload over 125 bytes is cut to 125.
pub(crate) fn encode_ping(payload: &[u8], out: &mut BytesMut) {
    let payload = &payload[..payload.len().min(MAX_CONTROL)];
    put_header(0x9, payload.len(), out);
    out.extend_from_slice(payload);
}

/// Appends a pong frame to `out`; a payload over 125 bytes is cut to 125.
pub(crate) fn encode_pong(payload: &[u8], out: &mut BytesMut) {
    let payload = &payload[..payload.len().min(MAX_CONTROL)];
    put_header(0xA, payload.len(), out);
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and `reason` to `out`; a reason over 123 bytes is cut
/// to 123 or less, at a character boundary.
pub(crate) fn encode_close(code: u16, reason: &str, out: &mut BytesMut) {
    let mut end = reason.len().min(MAX_CONTROL - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    put_header(0x8, 2 + end, out);
    out.put_u16(code);
    out.extend_from_slice(&reason.as_bytes()[..end]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A fixed masking key for hand-written frames.
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// How a test frame writes its payload length.
    #[derive(Debug, Clone, Copy)]
    enum Form {
        /// The shortest form.
        Minimal,
        /// Always the 16-bit form.
        U16,
        /// Always the 64-bit form.
        U64,
    }

    /// A client frame: first byte `b0`, length in `form`, masked with `key` if given.
    fn raw(b0: u8, form: Form, key: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mask_bit = if key.is_some() { 0x80 } else { 0 };
        let mut out = vec![b0];
        match form {
            Form::Minimal if len < 126 => out.push(mask_bit | len as u8),
            Form::Minimal | Form::U16 if len <= 0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        match key {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }

    /// A masked client frame with FIN set or not, `opcode`, shortest length form.
    fn frame(fin: bool, opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        raw(
            if fin { 0x80 } else { 0 } | opcode,
            Form::Minimal,
            Some(key),
            payload,
        )
    }

    /// A whole masked client frame with `opcode`.
    fn whole(opcode: u8, payload: &[u8]) -> Vec<u8> {
        frame(true, opcode, payload, KEY)
    }

    /// A close frame's payload: the code then the reason.
    fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        payload
    }

    /// Decodes every event in `bytes` (given at once) with limit `max`.
    fn decode_all(max: usize, bytes: &[u8]) -> Result<Vec<WsEvent>, WsError> {
        let mut decoder = WsDecoder::new(max);
        let mut buf = BytesMut::from(bytes);
        let mut events = Vec::new();
        while let Some(event) = decoder.decode(&mut buf)? {
            events.push(event);
        }
        Ok(events)
    }

    /// The one event in `bytes`, or the error.
    fn decode_one(max: usize, bytes: &[u8]) -> Result<WsEvent, WsError> {
        let mut events = decode_all(max, bytes)?;
        assert_eq!(events.len(), 1, "{events:?}");
        Ok(events.remove(0))
    }

    /// The error `bytes` give, panicking if they give none.
    fn decode_err(max: usize, bytes: &[u8]) -> WsError {
        match decode_all(max, bytes) {
            Err(e) => e,
            Ok(events) => panic!("no error, events {events:?}"),
        }
    }

    /// Asserts `bytes` are refused as a protocol violation (1002).
    fn assert_protocol(bytes: &[u8]) {
        let e = decode_err(1 << 20, bytes);
        assert!(matches!(e, WsError::Protocol(_)), "{e:?}");
        assert_eq!(e.close_code(), 1002);
    }

    /// The message a binary frame of `payload` decodes to.
    fn message(payload: &[u8]) -> WsEvent {
        WsEvent::Message(Bytes::copy_from_slice(payload))
    }

    /// Feeds `bytes` in pieces cut at `cuts` (positions, any order, any range), decoding
    /// after each piece until it needs more or fails.
    fn feed(
        decoder: &mut WsDecoder,
        bytes: &[u8],
        cuts: &[usize],
    ) -> Result<Vec<WsEvent>, WsError> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        let mut at = 0;
        for cut in cuts {
            buf.extend_from_slice(&bytes[at..cut]);
            at = cut;
            loop {
                let whole = WsDecoder::has_frame(&buf);
                let before = buf.len();
                match decoder.decode(&mut buf)? {
                    Some(event) => events.push(event),
                    None => {
                        // A whole frame in `buf` is always consumed.
                        assert!(!whole || buf.len() < before);
                        break;
                    }
                }
            }
        }
        Ok(events)
    }

    #[test]
    fn a_masked_binary_frame_decodes_to_its_payload() {
        assert_eq!(
            decode_one(100, &whole(0x2, b"hello")),
            Ok(message(b"hello"))
        );
    }

    #[test]
    fn a_text_frame_decodes_like_binary() {
        let text = "héllo, wörld".as_bytes();
        assert_eq!(decode_one(100, &whole(0x1, text)), Ok(message(text)));
    }

    #[test]
    fn an_empty_data_frame_is_an_empty_message() {
        assert_eq!(decode_one(100, &whole(0x2, b"")), Ok(message(b"")));
        assert_eq!(decode_one(0, &whole(0x1, b"")), Ok(message(b"")));
    }

    #[test]
    fn an_unfragmented_payload_is_the_read_buffers_own_bytes() {
        let bytes = whole(0x2, &[7u8; 300]);
        let mut buf = BytesMut::from(&bytes[..]);
        let (start, end) = (buf.as_ptr() as usize, buf.as_ptr() as usize + buf.len());
        let mut decoder = WsDecoder::new(1000);
        let Ok(Some(WsEvent::Message(payload))) = decoder.decode(&mut buf) else {
            panic!("no message");
        };
        let at = payload.as_ptr() as usize;
        assert!(
            start <= at && at + payload.len() <= end,
            "payload was copied"
        );
        assert_eq!(&payload[..], &[7u8; 300][..]);
        assert!(buf.is_empty());
        assert_eq!(decoder.assembly.capacity(), 0);
    }

    #[test]
    fn frames_are_taken_one_at_a_time_leaving_the_rest_in_the_buffer() {
        let mut bytes = whole(0x2, b"one");
        bytes.extend(whole(0x9, b"p"));
        bytes.extend(whole(0x2, b"two"));
        bytes.extend_from_slice(&[0x82, 0x85]); // a third frame's start
        let mut buf = BytesMut::from(&bytes[..]);
        let mut decoder = WsDecoder::new(100);
        assert_eq!(decoder.decode(&mut buf), Ok(Some(message(b"one"))));
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(WsEvent::Ping(Bytes::from_static(b"p"))))
        );
        assert_eq!(decoder.decode(&mut buf), Ok(Some(message(b"two"))));
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], &[0x82, 0x85]);
    }

    #[test]
    fn nothing_is_consumed_until_a_frame_is_whole() {
        let bytes = whole(0x2, b"abcdef");
        let mut decoder = WsDecoder::new(100);
        for n in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..n]);
            assert_eq!(decoder.decode(&mut buf), Ok(None));
            assert_eq!(buf.len(), n);
        }
    }

    #[test]
    fn control_frames_decode() {
        assert_eq!(
            decode_one(100, &whole(0x9, b"are you there")),
            Ok(WsEvent::Ping(Bytes::from_static(b"are you there")))
        );
        assert_eq!(
            decode_one(100, &whole(0x9, b"")),
            Ok(WsEvent::Ping(Bytes::new()))
        );
        assert_eq!(decode_one(100, &whole(0xA, b"whatever")), Ok(WsEvent::Pong));
        assert_eq!(
            decode_one(100, &whole(0x8, b"")),
            Ok(WsEvent::Close(None, String::new()))
        );
        assert_eq!(
            decode_one(100, &whole(0x8, &close_payload(1000, b"bye"))),
            Ok(WsEvent::Close(Some(1000), "bye".into()))
        );
        assert_eq!(
            decode_one(100, &whole(0x8, &close_payload(4321, b""))),
            Ok(WsEvent::Close(Some(4321), String::new()))
        );
    }

    #[test]
    fn control_frames_up_to_125_bytes_pass_whatever_the_limit() {
        let payload = [1u8; 125];
        assert_eq!(
            decode_one(0, &whole(0x9, &payload)),
            Ok(WsEvent::Ping(Bytes::copy_from_slice(&payload)))
        );
        let reason = [b'r'; 123];
        assert_eq!(
            decode_one(0, &whole(0x8, &close_payload(1001, &reason))),
            Ok(WsEvent::Close(Some(1001), "r".repeat(123)))
        );
    }

    #[test]
    fn a_fragmented_message_is_assembled_and_its_buffer_released() {
        let mut bytes = frame(false, 0x2, b"ab", KEY);
        bytes.extend(frame(false, 0x0, b"", [1, 2, 3, 4]));
        bytes.extend(frame(false, 0x0, b"cde", [9, 8, 7, 6]));
        bytes.extend(frame(true, 0x0, b"f", KEY));
        let mut decoder = WsDecoder::new(6);
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(Some(message(b"abcdef"))));
        assert!(buf.is_empty());
        assert_eq!(decoder.open, None);
        assert_eq!(decoder.assembly.capacity(), 0);
        // And the next message is unfragmented again.
        buf.extend_from_slice(&whole(0x2, b"g"));
        assert_eq!(decoder.decode(&mut buf), Ok(Some(message(b"g"))));
    }

    #[test]
    fn control_frames_between_fragments_come_out_as_the_message_goes_on() {
        let mut bytes = frame(false, 0x1, b"hel", KEY);
        bytes.extend(whole(0x9, b"1"));
        bytes.extend(frame(false, 0x0, b"lo ", KEY));
        bytes.extend(whole(0xA, b""));
        bytes.extend(whole(0x8, &close_payload(1000, b"")));
        bytes.extend(frame(true, 0x0, b"you", KEY));
        assert_eq!(
            decode_all(100, &bytes),
            Ok(vec![
                WsEvent::Ping(Bytes::from_static(b"1")),
                WsEvent::Pong,
                WsEvent::Close(Some(1000), String::new()),
                message(b"hello you"),
            ])
        );
    }

    #[test]
    fn utf8_is_checked_on_the_assembled_text_so_a_character_may_span_fragments() {
        let text = "é€😀".as_bytes();
        let mut bytes = frame(false, 0x1, &text[..1], KEY);
        bytes.extend(frame(false, 0x0, &text[1..4], KEY));
        bytes.extend(frame(true, 0x0, &text[4..], KEY));
        assert_eq!(decode_one(100, &bytes), Ok(message(text)));
    }

    #[test]
    fn lengths_at_the_7_16_and_64_bit_boundaries_decode() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let bytes = whole(0x2, &payload);
            let header_len = match len {
                0..=125 => 6,
                126..=65535 => 8,
                _ => 14,
            };
            assert_eq!(bytes.len(), header_len + len, "len {len}");
            assert_eq!(decode_one(len, &bytes), Ok(message(&payload)), "len {len}");
        }
    }

    #[test]
    fn non_minimal_length_encodings_are_accepted() {
        for form in [Form::U16, Form::U64] {
            let bytes = raw(0x82, form, Some(KEY), b"short");
            assert_eq!(decode_one(100, &bytes), Ok(message(b"short")), "{form:?}");
            let bytes = raw(0x89, form, Some(KEY), b"ping");
            assert_eq!(
                decode_one(100, &bytes),
                Ok(WsEvent::Ping(Bytes::from_static(b"ping")))
            );
        }
        let payload = vec![3u8; 300];
        assert_eq!(
            decode_one(300, &raw(0x82, Form::U64, Some(KEY), &payload)),
            Ok(message(&payload))
        );
    }

    #[test]
    fn a_frame_at_the_limit_passes_and_one_over_is_too_big() {
        assert_eq!(decode_one(10, &whole(0x2, &[0; 10])), Ok(message(&[0; 10])));
        let e = decode_err(10, &whole(0x2, &[0; 11]));
        assert!(matches!(e, WsError::TooBig(_)), "{e:?}");
        assert_eq!(e.close_code(), 1009);
        let e = decode_err(10, &whole(0x1, &[b'a'; 11]));
        assert!(matches!(e, WsError::TooBig(_)), "{e:?}");
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_from_its_header_alone() {
        let mut decoder = WsDecoder::new(1000);
        // A masked binary frame of 2^40 bytes: its 14-byte header and no payload.
        let mut header = vec![0x82, 0xff];
        header.extend_from_slice(&(1u64 << 40).to_be_bytes());
        header.extend_from_slice(&KEY);
        let mut buf = BytesMut::from(&header[..]);
        assert!(matches!(decoder.decode(&mut buf), Err(WsError::TooBig(_))));
        assert_eq!(decoder.wanted(&buf), 0, "must not ask to buffer it");
        // Same for a 16-bit length.
        let mut buf = BytesMut::from(&[0x82, 0xfe, 0x03, 0xe9, 1, 2, 3, 4][..]);
        assert!(matches!(decoder.decode(&mut buf), Err(WsError::TooBig(_))));
    }

    #[test]
    fn a_fragmented_message_over_the_limit_is_too_big_at_the_fragments_header() {
        let mut decoder = WsDecoder::new(10);
        let mut buf = BytesMut::from(&frame(false, 0x2, &[1; 6], KEY)[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(decoder.assembly.len(), 6);
        // 6 + 4 reaches the limit exactly: fine...
        let mut exact = frame(false, 0x2, &[1; 6], KEY);
        exact.extend(frame(true, 0x0, &[2; 4], KEY));
        assert_eq!(
            decode_one(10, &exact),
            Ok(message(&[1, 1, 1, 1, 1, 1, 2, 2, 2, 2]))
        );
        // ...6 + 5 is not, known from the header alone.
        let fragment = frame(true, 0x0, &[2; 5], KEY);
        buf.extend_from_slice(&fragment[..6]);
        assert!(matches!(decoder.decode(&mut buf), Err(WsError::TooBig(_))));
    }

    #[test]
    fn an_unmasked_client_frame_is_refused() {
        assert_protocol(&raw(0x82, Form::Minimal, None, b"hi"));
        assert_protocol(&raw(0x89, Form::Minimal, None, b""));
    }

    #[test]
    fn reserved_bits_are_refused() {
        for rsv in [0x40, 0x20, 0x10, 0x70] {
            assert_protocol(&raw(0x82 | rsv, Form::Minimal, Some(KEY), b"hi"));
        }
    }

    #[test]
    fn unknown_opcodes_are_refused() {
        for opcode in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_protocol(&whole(opcode, b"x"));
        }
    }

    #[test]
    fn a_control_frame_over_125_bytes_is_refused() {
        for opcode in [0x8, 0x9, 0xA] {
            let mut payload = vec![b'a'; 126];
            payload[..2].copy_from_slice(&1000u16.to_be_bytes());
            assert_protocol(&whole(opcode, &payload));
        }
    }

    #[test]
    fn a_fragmented_control_frame_is_refused() {
        for opcode in [0x8, 0x9, 0xA] {
            assert_protocol(&frame(false, opcode, b"", KEY));
        }
    }

    #[test]
    fn a_continuation_without_a_start_is_refused() {
        assert_protocol(&frame(true, 0x0, b"x", KEY));
        assert_protocol(&frame(false, 0x0, b"x", KEY));
        // Nor after a message is done.
        let mut bytes = frame(false, 0x2, b"a", KEY);
        bytes.extend(frame(true, 0x0, b"b", KEY));
        bytes.extend(frame(true, 0x0, b"c", KEY));
        assert_protocol(&bytes);
    }

    #[test]
    fn a_new_data_frame_while_a_message_is_open_is_refused() {
        for opcode in [0x1, 0x2] {
            for fin in [true, false] {
                let mut bytes = frame(false, 0x2, b"a", KEY);
                bytes.extend(frame(fin, opcode, b"b", KEY));
                assert_protocol(&bytes);
            }
        }
    }

    #[test]
    fn a_64_bit_length_with_the_top_bit_set_is_refused() {
        let mut bytes = vec![0x82, 0xff];
        bytes.extend_from_slice(&(1u64 << 63 | 5).to_be_bytes());
        bytes.extend_from_slice(&KEY);
        bytes.extend_from_slice(&[0; 5]);
        let e = decode_err(usize::MAX, &bytes);
        assert!(matches!(e, WsError::Protocol(_)), "{e:?}");
    }

    #[test]
    fn a_close_payload_of_one_byte_is_refused() {
        assert_protocol(&whole(0x8, &[0x03]));
    }

    #[test]
    fn close_codes_are_checked_as_rfc_6455_says() {
        for code in 0..=u16::MAX {
            let invalid = code < 1000
                || matches!(code, 1004 | 1005 | 1006 | 1015)
                || (1016..=2999).contains(&code)
                || code >= 5000;
            let result = decode_all(100, &whole(0x8, &close_payload(code, b"x")));
            if invalid {
                assert!(
                    matches!(result, Err(WsError::Protocol(_))),
                    "code {code}: {result:?}"
                );
            } else {
                assert_eq!(
                    result,
                    Ok(vec![WsEvent::Close(Some(code), "x".into())]),
                    "code {code}"
                );
            }
        }
    }

    #[test]
    fn bad_utf8_in_text_or_a_close_reason_is_1007() {
        for bytes in [
            whole(0x1, b"ok \xff"),
            whole(0x1, b"\xc3"),
            whole(0x8, &close_payload(1000, b"\xe2\x82")),
        ] {
            let e = decode_err(100, &bytes);
            assert!(matches!(e, WsError::BadUtf8(_)), "{e:?}");
            assert_eq!(e.close_code(), 1007);
        }
        // Assembled: valid pieces, invalid whole.
        let mut bytes = frame(false, 0x1, b"ab", KEY);
        bytes.extend(frame(true, 0x0, b"\xc3", KEY));
        assert!(matches!(decode_err(100, &bytes), WsError::BadUtf8(_)));
        // Binary messages are not checked.
        assert_eq!(decode_one(100, &whole(0x2, b"\xff")), Ok(message(b"\xff")));
    }

    #[test]
    fn errors_display_their_reason() {
        assert_eq!(
            WsError::Protocol("x".into()).to_string(),
            "protocol error: x"
        );
        assert_eq!(
            WsError::TooBig("y".into()).to_string(),
            "message too big: y"
        );
        assert_eq!(WsError::BadUtf8("z".into()).to_string(), "invalid UTF-8: z");
    }

    #[test]
    fn wanted_asks_for_the_rest_of_the_header_then_of_the_frame() {
        let decoder = WsDecoder::new(1 << 20);
        let big = whole(0x2, &vec![0; 1000]); // 8-byte header
        let wanted = |n: usize| decoder.wanted(&BytesMut::from(&big[..n]));
        assert_eq!(wanted(0), 2);
        assert_eq!(wanted(1), 1);
        assert_eq!(wanted(2), 6);
        assert_eq!(wanted(7), 1);
        assert_eq!(wanted(8), 1000);
        assert_eq!(wanted(18), 990);
        assert_eq!(wanted(1008), 0);
        let huge = whole(0x2, &vec![0; 70000]); // 14-byte header
        assert_eq!(decoder.wanted(&BytesMut::from(&huge[..2])), 12);
        assert_eq!(decoder.wanted(&BytesMut::from(&huge[..14])), 70000);
        // An unmasked header is 4 bytes shorter, and refused once read.
        assert_eq!(decoder.wanted(&BytesMut::from(&[0x82, 0x7e][..])), 2);
        assert_eq!(
            decoder.wanted(&BytesMut::from(&[0x82, 0x7e, 0, 200][..])),
            0
        );
        // Over the limit: nothing to reserve.
        assert_eq!(WsDecoder::new(999).wanted(&BytesMut::from(&big[..8])), 0);
    }

    #[test]
    fn has_frame_needs_the_header_and_the_whole_payload() {
        let bytes = whole(0x2, &[5; 200]);
        for n in 0..bytes.len() {
            assert!(!WsDecoder::has_frame(&bytes[..n]), "{n}");
        }
        assert!(WsDecoder::has_frame(&bytes));
        let mut more = bytes.clone();
        more.push(0x82);
        assert!(WsDecoder::has_frame(&more));
        // No checks: an unmasked or invalid frame is a frame too.
        assert!(WsDecoder::has_frame(&[0xff, 0x00]));
        assert!(WsDecoder::has_frame(&[0x82, 0x01, b'x']));
        // A length no buffer can hold.
        let mut top = vec![0x82, 0xff];
        top.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(!WsDecoder::has_frame(&top));
    }

    #[test]
    fn a_new_decoder_holds_no_buffer() {
        let decoder = WsDecoder::new(1 << 20);
        assert_eq!(decoder.assembly.capacity(), 0);
        assert_eq!(decoder.open, None);
    }

    #[test]
    fn encode_binary_writes_the_exact_bytes() {
        let mut out = BytesMut::new();
        encode_binary(b"hi", &mut out);
        assert_eq!(&out[..], &[0x82, 0x02, b'h', b'i']);
        out.clear();
        encode_binary(b"", &mut out);
        assert_eq!(&out[..], &[0x82, 0x00]);
    }

    #[test]
    fn encode_binary_uses_the_shortest_length_form_at_each_boundary() {
        let cases: [(usize, &[u8]); 6] = [
            (125, &[0x82, 125]),
            (126, &[0x82, 0x7e, 0x00, 0x7e]),
            (127, &[0x82, 0x7e, 0x00, 0x7f]),
            (65535, &[0x82, 0x7e, 0xff, 0xff]),
            (65536, &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]),
            (70000, &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0x11, 0x70]),
        ];
        for (len, header) in cases {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = BytesMut::new();
            encode_binary(&payload, &mut out);
            assert_eq!(&out[..header.len()], header, "len {len}");
            assert_eq!(&out[header.len()..], &payload[..], "len {len}");
        }
    }

    #[test]
    fn encode_appends_after_what_is_already_there() {
        let mut out = BytesMut::from(&b"xy"[..]);
        encode_binary(b"a", &mut out);
        encode_pong(b"b", &mut out);
        assert_eq!(&out[..], b"xy\x82\x01a\x8a\x01b");
    }

    #[test]
    fn encode_control_frames_writes_the_exact_bytes() {
        let mut out = BytesMut::new();
        encode_ping(b"p", &mut out);
        assert_eq!(&out[..], &[0x89, 0x01, b'p']);
        out.clear();
        encode_pong(b"", &mut out);
        assert_eq!(&out[..], &[0x8a, 0x00]);
        out.clear();
        encode_close(1000, "", &mut out);
        assert_eq!(&out[..], &[0x88, 0x02, 0x03, 0xe8]);
        out.clear();
        encode_close(1009, "too big", &mut out);
        assert_eq!(&out[..], b"\x88\x09\x03\xf1too big");
    }

    #[test]
    fn encode_control_frames_stay_within_125_bytes() {
        let mut out = BytesMut::new();
        encode_ping(&[1; 200], &mut out);
        assert_eq!(&out[..2], &[0x89, 125]);
        assert_eq!(out.len(), 127);
        out.clear();
        encode_pong(&[1; 126], &mut out);
        assert_eq!(out.len(), 127);
        out.clear();
        // 61 two-byte characters = 122 bytes fit; the 62nd (to 124) does not.
        let reason = "é".repeat(70);
        encode_close(1001, &reason, &mut out);
        assert_eq!(&out[..2], &[0x88, 124]);
        assert_eq!(&out[4..], "é".repeat(61).as_bytes());
        out.clear();
        encode_close(1001, &"a".repeat(200), &mut out);
        assert_eq!(&out[..2], &[0x88, 125]);
    }

    #[test]
    fn unmask_handles_every_tail_length() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut masked = data.clone();
            unmask(&mut masked, KEY);
            let expected: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ KEY[i % 4])
                .collect();
            assert_eq!(masked, expected, "len {len}");
        }
    }

    /// A client message for the property tests: text or binary, and a masking key.
    fn client_message() -> impl Strategy<Value = (bool, Vec<u8>, [u8; 4])> {
        prop_oneof![
            (".{0,80}").prop_map(|s: String| (true, s.into_bytes())),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|v| (false, v)),
        ]
        .prop_flat_map(|(text, payload)| (Just(text), Just(payload), any::<[u8; 4]>()))
    }

    proptest! {
        /// Any bytes, cut anywhere, with any limit: events or an error, never a panic; and a
        /// whole frame in the buffer is always consumed.
        #[test]
        fn arbitrary_bytes_never_panic(
            data in prop::collection::vec(any::<u8>(), 0..600),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            max in 0usize..400,
        ) {
            let mut decoder = WsDecoder::new(max);
            let _ = feed(&mut decoder, &data, &cuts);
            let buf = BytesMut::from(&data[..]);
            let _ = decoder.wanted(&buf);
            let _ = WsDecoder::has_frame(&data);
        }

        /// Valid frames with some bytes overwritten: never a panic.
        #[test]
        fn corrupted_frames_never_panic(
            messages in prop::collection::vec(client_message(), 1..5),
            edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
            max in 0usize..400,
        ) {
            let mut bytes: Vec<u8> = messages
                .iter()
                .flat_map(|(text, payload, key)| frame(true, if *text { 1 } else { 2 }, payload, *key))
                .collect();
            for (at, byte) in edits {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            let mut decoder = WsDecoder::new(max);
            let _ = feed(&mut decoder, &bytes, &cuts);
        }

        /// Masked text and binary frames, pings and pongs, cut anywhere, decode to what was
        /// sent.
        #[test]
        fn valid_frames_round_trip_for_any_split(
            messages in prop::collection::vec(client_message(), 0..6),
            cuts in prop::collection::vec(any::<usize>(), 0..10),
        ) {
            let mut bytes = Vec::new();
            let mut expected = Vec::new();
            for (i, (text, payload, key)) in messages.iter().enumerate() {
                bytes.extend(frame(true, if *text { 1 } else { 2 }, payload, *key));
                expected.push(message(payload));
                if i % 2 == 1 {
                    let ping = &payload[..payload.len().min(125)];
                    bytes.extend(frame(true, 0x9, ping, *key));
                    expected.push(WsEvent::Ping(Bytes::copy_from_slice(ping)));
                    bytes.extend(frame(true, 0xA, b"", *key));
                    expected.push(WsEvent::Pong);
                }
            }
            let mut decoder = WsDecoder::new(1000);
            prop_assert_eq!(feed(&mut decoder, &bytes, &cuts), Ok(expected));
            prop_assert_eq!(decoder.assembly.capacity(), 0);
        }

        /// A message cut into fragments, with pings between them, assembles to the original
        /// after the pings, for any split of the bytes.
        #[test]
        fn fragments_with_interleaved_pings_assemble(
            (text, payload, key) in client_message(),
            pieces in prop::collection::vec(any::<usize>(), 0..6),
            pings in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 0..6),
            cuts in prop::collection::vec(any::<usize>(), 0..10),
        ) {
            let mut bounds: Vec<usize> = pieces.iter().map(|p| p % (payload.len() + 1)).collect();
            bounds.push(0);
            bounds.push(payload.len());
            bounds.sort_unstable();
            let mut bytes = Vec::new();
            let mut expected = Vec::new();
            let n = bounds.len() - 1;
            for i in 0..n {
                let opcode = if i > 0 { 0 } else if text { 1 } else { 2 };
                bytes.extend(frame(i + 1 == n, opcode, &payload[bounds[i]..bounds[i + 1]], key));
                if let Some(ping) = pings.get(i).filter(|_| i + 1 < n) {
                    bytes.extend(frame(true, 0x9, ping, key));
                    expected.push(WsEvent::Ping(Bytes::copy_from_slice(ping)));
                }
            }
            expected.push(message(&payload));
            let mut decoder = WsDecoder::new(payload.len());
            prop_assert_eq!(feed(&mut decoder, &bytes, &cuts), Ok(expected));
            prop_assert_eq!(decoder.open, None);
            prop_assert_eq!(decoder.assembly.capacity(), 0);
        }

        /// For every prefix of a frame, `wanted` is at least 1, never more than the rest of
        /// the frame, and exactly the rest once the header is in.
        #[test]
        fn wanted_is_a_lower_bound_exact_after_the_header(
            len in prop_oneof![0usize..130, 65530usize..65540, Just(70000usize)],
            form in prop_oneof![Just(Form::Minimal), Just(Form::U16), Just(Form::U64)],
        ) {
            let bytes = raw(0x82, form, Some(KEY), &vec![0; len]);
            let header_len = bytes.len() - len;
            let decoder = WsDecoder::new(len);
            let step = if len > 1000 { 997 } else { 1 };
            let prefixes = (0..header_len).chain((header_len..bytes.len()).step_by(step));
            for n in prefixes {
                let buf = BytesMut::from(&bytes[..n]);
                let wanted = decoder.wanted(&buf);
                prop_assert!(wanted >= 1 && n + wanted <= bytes.len(), "n {} wanted {}", n, wanted);
                if n >= header_len {
                    prop_assert_eq!(n + wanted, bytes.len());
                }
            }
            prop_assert_eq!(decoder.wanted(&BytesMut::from(&bytes[..])), 0);
        }

        /// What the encoders write is one whole frame of the right opcode and payload.
        #[test]
        fn encoded_frames_read_back(payload in prop::collection::vec(any::<u8>(), 0..70000)) {
            let mut out = BytesMut::new();
            encode_binary(&payload, &mut out);
            let header = Header::parse(&out).expect("a header");
            prop_assert_eq!(header.b0, 0x82);
            prop_assert!(!header.masked);
            prop_assert_eq!(header.len, payload.len() as u64);
            prop_assert_eq!(&out[header.header_len..], &payload[..]);
            prop_assert!(WsDecoder::has_frame(&out));
        }

        /// The 8-bytes-at-a-time unmasking equals the byte-by-byte definition.
        #[test]
        fn unmask_matches_the_definition(
            data in prop::collection::vec(any::<u8>(), 0..100),
            key in any::<[u8; 4]>(),
        ) {
            let mut fast = data.clone();
            unmask(&mut fast, key);
            let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
            prop_assert_eq!(fast, slow);
        }
    }
}
