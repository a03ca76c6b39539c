//! Properties of the frame codec over arbitrary input, corruptions and splits.

use super::*;

/// A client message for the property tests: text or binary, and a masking key.
fn client_message() -> impl Strategy<Value = (bool, Vec<u8>, [u8; 4])> {
    prop_oneof![
        (".{0,80}").prop_map(|s: String| (true, s.into_bytes())),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|v| (false, v)),
    ]
    .prop_flat_map(|(text, payload)| (Just(text), Just(payload), any::<[u8; 4]>()))
}

proptest! {
    /// Any bytes, cut anywhere, with any limit: events or an error, never a panic; and a
    /// whole frame in the buffer is always consumed.
    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        max in 0usize..400,
    ) {
        let mut decoder = WsDecoder::new(max);
        let _ = feed(&mut decoder, &data, &cuts);
        let buf = BytesMut::from(&data[..]);
        let _ = decoder.wanted(&buf);
        let _ = WsDecoder::has_frame(&data);
    }

    /// Valid frames with some bytes overwritten: never a panic.
    #[test]
    fn corrupted_frames_never_panic(
        messages in prop::collection::vec(client_message(), 1..5),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        max in 0usize..400,
    ) {
        let mut bytes: Vec<u8> = messages
            .iter()
            .flat_map(|(text, payload, key)| frame(true, if *text { 1 } else { 2 }, payload, *key))
            .collect();
        for (at, byte) in edits {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        let mut decoder = WsDecoder::new(max);
        let _ = feed(&mut decoder, &bytes, &cuts);
    }

    /// Masked text and binary frames, pings and pongs, cut anywhere, decode to what was
    /// sent.
    #[test]
    fn valid_frames_round_trip_for_any_split(
        messages in prop::collection::vec(client_message(), 0..6),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for (i, (text, payload, key)) in messages.iter().enumerate() {
            bytes.extend(frame(true, if *text { 1 } else { 2 }, payload, *key));
            expected.push(message(payload));
            if i % 2 == 1 {
                let ping = &payload[..payload.len().min(125)];
                bytes.extend(frame(true, 0x9, ping, *key));
                expected.push(WsEvent::Ping(Bytes::copy_from_slice(ping)));
                bytes.extend(frame(true, 0xA, b"", *key));
                expected.push(WsEvent::Pong);
            }
        }
        let mut decoder = WsDecoder::new(1000);
        prop_assert_eq!(feed(&mut decoder, &bytes, &cuts), Ok(expected));
        // Nothing is held between messages (no buffer, no fragment state).
        prop_assert!(decoder.open.is_none());
    }

    /// A message cut into fragments, with pings between them, assembles to the original
    /// after the pings, for any split of the bytes.
    #[test]
    fn fragments_with_interleaved_pings_assemble(
        (text, payload, key) in client_message(),
        pieces in prop::collection::vec(any::<usize>(), 0..6),
        pings in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 0..6),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut bounds: Vec<usize> = pieces.iter().map(|p| p % (payload.len() + 1)).collect();
        bounds.push(0);
        bounds.push(payload.len());
        bounds.sort_unstable();
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        let n = bounds.len() - 1;
        for i in 0..n {
            let opcode = if i > 0 { 0 } else if text { 1 } else { 2 };
            bytes.extend(frame(i + 1 == n, opcode, &payload[bounds[i]..bounds[i + 1]], key));
            if let Some(ping) = pings.get(i).filter(|_| i + 1 < n) {
                bytes.extend(frame(true, 0x9, ping, key));
                expected.push(WsEvent::Ping(Bytes::copy_from_slice(ping)));
            }
        }
        expected.push(message(&payload));
        let mut decoder = WsDecoder::new(payload.len());
        prop_assert_eq!(feed(&mut decoder, &bytes, &cuts), Ok(expected));
        // Nothing is held once the message is whole (no buffer, no fragment state).
        prop_assert!(decoder.open.is_none());
    }

    /// For every prefix of a frame, `wanted` is at least 1, never more than the rest of
    /// the frame, and exactly the rest once the header is in.
    #[test]
    fn wanted_is_a_lower_bound_exact_after_the_header(
        len in prop_oneof![0usize..130, 65530usize..65540, Just(70000usize)],
        form in prop_oneof![Just(Form::Minimal), Just(Form::U16), Just(Form::U64)],
    ) {
        let bytes = raw(0x82, form, Some(KEY), &vec![0; len]);
        let header_len = bytes.len() - len;
        let decoder = WsDecoder::new(len);
        let step = if len > 1000 { 997 } else { 1 };
        let prefixes = (0..header_len).chain((header_len..bytes.len()).step_by(step));
        for n in prefixes {
            let buf = BytesMut::from(&bytes[..n]);
            let wanted = decoder.wanted(&buf);
            prop_assert!(wanted >= 1 && n + wanted <= bytes.len(), "n {} wanted {}", n, wanted);
            if n >= header_len {
                prop_assert_eq!(n + wanted, bytes.len());
            }
        }
        prop_assert_eq!(decoder.wanted(&BytesMut::from(&bytes[..])), 0);
    }

    /// What the encoders write is one whole frame of the right opcode and payload.
    #[test]
    fn encoded_frames_read_back(payload in prop::collection::vec(any::<u8>(), 0..70000)) {
        let mut out = BytesMut::new();
        encode_binary(&payload, &mut out);
        let header = Header::parse(&out).expect("a header");
        prop_assert_eq!(header.b0, 0x82);
        prop_assert!(!header.masked);
        prop_assert_eq!(header.len, payload.len() as u64);
        prop_assert_eq!(&out[header.header_len..], &payload[..]);
        prop_assert!(WsDecoder::has_frame(&out));
    }

    /// The 8-bytes-at-a-time unmasking equals the byte-by-byte definition.
    #[test]
    fn unmask_matches_the_definition(
        data in prop::collection::vec(any::<u8>(), 0..100),
        key in any::<[u8; 4]>(),
    ) {
        let mut fast = data.clone();
        unmask(&mut fast, key);
        let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
        prop_assert_eq!(fast, slow);
    }
}
