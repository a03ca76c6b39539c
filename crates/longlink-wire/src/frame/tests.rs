//! The framing against golden bytes, split packets and arbitrary input.
use super::*;
use proptest::prelude::*;

#[test]
fn golden_two_byte_big_endian_header() {
    let payload = br#"{"Hello":{"name":"echo:tcp","N":0,"Html":""}}"#;
    assert_eq!(payload.len(), 45);
    let mut out = BytesMut::new();
    LenCodec::new(2, false, 4096)
        .unwrap()
        .encode(payload, &mut out)
        .unwrap();
    assert_eq!(&out[..2], &[0x00, 0x2d]);
    assert_eq!(&out[2..], &payload[..]);
}

#[test]
fn golden_four_byte_little_endian() {
    let mut out = BytesMut::new();
    LenCodec::new(4, true, 4096)
        .unwrap()
        .encode(&[0x68, 0x69], &mut out)
        .unwrap();
    assert_eq!(&out[..], &[0x02, 0x00, 0x00, 0x00, 0x68, 0x69]);
}

#[test]
fn golden_four_byte_big_endian_and_two_byte_little_endian() {
    let mut out = BytesMut::new();
    LenCodec::new(4, false, 4096)
        .unwrap()
        .encode(b"hi", &mut out)
        .unwrap();
    assert_eq!(&out[..], &[0x00, 0x00, 0x00, 0x02, 0x68, 0x69]);
    out.clear();
    LenCodec::new(2, true, 4096)
        .unwrap()
        .encode(b"hi", &mut out)
        .unwrap();
    assert_eq!(&out[..], &[0x02, 0x00, 0x68, 0x69]);
}

#[test]
fn golden_one_byte() {
    let mut out = BytesMut::new();
    LenCodec::new(1, false, 4096)
        .unwrap()
        .encode(b"abc", &mut out)
        .unwrap();
    assert_eq!(&out[..], &[0x03, b'a', b'b', b'c']);
}

#[test]
fn max_is_clamped_to_the_field() {
    assert_eq!(LenCodec::new(1, false, 4096).unwrap().max_msg_len(), 255);
    assert_eq!(
        LenCodec::new(2, false, 100_000).unwrap().max_msg_len(),
        65535
    );
    assert_eq!(
        LenCodec::new(4, false, 100_000).unwrap().max_msg_len(),
        100_000
    );
    assert_eq!(
        LenCodec::new(4, false, u32::MAX).unwrap().max_msg_len(),
        u32::MAX as usize
    );
    assert_eq!(LenCodec::new(2, false, 0).unwrap().max_msg_len(), 4096);
    assert!(matches!(
        LenCodec::new(3, false, 10),
        Err(CodecError::BadLenMsgLen(3))
    ));
}

#[test]
fn the_builder_matches_new() {
    assert_eq!(LenCodec::builder().build().unwrap(), LenCodec::default());
    assert_eq!(
        LenCodec::builder()
            .len_msg_len(4)
            .little_endian()
            .max_msg_len(0)
            .build()
            .unwrap(),
        LenCodec::new(4, true, 0).unwrap()
    );
    assert_eq!(
        LenCodec::builder()
            .little_endian()
            .big_endian()
            .len_msg_len(1)
            .build()
            .unwrap(),
        LenCodec::new(1, false, 8192).unwrap()
    );
    assert!(matches!(
        LenCodec::builder().len_msg_len(0).build(),
        Err(CodecError::BadLenMsgLen(0))
    ));
}

#[test]
fn oversize_header_is_refused_before_the_payload_arrives() {
    let codec = LenCodec::new(2, false, 10).unwrap();
    let mut src = BytesMut::from(&[0x00, 0x0b][..]);
    assert!(matches!(
        codec.decode(&mut src),
        Err(CodecError::TooLong { len: 11, max: 10 })
    ));
}

#[test]
fn zero_length_frame_is_an_error() {
    let codec = LenCodec::default();
    let mut src = BytesMut::from(&[0x00, 0x00, 0x41][..]);
    assert!(matches!(
        codec.decode(&mut src),
        Err(CodecError::TooShort { len: 0 })
    ));
}

#[test]
fn a_huge_announced_length_reserves_one_step_only() {
    let codec = LenCodec::new(4, false, u32::MAX).unwrap();
    let mut src = BytesMut::from(&[0x40, 0x00, 0x00, 0x00, 0x01][..]); // 1 GiB announced
    assert!(codec.decode(&mut src).unwrap().is_none());
    assert!(src.capacity() < 1 << 20, "reserved {}", src.capacity());
    assert_eq!(src.len(), 5, "nothing consumed");
}

#[test]
fn outgoing_bounds_are_checked() {
    let codec = LenCodec::new(1, false, 4096).unwrap();
    let mut out = BytesMut::new();
    assert!(matches!(
        codec.encode(&[0u8; 256], &mut out),
        Err(CodecError::TooLong { len: 256, max: 255 })
    ));
    assert!(matches!(
        codec.encode(&[], &mut out),
        Err(CodecError::TooShort { len: 0 })
    ));
    assert!(matches!(
        codec.encode_header(0, &mut out),
        Err(CodecError::TooShort { len: 0 })
    ));
    assert!(out.is_empty(), "nothing is written for a refused frame");
}

