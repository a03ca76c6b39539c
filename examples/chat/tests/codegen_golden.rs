//! The server's own encodings (prost and serde through longlink's processor) of every chat
//! message and of `proto/kinds.proto`'s messages (every kind of field: scalars, nested
//! messages, repeated fields, enums, maps, `oneof`, proto3 `optional`), pinned in
//! `clients/typescript/test/golden/kinds.json` with their manifest. The TypeScript client's
//! tests (`clients/typescript/test/codegen.test.mjs`) generate code from that manifest and
//! check it against these bytes, both ways.
//!
//! After a change on purpose, regenerate it with
//! `LONGLINK_BLESS=1 cargo test -p longlink-chat --test codegen_golden` and review the diff.

#![allow(missing_docs)]

use std::collections::BTreeMap;

use longlink::processor::MessageOptions;
use longlink::wire::manifest::FileDescriptorSet;
use longlink::{Encoding, Processor};
use longlink_chat::msg::*;
use prost::Message as _;
use serde_json::{Value, json};

mod kinds {
    #![allow(missing_docs, unreachable_pub, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/kinds.rs"));
}

use kinds::{Color, Everything, Point, everything::Choice, point::Label};

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../clients/typescript/test/golden/kinds.json"
);

/// The chat's messages, then two of the kinds (ids 100 and 102), then the `LL_` ones.
fn processor(encoding: Encoding) -> Processor {
    let mut p = Processor::new(encoding);
    register_all(&mut p).unwrap();
    p.register_with::<Point>(MessageOptions::new().name("Point").id(100))
        .unwrap();
    p.register_with::<Everything>(MessageOptions::new().name("Everything").id(102))
        .unwrap();
    p.register_resume().unwrap();
    p
}

fn descriptors() -> FileDescriptorSet {
    let kinds = include_bytes!(concat!(env!("OUT_DIR"), "/kinds.fds"));
    let mut set = longlink_chat::manifest::chat_descriptors();
    set.file
        .extend(FileDescriptorSet::decode(&kinds[..]).unwrap().file);
    set
}

fn point(x: i32, y: i32) -> Point {
    Point {
        x,
        y,
        label: Some(Label {
            text: format!("p{x}"),
            color: Color::Blue as i32,
        }),
    }
}

fn everything() -> Everything {
    Everything {
        i32: -7,
        i64: -9_007_199_254_740_993, // beyond 2^53: exact only as a bigint
        u32: 4_000_000_000,
        u64: 18_446_744_073_709_551_615,
        s32: -3,
        s64: -1_234_567_890_123,
        f32: 4_294_967_295,
        f64: 9_007_199_254_740_993,
        sf32: -2,
        sf64: -5_000_000_000,
        fl: 1.5,
        db: -2.25,
        flag: true,
        text: "héllo ✓".into(),
        data: vec![0, 1, 254, 255],
        color: Color::Red as i32,
        point: Some(point(1, -1)),
        many: vec![1, -1, 300, 9_007_199_254_740_993],
        words: vec!["a".into(), String::new(), "c".into()],
        points: vec![point(2, 3), Point::default()],
        colors: vec![Color::Blue as i32, Color::None as i32],
        scores: BTreeMap::from([("ann".into(), 3), ("bob".into(), 0)]),
        by_id: BTreeMap::from([
            (1, point(4, 5)),
            (18_446_744_073_709_551_615, Point::default()),
        ]),
        choice: Some(Choice::Where(point(6, 7))),
        maybe: Some(0),
        label: Some(Label {
            text: "top".into(),
            color: Color::None as i32,
        }),
    }
}

/// One sample: a message name and its payloads in both encodings (protobuf as hex).
fn sample<T: 'static>(name: &str, value: &T) -> Value {
    let payload = |encoding| {
        processor(encoding)
            .encode(value)
            .unwrap()
            .as_bytes()
            .to_vec()
    };
    let json = String::from_utf8(payload(Encoding::Json)).unwrap();
    let protobuf: String = payload(Encoding::Protobuf)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({ "name": name, "json": json, "protobuf": protobuf })
}

