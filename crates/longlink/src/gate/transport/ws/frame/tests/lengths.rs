//! Lengths: the 7-, 16- and 64-bit forms at their boundaries, `max_msg_len` on a frame and on
//! an assembled message, and how much the decoder asks for before a frame is whole.

use super::*;

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
    assert_eq!(
        decoder.open.as_ref().map(|open| open.assembly.len()),
        Some(6)
    );
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