#[test]
fn one_byte_at_a_time() {
    let codec = LenCodec::new(2, true, 4096).unwrap();
    let mut wire = BytesMut::new();
    codec.encode(b"hello", &mut wire).unwrap();
    codec.encode(b"w", &mut wire).unwrap();
    let mut src = BytesMut::new();
    let mut got = Vec::new();
    for b in wire.iter() {
        src.put_u8(*b);
        while codec.is_complete(&src) {
            got.push(codec.decode(&mut src).unwrap().unwrap());
        }
        assert!(codec.decode(&mut src).unwrap().is_none());
    }
    assert_eq!(
        got,
        vec![Bytes::from_static(b"hello"), Bytes::from_static(b"w")]
    );
    assert!(src.is_empty());
}

#[test]
fn the_tokio_util_traits_delegate() {
    let mut codec = LenCodec::new(1, false, 10).unwrap();
    let mut buf = BytesMut::new();
    Encoder::encode(&mut codec, Bytes::from_static(b"ab"), &mut buf).unwrap();
    Encoder::<&[u8]>::encode(&mut codec, b"c", &mut buf).unwrap();
    assert!(matches!(
        Encoder::encode(&mut codec, Bytes::from_static(&[0; 11]), &mut buf),
        Err(CodecError::TooLong { len: 11, max: 10 })
    ));
    assert_eq!(&buf[..], b"\x02ab\x01c");
    assert_eq!(
        Decoder::decode(&mut codec, &mut buf).unwrap().unwrap(),
        &b"ab"[..]
    );
    assert_eq!(
        Decoder::decode_eof(&mut codec, &mut buf).unwrap().unwrap(),
        &b"c"[..]
    );
    assert!(Decoder::decode_eof(&mut codec, &mut buf).unwrap().is_none());

    // The stream ends after the header, and after part of a header.
    let mut cut = BytesMut::from(&b"\x05"[..]);
    assert!(matches!(
        Decoder::decode_eof(&mut codec, &mut cut),
        Err(CodecError::Eof { buffered: 1 })
    ));
    let mut codec = LenCodec::new(4, false, 10).unwrap();
    let mut cut = BytesMut::from(&b"\x00\x00"[..]);
    assert!(matches!(
        Decoder::decode_eof(&mut codec, &mut cut),
        Err(CodecError::Eof { buffered: 2 })
    ));
    // A bad header at the end is the header's error, not an Eof.
    let mut bad = BytesMut::from(&b"\x00\x00\x00\x00"[..]);
    assert!(matches!(
        Decoder::decode_eof(&mut codec, &mut bad),
        Err(CodecError::TooShort { len: 0 })
    ));
}

#[test]
fn error_messages() {
    assert_eq!(
        CodecError::TooLong { len: 11, max: 10 }.to_string(),
        "message too long: 11 bytes, the limit is 10"
    );
    assert_eq!(
        CodecError::TooShort { len: 0 }.to_string(),
        "message too short: 0 bytes, the minimum is 1"
    );
    assert_eq!(
        CodecError::BadLenMsgLen(3).to_string(),
        "len_msg_len must be 1, 2 or 4, not 3"
    );
    assert_eq!(
        CodecError::Eof { buffered: 3 }.to_string(),
        "end of stream inside a frame (3 bytes of it buffered)"
    );
    let io = CodecError::from(std::io::Error::other("boom"));
    assert!(matches!(io, CodecError::Io(_)));
    assert_eq!(io.to_string(), "i/o: boom");
}

fn codec_strategy() -> impl Strategy<Value = LenCodec> {
    (prop_oneof![Just(1usize), Just(2), Just(4)], any::<bool>())
        .prop_map(|(n, le)| LenCodec::new(n, le, 300).unwrap())
}

proptest! {
    /// Any split of a byte stream decodes to the same frames.
    #[test]
    fn any_split_decodes_the_same(
        codec in codec_strategy(),
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..255), 0..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut wire = BytesMut::new();
        for p in &payloads {
            codec.encode(p, &mut wire).unwrap();
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        let mut src = BytesMut::new();
        let mut got = Vec::new();
        for w in points.windows(2) {
            src.extend_from_slice(&wire[w[0]..w[1]]);
            while let Some(f) = codec.decode(&mut src).unwrap() {
                got.push(f.to_vec());
            }
        }
        prop_assert_eq!(got, payloads);
        prop_assert!(src.is_empty());
    }

    /// Arbitrary bytes never panic the decoder, and every frame it yields is within bounds.
    #[test]
    fn garbage_never_panics(codec in codec_strategy(), data in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut src = BytesMut::from(&data[..]);
        while let Ok(Some(f)) = codec.decode(&mut src) {
            prop_assert!(!f.is_empty() && f.len() <= codec.max_msg_len());
        }
        let mut codec = codec;
        let _ = Decoder::decode_eof(&mut codec, &mut src);
    }
}
