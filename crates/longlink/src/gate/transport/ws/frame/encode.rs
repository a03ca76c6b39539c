//! Server frames out: whole and never masked, each appended to the caller's buffer.

use bytes::{BufMut, BytesMut};

use super::MAX_CONTROL;

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