fn golden() -> String {
    let manifest = processor(Encoding::Json).manifest(&descriptors());
    let samples = vec![
        sample(
            "C2S_UserHeartBeat",
            &C2sUserHeartBeat {
                ptime: 1_700_000_000,
            },
        ),
        sample(
            "C2S_UserLogin",
            &C2sUserLogin {
                token: "a.b.c".into(),
                login_plat: 2,
            },
        ),
        sample(
            "S2C_UserLogin",
            &S2cUserLogin {
                ret: 1,
                msg: "ok".into(),
                uid: 9_007_199_254_740_993,
            },
        ),
        sample("C2S_UpdateWatchRoom", &C2sUpdateWatchRoom { room_id: 7 }),
        sample(
            "S2C_UpdateWatchRoom",
            &S2cUpdateWatchRoom {
                room_id: 7,
                online: 3,
            },
        ),
        sample(
            "C2S_Message",
            &C2sMessage {
                room_id: 7,
                to_uid: 0,
                text: "hi".into(),
            },
        ),
        sample(
            "S2C_Message",
            &S2cMessage {
                room_id: 0,
                from_uid: 1,
                to_uid: 2,
                text: "psst".into(),
                ts: -1,
            },
        ),
        sample(
            "S2C_Kick",
            &S2cKick {
                reason: "bye".into(),
            },
        ),
        sample(
            "S2C_Error",
            &S2cError {
                code: 4,
                msg: "no".into(),
            },
        ),
        sample("C2S_Typing", &C2sTyping { room_id: 7 }),
        sample(
            "S2C_Typing",
            &S2cTyping {
                room_id: 7,
                uid: 9_007_199_254_740_993,
            },
        ),
        sample(
            "S2C_RoomInfo",
            &S2cRoomInfo {
                room_id: 7,
                online: 1_000,
            },
        ),
        sample("Point", &point(-8, 9)),
        sample("Everything", &everything()),
        sample("Everything", &Everything::default()),
        sample(
            "Everything",
            &Everything {
                choice: Some(Choice::Name(String::new())),
                ..Everything::default()
            },
        ),
        sample(
            "Everything",
            &Everything {
                choice: Some(Choice::Number(5)),
                maybe: Some(-1),
                ..Everything::default()
            },
        ),
    ];
    let doc = json!({ "manifest": manifest, "samples": samples });
    let mut out = serde_json::to_string_pretty(&doc).unwrap();
    out.push('\n');
    out
}

#[test]
fn the_golden_file_is_the_servers_encoding() {
    let now = golden();
    if std::env::var_os("LONGLINK_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(GOLDEN).parent().unwrap()).unwrap();
        std::fs::write(GOLDEN, &now).unwrap();
    }
    let pinned = std::fs::read_to_string(GOLDEN).unwrap_or_default();
    assert!(
        pinned == now,
        "{GOLDEN} differs from the server's encoding; if that is on purpose, regenerate it \
         (see this file's header)"
    );
}

#[test]
fn the_manifest_describes_every_kind_of_field() {
    let manifest = processor(Encoding::Json).manifest(&descriptors());
    let everything = manifest
        .messages
        .iter()
        .find(|m| m.name == "Everything")
        .unwrap();
    let field = |name: &str| everything.fields.iter().find(|f| f.name == name).unwrap();
    assert_eq!(field("color").kind, "enum");
    assert_eq!(field("color").type_name.as_deref(), Some(".kinds.Color"));
    assert_eq!(field("points").kind, "message");
    assert!(field("points").repeated);
    let by_id = field("by_id");
    assert_eq!(
        (by_id.kind.as_str(), by_id.repeated),
        ("map", false),
        "{by_id:?}"
    );
    assert_eq!(by_id.key_type.as_deref(), Some("uint64"));
    assert_eq!(by_id.value_type.as_deref(), Some("message"));
    assert_eq!(by_id.type_name.as_deref(), Some(".kinds.Point"));
    assert_eq!(field("where").oneof.as_deref(), Some("choice"));
    assert!(field("maybe").optional && field("maybe").oneof.is_none());
    assert_eq!(
        field("label").type_name.as_deref(),
        Some(".kinds.Point.Label")
    );
    let types: Vec<&str> = manifest.types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        types,
        [".kinds.Color", ".kinds.Point", ".kinds.Point.Label"]
    );
    let color = &manifest.types[0];
    assert_eq!(color.kind, "enum");
    assert_eq!(color.values[2].name, "COLOR_BLUE");
    assert_eq!(color.values[2].number, 2);
}
