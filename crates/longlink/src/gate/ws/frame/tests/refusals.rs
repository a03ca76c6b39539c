//! Every refusal of the decoder: the frames RFC 6455 forbids (1002), bad UTF-8 (1007), and
//! how the errors read.

use super::*;

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
    // Fail-fast: the fragment that cannot be UTF-8 is refused before the message ends,
    // whether it is bad alone or only after the bytes before it.
    for (first, second) in [(&b"ab"[..], &b"\xff"[..]), (b"a\xf4", b"\x90\x80\x80")] {
        let mut bytes = frame(false, 0x1, first, KEY);
        bytes.extend(frame(false, 0x0, second, KEY));
        assert!(
            matches!(decode_err(100, &bytes), WsError::BadUtf8(_)),
            "{first:?} {second:?}"
        );
    }
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
