//! The WebSocket frame codec against RFC 6455: each rule, and the length forms at their
//! boundaries; the properties over arbitrary input and splits are in `props`.

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
fn feed(decoder: &mut WsDecoder, bytes: &[u8], cuts: &[usize]) -> Result<Vec<WsEvent>, WsError> {
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

mod props;
