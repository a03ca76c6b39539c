//! Regressions found by the fuzz targets in `fuzz/` (see `fuzz/README.md`).
//!
//! A test marked `#[ignore = "BUG: ..."]` reproduces a bug that is not fixed yet: run it with
//! `cargo test -p longlink --test fuzz_regressions -- --ignored`, and drop the `ignore` with
//! the fix.

use bytes::BytesMut;
use longlink::wire::LenCodec;

/// What a partial frame may make the decoder reserve before its payload arrives (it reserves
/// at most 64 KiB at a time; 1 MiB leaves room for any reasonable step).
const RESERVE_BOUND: usize = 1 << 20;

/// Found by `fuzz/fuzz_targets/framing.rs` (libFuzzer: `out-of-memory (malloc(2054847102))`).
///
/// Fuzz input (base64 `enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6
/// enp6enp6enp6enp6enp6enp6enp6enp6el2CCQEAAAAAAAAAAAAAZTIJMg==`): `LenCodec::new(4, false,
/// 0x7a7a7a7a)` fed a stream starting with the length field `7a 7a 7a 7a` (2_054_847_098 bytes,
/// within the limit). A decoder that called `src.reserve(h + len - src.len())` here would
/// allocate the whole announced payload, 2 GiB, on four bytes from the peer. The TCP gate's
/// reader calls `decode` on every read, so with `len_msg_len = 4` and a large `max_msg_len`
/// (the config accepts up to `u32::MAX`) each connection could make the server allocate up
/// to 4 GiB with a 4-byte packet, and a failed allocation aborts the whole process.
/// `LenCodec::decode` (`crates/longlink-wire/src/frame.rs`) caps each reservation at 64 KiB.
#[test]
fn a_length_field_alone_does_not_reserve_the_announced_payload() {
    let codec = LenCodec::new(4, false, 0x7a7a_7a7a).unwrap();
    let mut src = BytesMut::from(&[0x7a, 0x7a, 0x7a, 0x7a, b'z'][..]);
    assert!(
        matches!(codec.decode(&mut src), Ok(None)),
        "the frame is incomplete"
    );
    assert!(
        src.capacity() <= RESERVE_BOUND,
        "decode reserved {} bytes for a frame of which 1 payload byte has arrived",
        src.capacity()
    );
    // The frame still decodes once the rest arrives (checked on a smaller frame).
    let codec = LenCodec::new(4, false, 0x7a7a_7a7a).unwrap();
    let len = 3 * RESERVE_BOUND;
    let mut wire = BytesMut::new();
    codec.encode(&vec![b'z'; len], &mut wire).unwrap();
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in wire.chunks(64 * 1024) {
        src.extend_from_slice(chunk);
        while let Some(frame) = codec.decode(&mut src).unwrap() {
            frames.push(frame);
        }
        // The buffer grows with what arrives (BytesMut doubles when it reallocates), never
        // with what the length field announces.
        assert!(
            frames.len() == 1 || src.capacity() <= 2 * src.len() + RESERVE_BOUND,
            "decode reserved {} bytes ahead of the {} that arrived",
            src.capacity() - src.len(),
            src.len()
        );
    }
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].len(), len);
}
