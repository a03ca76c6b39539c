//! The encoder (`frame/encode.rs`): the exact bytes of server frames.

use super::*;

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
