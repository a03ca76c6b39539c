//! The WebSocket reader against tungstenite's: a frame sequence made from the input
//! (`longlink_testkit::wsdiff::generate`: text, binary, continuation, ping, pong and close
//! frames, reserved bits and opcodes, unmasked frames, long length forms, a truncated last
//! frame; delivered in reads of 1 to 16 bytes or whole) goes to the gate's WebSocket codec
//! (`gate::fuzzing::ws_frames`) and to tungstenite's server-side `WebSocket`, both with a
//! 1024-byte message limit. They must agree on every message, every pong and the close code,
//! or differ only as `wsdiff::Exception` allows; and the reads must not change what the
//! gate's codec does. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use longlink::gate::fuzzing::ws_frames;
use longlink_testkit::wsdiff::{self, FUZZ_MAX_MSG_LEN, Observed};

fuzz_target!(|data: &[u8]| {
    let (input, read_size) = wsdiff::generate(data);
    let reference = wsdiff::reference(&input, FUZZ_MAX_MSG_LEN, read_size);
    let got = ws_frames(&input, FUZZ_MAX_MSG_LEN, read_size);
    let observed = Observed {
        messages: got.messages.clone(),
        pongs: got.pongs.clone(),
        close: Some(got.close),
    };
    if let Err(e) = wsdiff::compare(&reference, &observed, false, || wsdiff::unlimited(&input, read_size)) {
        panic!("{e}\nreads of {read_size}, input {input:02x?}");
    }
    assert_eq!(
        ws_frames(&input, FUZZ_MAX_MSG_LEN, usize::MAX),
        got,
        "whole and in reads of {read_size}"
    );
});
