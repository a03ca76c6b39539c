//! `LenCodec` decoding of an arbitrary byte stream that arrives in arbitrary pieces.
//!
//! Input layout:
//!
//! | byte | meaning |
//! | --- | --- |
//! | 0 | `cfg`: `cfg % 3` picks the length field (1, 2 or 4 bytes), bit 7 little-endian |
//! | 1..5 | `max_msg_len`, u32 little-endian (0 means leaf's default 4096) |
//! | 5 | `k = byte & 15`: how many cut points follow |
//! | 6..6+2k | the cut points, u16 little-endian each, taken modulo the stream length + 1 |
//! | rest | the stream |
//!
//! Properties: no panic; every frame is 1..=max bytes; the buffer grows with the bytes that
//! arrived, not with the lengths announced; `is_complete` agrees with `decode`;
//! the frames and the error do not depend on where the stream was cut; re-encoding the
//! frames gives back exactly the bytes they were decoded from (the header is fixed-width), and
//! those decode to the same frames with nothing left over.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use longlink::wire::LenCodec;

/// How far the buffer may grow beyond what has arrived, as a multiple of the stream length
/// plus a fixed step. `LenCodec::decode` reserves at most 64 KiB at a time, never the whole
/// payload a length field announces (up to 4 GiB on 4 bytes: `out-of-memory
/// (malloc(2054847102))`, see `crates/longlink/tests/fuzz_regressions.rs`), and the buffer
/// grows with what arrives (doubling when it reallocates).
const GROWTH_FACTOR: usize = 4;
const GROWTH_STEP: usize = 64 * 1024;

/// What decoding a stream gave: the frames, then an error or the bytes left over (what is
/// left after an error depends on how much had arrived, so it is not kept).
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Bytes>,
    /// The error's text (`CodecError` holds an `io::Error` variant, so it is not `PartialEq`).
    error: Option<String>,
    rest: Option<Bytes>,
}

/// Feeds `stream` cut at `points` (sorted, within bounds) the way the TCP reader does: append
/// what arrived, decode until `None` or an error (which closes the connection).
fn run(codec: &LenCodec, stream: &[u8], points: &[usize]) -> Outcome {
    let max = codec.max_msg_len();
    let bound = GROWTH_FACTOR * (stream.len() + GROWTH_STEP);
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    for w in points.windows(2) {
        src.extend_from_slice(&stream[w[0]..w[1]]);
        loop {
            let complete = codec.is_complete(&src);
            match codec.decode(&mut src) {
                Ok(Some(frame)) => {
                    assert!(complete, "decode gave a frame that is_complete denied");
                    assert!(
                        (1..=max).contains(&frame.len()),
                        "frame of {} bytes, max {max}",
                        frame.len()
                    );
                    frames.push(frame);
                }
                Ok(None) => {
                    assert!(
                        !complete,
                        "is_complete promised a frame that decode did not give"
                    );
                    assert!(
                        src.capacity() <= bound,
                        "{} bytes reserved for a stream of {}",
                        src.capacity(),
                        stream.len()
                    );
                    break;
                }
                Err(error) => {
                    assert!(complete, "is_complete must be true for an error");
                    return Outcome {
                        frames,
                        error: Some(error.to_string()),
                        rest: None,
                    };
                }
            }
        }
    }
    Outcome {
        frames,
        error: None,
        rest: Some(src.freeze()),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let cfg = data[0];
    let len_msg_len = [1usize, 2, 4][usize::from(cfg % 3)];
    let little_endian = cfg & 0x80 != 0;
    let max_msg_len = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
    let k = usize::from(data[5] & 15);
    let (cuts, stream) = data[6..].split_at((2 * k).min(data.len() - 6));

    let field_max: u32 = match len_msg_len {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    };
    // The limit is clamped to the field (0 means 4096).
    let codec = LenCodec::new(len_msg_len, little_endian, max_msg_len).unwrap();
    let expected = if max_msg_len == 0 { 4096 } else { max_msg_len }.min(field_max);
    assert_eq!(codec.max_msg_len(), expected as usize);
    assert_eq!(codec.header_len(), len_msg_len);
    assert_eq!(codec.little_endian(), little_endian);

    let mut points: Vec<usize> = cuts
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (stream.len() + 1))
        .collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();

    let cut = run(&codec, stream, &points);
    let whole = run(&codec, stream, &[0, stream.len()]);
    assert_eq!(
        cut, whole,
        "the outcome depends on where the stream was cut"
    );

    // Round trip: the frames re-encode to exactly the bytes they came from.
    let mut wire = BytesMut::new();
    for f in &cut.frames {
        codec
            .encode(f, &mut wire)
            .expect("a decoded frame re-encodes");
    }
    let consumed = wire.len();
    assert_eq!(&wire[..], &stream[..consumed], "re-encoding differs");
    if let Some(rest) = &cut.rest {
        assert_eq!(&rest[..], &stream[consumed..], "bytes lost or invented");
    }
    let again = run(&codec, &wire, &[0, wire.len()]);
    assert_eq!(
        again.frames, cut.frames,
        "re-encoded frames decode differently"
    );
    assert_eq!(again.error, None);
    assert_eq!(
        again.rest.as_deref(),
        Some(&[][..]),
        "re-encoded frames leave bytes"
    );
});
