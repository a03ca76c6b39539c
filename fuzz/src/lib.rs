//! Message types, processors and oracles shared by the `json` and `protobuf` fuzz targets and
//! by the seed generator (`examples/gen_seeds.rs`).
//!
//! The types are chat-like and cover what both decoders have to handle: scalars of every
//! width and signedness, strings, bytes, a nested message, repeated scalars (packed in
//! protobuf) and messages, a map, an enumeration, and a recursive message (depth limits).

use std::collections::{BTreeMap, HashMap};

use longlink::processor::MessageInfo;
use longlink::{Encoding, Processor};
use longlink::processor::MessageOptions;

/// A user as it appears inside other messages.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
#[serde(default)]
pub struct Member {
    /// User id.
    #[prost(uint64, tag = "1")]
    pub uid: u64,
    /// Display name.
    #[prost(string, tag = "2")]
    pub nick: String,
}

/// What a chat message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Kind {
    /// Plain text.
    Text = 0,
    /// A picture (see `attachment`).
    Image = 1,
    /// A system notice.
    System = 2,
}

/// A chat message: the richest type, with every kind of field.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
#[serde(default)]
pub struct Chat {
    /// Room.
    #[prost(uint64, tag = "1")]
    pub room_id: u64,
    /// Text.
    #[prost(string, tag = "2")]
    pub text: String,
    /// Client timestamp.
    #[prost(int64, tag = "3")]
    pub ts: i64,
    /// Sender (nested message).
    #[prost(message, optional, tag = "4")]
    pub from: Option<Member>,
    /// Mentions (repeated message).
    #[prost(message, repeated, tag = "5")]
    pub mentions: Vec<Member>,
    /// Flags (repeated scalar, packed).
    #[prost(uint32, repeated, tag = "6")]
    pub flags: Vec<u32>,
    /// Raw bytes.
    #[prost(bytes = "vec", tag = "7")]
    pub attachment: Vec<u8>,
    /// Map field.
    #[prost(btree_map = "string, int64", tag = "8")]
    pub scores: BTreeMap<String, i64>,
    /// Enumeration.
    #[prost(enumeration = "Kind", tag = "9")]
    pub kind: i32,
    /// Zig-zag scalar.
    #[prost(sint32, tag = "10")]
    pub delta: i32,
    /// Bool.
    #[prost(bool, tag = "11")]
    pub urgent: bool,
    /// Fixed-width scalar.
    #[prost(fixed64, tag = "12")]
    pub seq: u64,
}

/// A recursive message, to reach the decoders' depth limits.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
#[serde(default)]
pub struct Tree {
    /// Label.
    #[prost(string, tag = "1")]
    pub label: String,
    /// Children.
    #[prost(message, repeated, tag = "2")]
    pub children: Vec<Tree>,
}

/// leaf's login message, registered with an explicit name and protobuf id.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
#[serde(default)]
pub struct Login {
    /// Token.
    #[prost(string, tag = "1")]
    pub token: String,
    /// Platform.
    #[prost(int32, tag = "2")]
    pub login_plat: i32,
}

/// An empty message.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
pub struct Heartbeat {}

/// Server-to-client only: a client sending it is an error.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
#[serde(default)]
pub struct Notice {
    /// Text.
    #[prost(string, tag = "1")]
    pub text: String,
}

/// Handled raw: its body is never decoded.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
#[serde(default)]
pub struct Blob {
    /// Data.
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}

/// The protobuf id pinned for [`Login`].
pub const LOGIN_ID: u16 = 100;
/// The JSON name given to [`Login`].
pub const LOGIN_NAME: &str = "C2S_UserLogin";

/// A processor with every type above registered, a handler on each incoming type and a raw
/// handler on [`Blob`]. Ids in registration order: Heartbeat 0, Chat 1, Tree 2, Login 100,
/// Notice 4 (outgoing), Blob 5 (raw).
pub fn processor(encoding: Encoding) -> Processor {
    let mut p = Processor::new(encoding);
    p.register::<Heartbeat>().unwrap();
    p.register::<Chat>().unwrap();
    p.register::<Tree>().unwrap();
    p.register_with::<Login>(MessageOptions::new().name(LOGIN_NAME).id(LOGIN_ID))
        .unwrap();
    p.register_outgoing::<Notice>().unwrap();
    p.register::<Blob>().unwrap();
    p.handle::<Heartbeat, _>(|_, _| {}).unwrap();
    p.handle::<Chat, _>(|_, _| {}).unwrap();
    p.handle::<Tree, _>(|_, _| {}).unwrap();
    p.handle::<Login, _>(|_, _| {}).unwrap();
    p.handle_raw::<Blob, _>(|_, _| {}).unwrap();
    p.validate().unwrap();
    p
}

