//! The PROXY protocol header reader (`[gate] proxy_protocol`) on arbitrary bytes.
//!
//! Properties: no panic; a header found is no longer than the input nor 1024 bytes; it is
//! found the same in any longer input (the bytes after it do not change it); and every
//! shorter prefix of it is "not whole yet", never a refusal, so where a stream is cut does
//! not matter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use longlink::gate::fuzzing::proxy_header;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((len, source))) = proxy_header(data) else {
        return;
    };
    assert!(len <= data.len() && len <= 1024, "{len} of {}", data.len());
    assert_eq!(proxy_header(&data[..len]), Ok(Some((len, source))));
    for cut in 0..len {
        assert_eq!(proxy_header(&data[..cut]), Ok(None), "cut at {cut} of {len}");
    }
});
