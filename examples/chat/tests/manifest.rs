//! `longlink-chat manifest`: the message manifest for client teams, pinned.
//!
//! The binary's output must equal the committed `tests/manifest.json` byte for byte (after a
//! protocol change, regenerate it with `cargo run -p longlink-chat -- manifest >
//! examples/chat/tests/manifest.json` and review the diff), be the same on every run, and
//! agree with the protocol table of the design notes (ids 0..=11, names, fields, delivery
//! classes), written down here independently.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_longlink-chat");
const PINNED: &str = include_str!("manifest.json");

/// One row of the protocol table: id, name, direction, fields as (name, type) in
/// field-number order.
type Row = (
    u16,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The messages not sent reliably, and their class (issue 24); every other one is
/// `"reliable"`.
const DELIVERY: &[(&str, &str)] = &[("S2C_Typing", "volatile"), ("S2C_RoomInfo", "latest")];

/// The protocol table (shared/protocol/chat.md), then the session-resume protocol's
/// (`crates/longlink-wire/src/resume.md`; package `longlink`).
const TABLE: &[Row] = &[
    (0, "C2S_UserHeartBeat", "incoming", &[("ptime", "int64")]),
    (
        1,
        "C2S_UserLogin",
        "incoming",
        &[("token", "string"), ("login_plat", "int32")],
    ),
    (
        2,
        "S2C_UserLogin",
        "outgoing",
        &[("ret", "int32"), ("msg", "string"), ("uid", "uint64")],
    ),
    (
        3,
        "C2S_UpdateWatchRoom",
        "incoming",
        &[("room_id", "uint64")],
    ),
    (
        4,
        "S2C_UpdateWatchRoom",
        "outgoing",
        &[("room_id", "uint64"), ("online", "uint32")],
    ),
    (
        5,
        "C2S_Message",
        "incoming",
        &[
            ("room_id", "uint64"),
            ("to_uid", "uint64"),
            ("text", "string"),
        ],
    ),
    (
        6,
        "S2C_Message",
        "outgoing",
        &[
            ("room_id", "uint64"),
            ("from_uid", "uint64"),
            ("to_uid", "uint64"),
            ("text", "string"),
            ("ts", "int64"),
        ],
    ),
    (7, "S2C_Kick", "outgoing", &[("reason", "string")]),
    (
        8,
        "S2C_Error",
        "outgoing",
        &[("code", "int32"), ("msg", "string")],
    ),
    (9, "C2S_Typing", "incoming", &[("room_id", "uint64")]),
    (
        10,
        "S2C_Typing",
        "outgoing",
        &[("room_id", "uint64"), ("uid", "uint64")],
    ),
    (
        11,
        "S2C_RoomInfo",
        "outgoing",
        &[("room_id", "uint64"), ("online", "uint32")],
    ),
    (65529, "LL_Move", "outgoing", &[("after_ms", "uint32")]),
    (65530, "LL_SessionStart", "incoming", &[]),
    (
        65531,
        "LL_Session",
        "outgoing",
        &[("token", "string"), ("window_s", "uint32")],
    ),
    (
        65532,
        "LL_Resume",
        "incoming",
        &[("token", "string"), ("last_seq", "uint64")],
    ),
    (
        65533,
        "LL_Resumed",
        "outgoing",
        &[("token", "string"), ("last_seq", "uint64")],
    ),
    (
        65534,
        "LL_ResumeRefused",
        "outgoing",
        &[("reason", "string")],
    ),
    (65535, "LL_Ack", "incoming", &[("seq", "uint64")]),
];

fn manifest_output() -> String {
    let out = Command::new(BIN)
        .arg("manifest")
        .env_remove("RUST_LOG")
        .output()
        .expect("longlink-chat runs");
    assert!(
        out.status.success(),
        "longlink-chat manifest failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn the_manifest_is_the_committed_one_and_stable() {
    let first = manifest_output();
    assert_eq!(
        first, PINNED,
        "`longlink-chat manifest` differs from tests/manifest.json; if the protocol changed on \
         purpose, regenerate it (see this file's header)"
    );
    assert_eq!(manifest_output(), first, "two runs differ");
    assert_eq!(
        longlink_chat::manifest::to_json(&longlink_chat::manifest::chat()),
        first,
        "the library and the binary agree"
    );
}

#[test]
fn the_manifest_matches_the_protocol_table() {
    let doc: Value = serde_json::from_str(&manifest_output()).expect("the manifest is JSON");
    assert_eq!(doc["format"], "longlink-manifest/2");
    let messages = doc["messages"].as_array().expect("a message list");
    assert_eq!(messages.len(), TABLE.len(), "one entry per message");
    for (m, (id, name, direction, fields)) in messages.iter().zip(TABLE) {
        assert_eq!(m["id"], *id, "{m}");
        assert_eq!(m["name"], *name, "{m}");
        assert_eq!(m["direction"], *direction, "{m}");
        let delivery = DELIVERY
            .iter()
            .find(|(n, _)| n == name)
            .map_or("reliable", |(_, d)| d);
        assert_eq!(m["delivery"], delivery, "{m}");
        let package = if name.starts_with("LL_") {
            "longlink"
        } else {
            "chat"
        };
        assert_eq!(m["proto"], format!("{package}.{name}"), "{m}");
        let got = m["fields"].as_array().expect("fields");
        assert_eq!(got.len(), fields.len(), "{name}: {got:?}");
        for (i, (f, (fname, ftype))) in got.iter().zip(fields.iter()).enumerate() {
            assert_eq!(f["name"], *fname, "{name}");
            assert_eq!(f["type"], *ftype, "{name}.{fname}");
            assert_eq!(
                f["number"],
                i + 1,
                "{name}.{fname}: numbers follow the table's order"
            );
            assert_eq!(f["repeated"], false, "{name}.{fname}");
        }
    }
}
