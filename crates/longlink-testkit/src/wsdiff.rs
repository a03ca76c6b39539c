//! A differential check of a WebSocket server's reading side against tungstenite's: the same
//! client bytes go to tungstenite's server-side [`WebSocket`] (over an in-memory stream, in
//! reads of a chosen size) and to the server under test, and the two must agree on every
//! message delivered, every pong sent and the close code, or differ in one of the
//! [`Exception`]s, each a documented choice of the server under test.
//!
//! - [`put_frame`], [`put_frame_with`]: client frames, masked, as an Autobahn test client
//!   writes them;
//! - [`reference()`]: what tungstenite does with bytes;
//! - [`compare`]: the verdict on what the server under test did ([`Observed`]);
//! - [`generate`]: a frame sequence from fuzz bytes (the fuzz target `ws_differential` and
//!   the replay of its seeds).

use std::io::{self, Read, Write};

use tokio_tungstenite::tungstenite::error::{Error, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The masking key of the client frames made here.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// How a frame's payload length is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LenForm {
    /// In the fewest bytes (RFC 6455 5.2).
    Shortest,
    /// In the 16-bit form, whatever the length.
    Bits16,
    /// In the 64-bit form, whatever the length.
    Bits64,
}

/// Appends a client frame: `b0` (FIN, RSV1-3, opcode) as given, `payload` masked with [`KEY`],
/// its length in the fewest bytes.
pub fn put_frame(out: &mut Vec<u8>, b0: u8, payload: &[u8]) {
    put_frame_with(out, b0, payload, Some(KEY), LenForm::Shortest);
}

/// Appends a frame: `b0` as given, `payload` masked with `key` (`None`: unmasked, the MASK
/// bit clear), its length written in `form`.
pub fn put_frame_with(
    out: &mut Vec<u8>,
    b0: u8,
    payload: &[u8],
    key: Option<[u8; 4]>,
    form: LenForm,
) {
    out.push(b0);
    let mask_bit = if key.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    match form {
        LenForm::Shortest if len < 126 => out.push(mask_bit | len as u8),
        LenForm::Shortest | LenForm::Bits16 if len <= usize::from(u16::MAX) => {
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
}

/// The whole frames at the front of `bytes`, unmasked: `(b0, payload)` each; stops at the
/// first frame that is not all there.
pub fn frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let [b0, b1, tail @ ..] = rest {
        let (len, tail) = match b1 & 0x7f {
            126 if tail.len() >= 2 => (
                u64::from(u16::from_be_bytes([tail[0], tail[1]])),
                &tail[2..],
            ),
            127 if tail.len() >= 8 => {
                let mut n = [0; 8];
                n.copy_from_slice(&tail[..8]);
                (u64::from_be_bytes(n), &tail[8..])
            }
            126 | 127 => break,
            n => (u64::from(n), tail),
        };
        let (key, tail) = match (b1 & 0x80 != 0, tail) {
            (true, [a, b, c, d, tail @ ..]) => (Some([*a, *b, *c, *d]), tail),
            (true, _) => break,
            (false, tail) => (None, tail),
        };
        let Some(len) = usize::try_from(len).ok().filter(|&n| n <= tail.len()) else {
            break;
        };
        let mut payload = tail[..len].to_vec();
        if let Some(key) = key {
            payload
                .iter_mut()
                .zip(key.iter().cycle())
                .for_each(|(b, k)| *b ^= k);
        }
        out.push((*b0, payload));
        rest = &tail[len..];
    }
    out
}

/// What tungstenite's server did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefEvent {
    /// A message delivered: text (`true`) or binary, and its bytes.
    Message(bool, Vec<u8>),
    /// A ping read, and answered with a pong carrying this payload.
    Pong(Vec<u8>),
}

/// How tungstenite's server ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefEnd {
    /// It answered the peer's close frame: the peer's code (`None`: an empty close
    /// payload), which tungstenite echoes.
    Answered(Option<u16>),
    /// It answered a close frame whose code it does not accept (this code) with 1002.
    RefusedCode(u16),
    /// It failed the connection: 1002 (protocol), 1007 (bad UTF-8) or 1009 (too big), as
    /// RFC 6455 7.4.1 names its read error.
    Failed(u16),
    /// The input ended, without a close frame, or inside a frame.
    InputEnded,
}

/// What tungstenite's server-side [`WebSocket`] did with a client's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Messages delivered and pongs written, in order.
    pub events: Vec<RefEvent>,
    /// How it ended.
    pub end: RefEnd,
    /// The payload of the first close frame in the input, if there is one.
    pub close_frame: Option<Vec<u8>>,
}

/// An in-memory socket: reads `input` at most `read_size` bytes at a time, then the end of
/// the stream; keeps what is written.
struct Pipe<'a> {
    input: &'a [u8],
    read_size: usize,
    output: Vec<u8>,
}

