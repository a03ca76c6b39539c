//! `Processor::inspect` on a protobuf processor (`| id: u16 BE | body |`): any bytes, never a
//! panic; an accepted payload round-trips (see `longlink_fuzz::check`).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use longlink::{Encoding, Processor};

static PROCESSOR: OnceLock<Processor> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let p = PROCESSOR.get_or_init(|| longlink_fuzz::processor(Encoding::Protobuf));
    longlink_fuzz::check(p, data);
});
