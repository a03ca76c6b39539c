//! The WebSocket path: the HTTP handshake reader, then the gate's own frame decoder with an
//! 8192-byte message limit, fed the input as one client's bytes. Never a panic, never a hang.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;

/// `ws_bytes` writes the whole input into a 64 KiB in-memory pipe before anything reads it,
/// so a longer input would block forever (a limit of the harness, not of the gate). Keep
/// `-max_len` below this.
const MAX_INPUT: usize = 60 * 1024;

static RT: OnceLock<Runtime> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let rt = RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    });
    let n = rt.block_on(longlink::gate::fuzzing::ws_bytes(data, 8192));
    // A masked client frame is at least 6 bytes, so there cannot be more messages than that.
    assert!(
        n <= data.len() / 6,
        "{n} messages from {} bytes",
        data.len()
    );
});