/// Sample messages, used as seeds.
pub fn samples() -> (Vec<Chat>, Tree, Login) {
    let alice = Member {
        uid: 1,
        nick: "alice".into(),
    };
    let bob = Member {
        uid: u64::MAX,
        nick: "bob \u{1F600} \"quoted\"\n".into(),
    };
    let chats = vec![
        Chat {
            room_id: 7,
            text: "hello".into(),
            ts: 1_700_000_000_000,
            ..Chat::default()
        },
        Chat {
            room_id: 42,
            text: "hi @bob, see attached".into(),
            ts: -1,
            from: Some(alice.clone()),
            mentions: vec![bob.clone(), alice],
            flags: vec![0, 1, 300, u32::MAX],
            attachment: vec![0, 1, 2, 0xff],
            scores: BTreeMap::from([("alice".into(), 10), ("bob".into(), i64::MIN)]),
            kind: Kind::Image as i32,
            delta: -5,
            urgent: true,
            seq: 0x0102_0304_0506_0708,
        },
    ];
    let tree = Tree {
        label: "root".into(),
        children: vec![
            Tree {
                label: "a".into(),
                children: vec![Tree {
                    label: "a1".into(),
                    children: vec![],
                }],
            },
            Tree {
                label: "b".into(),
                children: vec![],
            },
        ],
    };
    let login = Login {
        token: "eyJhbGciOi.token".into(),
        login_plat: 1,
    };
    (chats, tree, login)
}

/// Seed payloads for `encoding`: every sample message encoded by the processor, plus a raw
/// [`Blob`].
pub fn seed_payloads(encoding: Encoding) -> Vec<(String, Vec<u8>)> {
    let p = processor(encoding);
    let (chats, tree, login) = samples();
    let mut out = Vec::new();
    for (i, c) in chats.iter().enumerate() {
        out.push((format!("chat{i}"), p.encode(c).unwrap().as_bytes().to_vec()));
    }
    out.push(("tree".into(), p.encode(&tree).unwrap().as_bytes().to_vec()));
    out.push((
        "login".into(),
        p.encode(&login).unwrap().as_bytes().to_vec(),
    ));
    out.push((
        "heartbeat".into(),
        p.encode(&Heartbeat {}).unwrap().as_bytes().to_vec(),
    ));
    out.push((
        "blob".into(),
        p.encode(&Blob {
            data: b"raw".to_vec(),
        })
        .unwrap()
        .as_bytes()
        .to_vec(),
    ));
    out
}

/// The oracle shared by the `json` and `protobuf` targets.
///
/// `inspect` must never panic. When it accepts a payload, the message must be a registered
/// incoming one, and (except for the raw-handled [`Blob`]) decoding the same bytes with the
/// message's own codec must succeed, and re-encoding the result with the processor must give
/// a payload that is accepted as the same message and decodes to an equal value.
pub fn check(p: &Processor, data: &[u8]) {
    let Ok(info) = p.inspect(data) else {
        return;
    };
    let info = info.clone();
    assert_ne!(info.name, "Notice", "an outgoing-only message was accepted");
    match info.name.as_str() {
        "Heartbeat" => round_trip::<Heartbeat>(p, &info, data),
        "Chat" => round_trip::<Chat>(p, &info, data),
        "Tree" => round_trip::<Tree>(p, &info, data),
        LOGIN_NAME => round_trip::<Login>(p, &info, data),
        "Blob" => {}
        other => panic!("inspect returned an unregistered message {other:?}"),
    }
}

fn round_trip<T>(p: &Processor, info: &MessageInfo, data: &[u8])
where
    T: serde::Serialize
        + serde::de::DeserializeOwned
        + prost::Message
        + Default
        + PartialEq
        + 'static,
{
    let msg = decode_as::<T>(p.encoding(), data);
    let again = p.encode(&msg).expect("a decoded message must encode");
    let info2 = p
        .inspect(again.as_bytes())
        .unwrap_or_else(|e| panic!("re-encoded {} is refused: {e}", info.name));
    assert_eq!(info2, info, "re-encoded message inspects as another");
    let msg2 = decode_as::<T>(p.encoding(), again.as_bytes());
    assert!(msg == msg2, "{} changed in a round trip", info.name);
}

/// Decodes a payload that the processor accepted as a `T`, independently of the processor.
fn decode_as<T>(encoding: Encoding, data: &[u8]) -> T
where
    T: serde::de::DeserializeOwned + prost::Message + Default,
{
    match encoding {
        Encoding::Json => {
            // Like the processor: one distinct key, a repeated key keeps the last value.
            let env: HashMap<String, Box<serde_json::value::RawValue>> =
                serde_json::from_slice(data).expect("an accepted payload is a json object");
            assert_eq!(env.len(), 1, "an accepted payload has one distinct key");
            let body = env.into_values().next().unwrap();
            serde_json::from_str(body.get()).expect("an accepted body decodes")
        }
        Encoding::Protobuf => T::decode(&data[2..]).expect("an accepted body decodes"),
    }
}
