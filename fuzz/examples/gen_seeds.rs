//! Writes the seed corpora under `fuzz/seeds/<target>/`.
//!
//! ```sh
//! cd fuzz && cargo run --example gen_seeds
//! ```
//!
//! The seeds are checked in; rerun this after changing the message types in `src/lib.rs` or
//! the input layout of a target.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use longlink::Encoding;
use longlink::wire::LenCodec;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

/// A framing input: header (see `fuzz_targets/framing.rs`), cut points, then the frames.
fn framing_input(cfg: u8, max: u32, cuts: &[u16], payloads: &[&[u8]]) -> Vec<u8> {
    let codec = LenCodec::new([1, 2, 4][usize::from(cfg % 3)], cfg & 0x80 != 0, max).unwrap();
    let mut out = vec![cfg];
    out.extend_from_slice(&max.to_le_bytes());
    out.push(cuts.len() as u8);
    for c in cuts {
        out.extend_from_slice(&c.to_le_bytes());
    }
    let mut wire = BytesMut::new();
    for p in payloads {
        codec.encode(p, &mut wire).unwrap();
    }
    out.extend_from_slice(&wire);
    out
}

const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\n\
Host: 127.0.0.1:3653\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// One masked client frame (RFC 6455 section 5.2).
fn ws_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let json = longlink_fuzz::seed_payloads(Encoding::Json);
    let protobuf = longlink_fuzz::seed_payloads(Encoding::Protobuf);

    for (name, payload) in &json {
        write(&root.join("json"), &format!("{name}.json"), payload);
    }
    for (name, payload) in &protobuf {
        write(&root.join("protobuf"), &format!("{name}.bin"), payload);
    }

    let framing = root.join("framing");
    let j: Vec<&[u8]> = json.iter().map(|(_, p)| &p[..]).collect();
    let pb: Vec<&[u8]> = protobuf.iter().map(|(_, p)| &p[..]).collect();
    // 2-byte big-endian, 8192 (the gate's default), cut inside a header and inside a payload.
    write(&framing, "be16_json", &framing_input(1, 8192, &[1, 9], &j));
    // 4-byte little-endian, leaf's default 4096 via 0, no cuts.
    write(&framing, "le32_protobuf", &framing_input(0x82, 0, &[], &pb));
    // 1-byte length, cut everywhere.
    write(
        &framing,
        "u8_many_cuts",
        &framing_input(
            0,
            255,
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &[b"a", b"bc", b"def", &[0; 255]],
        ),
    );
    // A frame over the limit after a good one.
    let mut over = framing_input(1, 16, &[3], &[b"ok"]);
    over.extend_from_slice(&[0x00, 0x11]);
    over.extend_from_slice(&[b'x'; 17]);
    write(&framing, "be16_too_long", &over);
    // A zero-length frame.
    let mut zero = framing_input(0x81, 100, &[], &[b"ok"]);
    zero.extend_from_slice(&[0x00, 0x00, 0x41]);
    write(&framing, "le16_zero", &zero);

    let ws = root.join("websocket");
    let chat = &json[0].1;
    let mut one = UPGRADE.to_vec();
    one.extend(ws_frame(true, 0x2, chat));
    write(&ws, "upgrade_binary", &one);

    let mut mixed = UPGRADE.to_vec();
    mixed.extend(ws_frame(true, 0x1, br#"{"Heartbeat":{}}"#));
    mixed.extend(ws_frame(true, 0x9, b"ping"));
    mixed.extend(ws_frame(false, 0x2, &protobuf[1].1[..3]));
    mixed.extend(ws_frame(true, 0x0, &protobuf[1].1[3..]));
    mixed.extend(ws_frame(true, 0x2, &[0x5a; 300]));
    mixed.extend(ws_frame(true, 0x8, &[0x03, 0xe8]));
    write(&ws, "upgrade_mixed_close", &mixed);

    let mut too_big = UPGRADE.to_vec();
    too_big.extend(ws_frame(true, 0x2, &[1; 9000]));
    write(&ws, "upgrade_too_big", &too_big);

    write(
        &ws,
        "post_refused",
        b"POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );

    let diff = root.join("ws_differential");
    for (name, input) in longlink_testkit::wsdiff::seed_inputs() {
        write(&diff, name, &input);
    }

    println!("seeds written under {}", root.display());
}