impl Read for Pipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.read_size).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Pipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Feeds `input` (a client's bytes after the handshake) to tungstenite's server-side
/// [`WebSocket`] with `max_msg_len` as its message and frame limit, in reads of at most
/// `read_size` bytes, and reads until it ends. Pongs are taken from what it wrote.
pub fn reference(input: &[u8], max_msg_len: usize, read_size: usize) -> Reference {
    let pipe = Pipe {
        input,
        read_size: read_size.max(1),
        output: Vec::new(),
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_msg_len))
        .max_frame_size(Some(max_msg_len));
    let mut ws = WebSocket::from_raw_socket(pipe, Role::Server, Some(config));
    let mut events = Vec::new();
    let mut peer_close = None;
    let end = loop {
        match ws.read() {
            Ok(Message::Text(text)) => {
                events.push(RefEvent::Message(true, text.as_bytes().to_vec()))
            }
            Ok(Message::Binary(bytes)) => events.push(RefEvent::Message(false, bytes.to_vec())),
            // The pong goes out with the next read; taken from the output below.
            Ok(Message::Ping(_)) => events.push(RefEvent::Pong(Vec::new())),
            Ok(Message::Pong(_) | Message::Frame(_)) => {}
            Ok(Message::Close(close)) => {
                peer_close = Some(close.map(|c| (u16::from(c.code), c.reason)));
            }
            Err(Error::ConnectionClosed) => break None,
            Err(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
                break Some(RefEnd::InputEnded);
            }
            Err(Error::Protocol(_)) => break Some(RefEnd::Failed(1002)),
            Err(Error::Utf8(_)) => break Some(RefEnd::Failed(1007)),
            Err(Error::Capacity(_)) => break Some(RefEnd::Failed(1009)),
            Err(e) => panic!("tungstenite on an in-memory stream: {e}"),
        }
    };
    // The pongs, in the order written, fill in the pings' places.
    let written = frames(&ws.get_ref().output);
    let mut pongs = written.iter().filter(|(b0, _)| b0 & 0x0f == 0xA);
    for event in &mut events {
        if let RefEvent::Pong(payload) = event {
            *payload = pongs.next().expect("a pong for each ping").1.clone();
        }
    }
    let end = end.unwrap_or_else(|| match peer_close {
        // tungstenite answers a code it does not accept with this close (and no other).
        Some(Some((1002, reason))) if reason == Utf8Bytes::from_static("Protocol violation") => {
            RefEnd::RefusedCode(first_close_code(input).unwrap_or(1002))
        }
        Some(close) => RefEnd::Answered(close.map(|(code, _)| code)),
        None => RefEnd::InputEnded,
    });
    Reference {
        events,
        end,
        close_frame: first_close(input),
    }
}

/// The payload of the first close frame in `input`.
fn first_close(input: &[u8]) -> Option<Vec<u8>> {
    let (_, payload) = frames(input).into_iter().find(|(b0, _)| b0 & 0x0f == 0x8)?;
    Some(payload)
}

/// The code of the first close frame in `input` (`None`: none, or no code).
fn first_close_code(input: &[u8]) -> Option<u16> {
    let payload = first_close(input)?;
    Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]))
}

mod compare;
mod generate;

pub use compare::{Exception, Observed, compare, unlimited};

pub use generate::{FUZZ_MAX_MSG_LEN, generate, seed_inputs};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_what_put_frame_wrote() {
        let mut out = Vec::new();
        put_frame(&mut out, 0x81, b"hello");
        put_frame_with(&mut out, 0x02, &[7; 300], None, LenForm::Shortest);
        put_frame_with(&mut out, 0x89, b"", Some(KEY), LenForm::Bits64);
        out.extend_from_slice(&[0x82, 0x85, 1]);
        assert_eq!(
            frames(&out),
            [
                (0x81, b"hello".to_vec()),
                (0x02, vec![7; 300]),
                (0x89, Vec::new())
            ]
        );
    }

    #[test]
    fn the_reference_delivers_answers_and_fails() {
        let mut input = Vec::new();
        put_frame(&mut input, 0x01, b"he");
        put_frame(&mut input, 0x89, b"p");
        put_frame(&mut input, 0x80, b"llo");
        put_frame(&mut input, 0x88, &1001u16.to_be_bytes());
        let r = reference(&input, 100, 3);
        assert_eq!(
            r.events,
            [
                RefEvent::Pong(b"p".to_vec()),
                RefEvent::Message(true, b"hello".to_vec())
            ]
        );
        assert_eq!(r.end, RefEnd::Answered(Some(1001)));
        let mut input = Vec::new();
        put_frame(&mut input, 0x88, &1004u16.to_be_bytes());
        assert_eq!(reference(&input, 100, 64).end, RefEnd::RefusedCode(1004));
        let mut input = Vec::new();
        put_frame(&mut input, 0x82, &[0; 101]);
        assert_eq!(reference(&input, 100, 64).end, RefEnd::Failed(1009));
        assert_eq!(reference(&input[..7], 100, 64).end, RefEnd::Failed(1009));
        assert_eq!(reference(&input[..1], 100, 64).end, RefEnd::InputEnded);
    }
}
