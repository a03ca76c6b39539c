//! The WebSocket frame codec against RFC 6455: what decodes, and how, rule by rule (data,
//! control and fragmented frames). The lengths and limits are in `lengths`, the refusals in `refusals`, the
//! encoder's bytes in `encode`, the properties over arbitrary input and splits in `props`.

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
    assert!(decoder.open.is_none(), "no fragment state held");
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
    assert!(
        decoder.open.is_none(),
        "nothing held once the message is whole"
    );
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
fn a_new_decoder_holds_no_buffer() {
    let decoder = WsDecoder::new(1 << 20);
    assert!(decoder.open.is_none());
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

mod encode;
mod lengths;
mod props;
mod refusals;
