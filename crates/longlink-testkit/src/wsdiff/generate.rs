//! Client bytes from fuzz bytes: a sequence of frames, valid and not, for the fuzz target
//! `ws_differential` and the replay of its seeds.

use super::{KEY, LenForm, put_frame, put_frame_with};

/// The message limit of the fuzz target and of its seeds' replay.
pub const FUZZ_MAX_MSG_LEN: usize = 1024;

/// Pieces of UTF-8, valid and not, that text payloads are made of.
const UTF8_PIECES: &[&[u8]] = &[
    b"a",
    "\u{3ba}\u{1f79}\u{3c3}\u{3bc}\u{3b5}".as_bytes(),
    &[0xc2, 0xa2],
    &[0xe2, 0x82, 0xac],
    &[0xf0, 0xa4, 0xad, 0xa2],
    &[0xf4, 0x8f, 0xbf, 0xbf],
    &[0xef, 0xbf, 0xbe],
    &[0xed, 0x9f, 0xbf],
    &[0xf4, 0x90, 0x80, 0x80],
    &[0xed, 0xa0, 0x80],
    &[0xc0, 0xaf],
    &[0xe0, 0x80, 0xaf],
    &[0x80],
    &[0xfe],
    &[0xf8, 0x88, 0x80, 0x80, 0x80],
    &[0xce],
];

/// Close codes to pick from: valid, invalid, and the edges.
const CLOSE_CODES: &[u16] = &[
    1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1009, 1011, 1012, 1013, 1014, 1015, 1016, 2999,
    3000, 3999, 4000, 4999, 5000, 0, 999, 65535,
];

/// Reads fuzz bytes one at a time; zeros once they run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken.to_vec()
    }
}

/// A fuzz input made into client bytes and the size of the reads to deliver them in.
///
/// The first byte picks the read size (1 to 16 bytes, or all at once); then each op byte
/// appends a frame (its low 3 bits the kind, the rest its flags): a text, binary or
/// continuation frame, FIN from a flag, its payload starting with the id `00 00` unless a
/// flag says not, made of bytes or of UTF-8 pieces, of a length up to past
/// [`FUZZ_MAX_MSG_LEN`]; a ping or pong (up to 127 bytes); a close (a code from a list, or
/// none, or 1 byte; a reason, maybe not UTF-8); a frame with any first byte (reserved bits
/// and opcodes); an unmasked frame; a length in a longer form than needed; or the first
/// bytes of a frame and the end of the input.
pub fn generate(data: &[u8]) -> (Vec<u8>, usize) {
    let mut input = Bytes(data);
    let read_size = match input.byte() {
        0 => usize::MAX,
        n => usize::from(n % 16) + 1,
    };
    let mut out = Vec::new();
    while !input.0.is_empty() && out.len() < 16 * 1024 {
        let op = input.byte();
        let flags = op >> 3;
        let fin = if flags & 1 == 0 { 0x80 } else { 0 };
        match op & 7 {
            0..=2 => {
                let opcode = [0x1, 0x2, 0x0][usize::from(op & 7)];
                let payload = payload(&mut input, flags, opcode == 0x1);
                put_frame(&mut out, fin | opcode, &payload);
            }
            3 => {
                let len = usize::from(input.byte() % 128);
                let opcode = if flags & 2 == 0 { 0x9 } else { 0xA };
                put_frame(&mut out, 0x80 | opcode, &input.take(len));
            }
            4 => {
                let mut payload = Vec::new();
                match input.byte() % 8 {
                    0 => {}
                    1 => payload.push(0x03),
                    n => {
                        let pick = usize::from(input.byte()) % CLOSE_CODES.len();
                        payload.extend_from_slice(&CLOSE_CODES[pick].to_be_bytes());
                        if n > 4 {
                            let len = usize::from(input.byte() % 8);
                            payload.extend(utf8_text(&mut input, len));
                        }
                    }
                }
                put_frame(&mut out, 0x80 | 0x8, &payload);
            }
            5 => {
                let b0 = input.byte();
                let len = usize::from(input.byte() % 8);
                put_frame(&mut out, b0, &input.take(len));
            }
            6 => {
                let opcode = [0x1, 0x2, 0x9, 0x0][usize::from(flags & 3)];
                let len = usize::from(input.byte() % 16);
                let payload = [&[0, 0][..], &input.take(len)].concat();
                let (key, form) = match flags >> 2 {
                    0 => (None, LenForm::Shortest),
                    1 | 2 => (Some(KEY), LenForm::Bits16),
                    _ => (Some(KEY), LenForm::Bits64),
                };
                put_frame_with(&mut out, 0x80 | opcode, &payload, key, form);
            }
            _ => {
                let mut frame = Vec::new();
                let len = usize::from(input.byte()) * 8;
                put_frame(&mut frame, 0x80 | (flags & 0x2), &vec![0; len]);
                let keep = usize::from(input.byte()) % frame.len().max(1);
                out.extend_from_slice(&frame[..keep]);
                break;
            }
        }
    }
    (out, read_size)
}

