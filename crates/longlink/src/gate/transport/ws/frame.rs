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

use bytes::{Buf, Bytes, BytesMut};

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

/// Decodes a client's frames into [`WsEvent`]s; sans-IO (the caller reads into a
/// `BytesMut` and hands it over).
///
/// After an error the connection is to be closed: decoding further is not meaningful.
#[derive(Debug)]
pub(crate) struct WsDecoder {
    /// The largest data frame and the largest assembled message, in bytes.
    max_msg_len: usize,
    /// The fragmented message in progress, if any. Boxed: every WebSocket connection's task
    /// holds a decoder, and few connections ever send a fragmented message.
    open: Option<Box<Fragmented>>,
}

/// A fragmented message in progress.
#[derive(Debug)]
struct Fragmented {
    /// [`Op::Text`] or [`Op::Binary`].
    kind: Op,
    /// The payload so far.
    assembly: BytesMut,
    /// How many bytes at the front of a text's `assembly` are checked UTF-8 (what follows
    /// them may be a character that the next fragment finishes).
    checked: u32,
}

impl WsDecoder {
    /// A decoder that refuses data frames and messages over `max_msg_len` bytes.
    pub(crate) fn new(max_msg_len: usize) -> Self {
        WsDecoder {
            max_msg_len,
            open: None,
        }
    }

    /// Whether a fragmented message is in progress.
    pub(crate) fn in_message(&self) -> bool {
        self.open.is_some()
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
        match (op, &self.open) {
            (Op::Continuation, None) => return Err(protocol("continuation frame without a start")),
            (Op::Text | Op::Binary, Some(_)) => {
                return Err(protocol(
                    "new data frame while a fragmented message is open",
                ));
            }
            _ => {}
        }
        // The frame's own length for an unfragmented message, the message's so far for a
        // fragment.
        let so_far = self.open.as_ref().map_or(0, |open| open.assembly.len());
        let total = (so_far as u64).saturating_add(header.len);
        if total > self.max_msg_len as u64 {
            return Err(WsError::TooBig(format!(
                "{total} bytes, over the limit of {}",
                self.max_msg_len
            )));
        }
        Ok((op, header.len as usize))
    }

    /// Takes a data frame's (unmasked) payload: a whole message if this completes one. A
    /// fragmented text is checked fragment by fragment, so bad UTF-8 fails the connection
    /// as soon as it has arrived (RFC 6455 8.1), not once the message ends.
    fn data(&mut self, op: Op, fin: bool, payload: BytesMut) -> Result<Option<Bytes>, WsError> {
        let open = match (&mut self.open, op) {
            (Some(open), Op::Continuation) => open,
            (None, Op::Continuation) => {
                return Err(protocol("continuation frame without a start"));
            }
            (_, kind) if fin => return finish(kind, payload).map(Some),
            (slot, kind) => slot.insert(Box::new(Fragmented {
                kind,
                assembly: BytesMut::new(),
                checked: 0,
            })),
        };
        open.assembly.extend_from_slice(&payload);
        if open.kind == Op::Text {
            open.check_utf8(fin)?;
        }
        if !fin {
            return Ok(None);
        }
        Ok(self.open.take().map(|done| done.assembly.freeze()))
    }
}

impl Fragmented {
    /// Checks the text assembled past what is checked already: a byte that cannot be UTF-8
    /// fails now; a character left unfinished at the end waits for the next fragment,
    /// unless this was the last.
    fn check_utf8(&mut self, fin: bool) -> Result<(), WsError> {
        let from = (self.checked as usize).min(self.assembly.len());
        let valid = match std::str::from_utf8(&self.assembly[from..]) {
            Ok(_) => self.assembly.len() - from,
            Err(e) if e.error_len().is_none() && !fin => e.valid_up_to(),
            Err(_) => return Err(WsError::BadUtf8("text message".into())),
        };
        // Past u32::MAX (not with the gate's u32 limit), the next check starts over.
        self.checked = u32::try_from(from + valid).unwrap_or(0);
        Ok(())
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

mod encode;
mod header;

pub(crate) use encode::{encode_binary, encode_close, encode_ping, encode_pong};
use header::{Header, Op, unmask};

#[cfg(test)]
mod tests;