/// A data frame's payload: `00 00` first unless flag 2 is set; then bytes (or UTF-8 pieces
/// for a text frame unless flag 4 is set) up to a length chosen by the next byte.
fn payload(input: &mut Bytes<'_>, flags: u8, text: bool) -> Vec<u8> {
    let mut payload = if flags & 2 == 0 {
        vec![0, 0]
    } else {
        Vec::new()
    };
    let n = input.byte();
    let len = match n {
        0..=199 => usize::from(n),
        200..=249 => usize::from(n - 200) * 32,
        _ => FUZZ_MAX_MSG_LEN - 8 + usize::from(n - 250) * 4,
    };
    if text && flags & 4 == 0 {
        payload.extend(utf8_text(input, len));
    } else {
        payload.extend(input.take(len.min(64)));
        payload.resize(payload.len().max(len), b'x');
    }
    payload
}

/// About `len` bytes of UTF-8 pieces picked by the input (each piece one byte of it), then
/// ASCII to the length.
fn utf8_text(input: &mut Bytes<'_>, len: usize) -> Vec<u8> {
    let mut text = Vec::new();
    while text.len() < len.min(64) && !input.0.is_empty() {
        let piece = UTF8_PIECES[usize::from(input.byte()) % UTF8_PIECES.len()];
        text.extend_from_slice(piece);
    }
    text.resize(text.len().max(len), b'a');
    text
}

/// Named inputs for [`generate`], the seeds of the fuzz target `ws_differential` (written by
/// `fuzz/examples/gen_seeds.rs`): each op as [`generate`] reads it.
pub fn seed_inputs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        // Whole: a text "a€", a ping "ping", a close 1000.
        (
            "text_ping_close",
            vec![
                0, 0x00, 4, 0, 3, 0x03, 4, b'p', b'i', b'n', b'g', 0x04, 2, 0,
            ],
        ),
        // In reads of 3: a text fragment, an empty ping, a continuation, the last one, a close.
        (
            "fragments_ping",
            vec![
                2, 0x08, 2, 0, 0, 0x03, 0, 0x0A, 3, b'a', b'b', b'c', 0x02, 2, b'd', b'e', 0x04, 2,
                0,
            ],
        ),
        // A text fragment ending in a character's first byte, a fragment that makes it bad
        // UTF-8, a ping (no pong: the connection fails first), the last fragment.
        (
            "bad_utf8_then_ping",
            vec![
                0, 0x08, 2, 0, 15, 0x0A, 1, b'z', 0x03, 1, b'x', 0x02, 1, b'y', 0x04, 2, 0,
            ],
        ),
        // Close with 1014, with 1005, 1001 with a reason, with one byte, empty.
        ("close_1014", vec![0, 0x04, 2, 12]),
        ("close_1005", vec![0, 0x04, 2, 5]),
        ("close_reason", vec![1, 0x04, 6, 1, 4, 1]),
        ("close_one_byte", vec![0, 0x04, 1]),
        ("close_empty", vec![0, 0x04, 0]),
        // A binary over the limit (1036 bytes); a ping of 126 bytes.
        ("too_big", vec![0, 0x01, 255, 0x04, 2, 0]),
        ("ping_126", [&[0, 0x03, 126][..], &[b'p'; 126]].concat()),
        // Reserved bits, a reserved opcode, a fragmented ping, unmasked, the 16- and 64-bit
        // length forms for 5 bytes, a stray continuation.
        (
            "reserved_bits",
            vec![0, 0x05, 0xC1, 2, b'h', b'i', 0x04, 2, 0],
        ),
        ("reserved_opcode", vec![0, 0x05, 0x83, 0, 0x04, 2, 0]),
        ("fragmented_ping", vec![0, 0x05, 0x09, 1, b'p', 0x04, 2, 0]),
        ("unmasked", vec![0, 0x06, 3, b'a', b'b', b'c']),
        (
            "length_16_bits",
            vec![0, 0x26, 3, b'a', b'b', b'c', 0x04, 2, 0],
        ),
        (
            "length_64_bits",
            vec![0, 0x66, 3, b'a', b'b', b'c', 0x04, 2, 0],
        ),
        ("stray_continuation", vec![0, 0x02, 3, b'a', b'b', b'c']),
        // In reads of 6: a text without the id ("aaa"), then 9 bytes of a frame and the end.
        (
            "no_id_then_truncated",
            vec![5, 0x10, 3, 0, 0, 0, 0x07, 40, 9],
        ),
    ]
}
