//! The registry: names and ids, every registration error, one-codec types, lookups; and (in
//! `payload`) what it does to payloads.

use super::*;
use crate::Encoding;

mod payload;

#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
struct StringValue {
    #[prost(string, tag = "1")]
    value: String,
}

#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
struct Int32Value {
    #[prost(int32, tag = "1")]
    value: i32,
}

#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
struct Chat {
    #[prost(uint64, tag = "1")]
    room_id: u64,
    #[prost(string, tag = "2")]
    text: String,
    #[prost(int64, tag = "3")]
    ts: i64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct OnlyJson {
    a: u8,
}

#[derive(Clone, PartialEq, prost::Message)]
struct OnlyProto {
    #[prost(int32, tag = "1")]
    b: i32,
}

fn both() -> Registry {
    let mut r = Registry::new();
    r.register::<StringValue>(MessageOptions::new()).unwrap();
    r.register::<Int32Value>(MessageOptions::new()).unwrap();
    r.register::<Chat>(MessageOptions::new()).unwrap();
    r
}

fn encode<T: 'static>(r: &Registry, msg: &T, encoding: Encoding, le: bool) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(msg, encoding, le, &mut out).unwrap();
    out
}

fn typed<T: 'static + Clone>(
    r: &Registry,
    bytes: &[u8],
    encoding: Encoding,
) -> Result<T, DecodeError> {
    let (_, value) = r.decode(bytes, encoding, false)?;
    Ok(value.downcast_ref::<T>().unwrap().clone())
}

#[test]
fn explicit_names_and_ids() {
    let mut r = Registry::new();
    r.register::<StringValue>(MessageOptions::new().name("S").id(100))
        .unwrap();
    let info = r.register::<Int32Value>(MessageOptions::new()).unwrap();
    assert_eq!((info.name.as_str(), info.id), ("Int32Value", 1));
    let empty = StringValue {
        value: String::new(),
    };
    assert_eq!(encode(&r, &empty, Encoding::Protobuf, false), [0x00, 100]);
    assert_eq!(
        encode(&r, &empty, Encoding::Json, false),
        br#"{"S":{"value":""}}"#
    );
    assert_eq!(
        r.register::<Chat>(MessageOptions::new().id(100)),
        Err(RegistryError::DuplicateId {
            id: 100,
            taken_by: "S".into(),
            name: "Chat".into()
        })
    );
    assert_eq!(
        r.register::<Chat>(MessageOptions::new().name("S")),
        Err(RegistryError::DuplicateName("S".into()))
    );
    assert_eq!(
        r.register::<Int32Value>(MessageOptions::new()).unwrap_err(),
        RegistryError::DuplicateType(type_name::<Int32Value>())
    );
    // A refused registration leaves nothing behind.
    assert_eq!(r.len(), 2);
    assert_eq!(r.index_of::<Chat>(), None);
    assert_eq!(r.register::<Chat>(MessageOptions::new()).unwrap().id, 2);
}

#[test]
fn errors_are_checked_type_then_name_then_id() {
    let mut r = Registry::new();
    r.register::<StringValue>(MessageOptions::new()).unwrap(); // name StringValue, id 0
    // Everything wrong at once: the type wins.
    assert!(matches!(
        r.register::<StringValue>(MessageOptions::new().name("StringValue").id(0)),
        Err(RegistryError::DuplicateType(_))
    ));
    // Name and id both taken: the name.
    assert!(matches!(
        r.register::<Chat>(MessageOptions::new().name("StringValue").id(0)),
        Err(RegistryError::DuplicateName(_))
    ));
    // Every u16 may be pinned, the highest too (the resume protocol's LL_Ack).
    assert_eq!(
        r.register::<Chat>(MessageOptions::new().id(u16::MAX))
            .unwrap()
            .id,
        u16::MAX
    );
}

#[test]
fn names_are_bare_type_names() {
    mod inner {
        #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
        pub(super) struct Nested {}
        #[derive(serde::Serialize, serde::Deserialize)]
        pub(super) struct Generic<T>(pub(super) T);
    }
    let mut r = Registry::new();
    assert_eq!(
        r.register::<inner::Nested>(MessageOptions::new())
            .unwrap()
            .name,
        "Nested"
    );
    let info = r
        .register_json::<inner::Generic<Vec<u8>>>(MessageOptions::new())
        .unwrap();
    assert_eq!(info.name, "Generic");
    assert!(info.type_name.contains("Generic<"));
}

#[test]
fn the_direction_is_the_servers_check() {
    let mut r = Registry::new();
    r.register::<StringValue>(MessageOptions::new()).unwrap();
    let out = r
        .register::<Int32Value>(MessageOptions::new().outgoing())
        .unwrap();
    assert_eq!(out.direction, Direction::Outgoing);
    let opened = r
        .open(br#"{"Int32Value":{}}"#, Encoding::Json, false)
        .unwrap();
    assert_eq!(
        r.check_incoming(opened.index),
        Err(DecodeError::Outgoing("Int32Value".into()))
    );
    assert_eq!(r.check_incoming(0), Ok(()));
    // decode does not check it: a client receives outgoing types.
    assert!(r.decode(&[0, 1], Encoding::Protobuf, false).is_ok());
}

#[test]
fn one_codec_types_refuse_the_other_encoding() {
    let mut r = Registry::new();
    let info = r.register_json::<OnlyJson>(MessageOptions::new()).unwrap();
    assert!(info.supports(Encoding::Json) && !info.supports(Encoding::Protobuf));
    let info = r
        .register_protobuf::<OnlyProto>(MessageOptions::new())
        .unwrap();
    assert!(!info.supports(Encoding::Json) && info.supports(Encoding::Protobuf));

    assert_eq!(
        encode(&r, &OnlyJson { a: 1 }, Encoding::Json, false),
        br#"{"OnlyJson":{"a":1}}"#
    );
    assert_eq!(
        encode(&r, &OnlyProto { b: 1 }, Encoding::Protobuf, true),
        [0x01, 0x00, 0x08, 0x01]
    );
    let mut out = vec![7];
    assert_eq!(
        r.encode(&OnlyJson { a: 1 }, Encoding::Protobuf, false, &mut out),
        Err(EncodeError::WrongEncoding {
            name: "OnlyJson".into(),
            encoding: Encoding::Protobuf
        })
    );
    assert_eq!(
        r.encode(&OnlyProto { b: 1 }, Encoding::Json, false, &mut out),
        Err(EncodeError::WrongEncoding {
            name: "OnlyProto".into(),
            encoding: Encoding::Json
        })
    );
    assert_eq!(out, [7], "nothing appended");
    assert_eq!(
        r.open(&[0, 0], Encoding::Protobuf, false).unwrap_err(),
        DecodeError::WrongEncoding {
            name: "OnlyJson".into(),
            encoding: Encoding::Protobuf
        }
    );
    assert_eq!(
        r.open(br#"{"OnlyProto":{}}"#, Encoding::Json, false)
            .unwrap_err(),
        DecodeError::WrongEncoding {
            name: "OnlyProto".into(),
            encoding: Encoding::Json
        }
    );
    // A hand-made Opened with the other body is refused the same way.
    let forged = Opened {
        index: 0,
        body: Body::Protobuf(&[]),
    };
    assert!(matches!(
        r.decode_body(&forged),
        Err(DecodeError::WrongEncoding { .. })
    ));
}

#[test]
fn lookups() {
    let mut r = Registry::new();
    assert!(r.is_empty());
    r.register::<StringValue>(MessageOptions::new().id(5))
        .unwrap();
    r.register::<Int32Value>(MessageOptions::new().name("I"))
        .unwrap();
    assert_eq!((r.len(), r.is_empty()), (2, false));
    let names: Vec<_> = r.messages().map(|m| (m.name.clone(), m.id)).collect();
    assert_eq!(names, [("StringValue".to_owned(), 5), ("I".to_owned(), 1)]);
    assert_eq!(r.index_of::<Int32Value>(), Some(1));
    assert_eq!(r.info_of::<Int32Value>().unwrap().name, "I");
    assert_eq!(r.info(1).type_name, type_name::<Int32Value>());
    assert_eq!(r.index_of_name("I"), Some(1));
    assert_eq!(r.index_of_name("Int32Value"), None);
    assert_eq!(r.index_of_id(5), Some(0));
    assert_eq!(r.index_of_id(0), None);
    assert_eq!(format!("{r:?}"), r#"{"StringValue": 5, "I": 1}"#);
}

#[test]
fn message_info_serializes_its_public_fields_only() {
    let r = both();
    let json = serde_json::to_value(r.info(1)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "name": "Int32Value",
            "id": 1,
            "type_name": type_name::<Int32Value>(),
            "direction": "incoming",
            "delivery": "reliable",
        })
    );
}

#[test]
fn the_registry_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Registry>();
}

#[test]
fn delivery_classes_and_rate_limits_are_told_at_registration() {
    use crate::{Delivery, OverLimit, RateLimit};
    let mut r = Registry::new();
    let limit = RateLimit::per_second(5).over(OverLimit::Close);
    let info = r
        .register::<Int32Value>(MessageOptions::new().id(1).rate_limit(limit))
        .unwrap();
    assert_eq!(
        (info.delivery, info.rate_limit),
        (Delivery::Reliable, Some(limit))
    );
    let json = serde_json::to_value(info).unwrap();
    assert_eq!(
        json["rate_limit"],
        serde_json::json!({"per_sec": 5, "burst": 5, "over": "close"})
    );
    let latest = MessageOptions::new()
        .id(2)
        .outgoing()
        .latest_by(|m: &StringValue| m.value.len() as u64);
    let info = r.register::<StringValue>(latest).unwrap();
    assert_eq!(info.delivery, Delivery::Latest);
    let key = r.latest_key(
        1,
        &StringValue {
            value: "abc".into(),
        },
    );
    assert_eq!(key, Some(3));
    assert_eq!(
        r.latest_key(0, &Int32Value { value: 1 }),
        None,
        "not latest"
    );
    assert_eq!(
        r.latest_key(1, &Int32Value { value: 1 }),
        None,
        "another type"
    );
}

#[test]
fn a_latest_key_of_another_type_is_refused() {
    let mut r = Registry::new();
    let wrong = MessageOptions::new().latest_by(|m: &StringValue| m.value.len() as u64);
    let e = r.register::<Int32Value>(wrong).unwrap_err();
    assert!(matches!(e, RegistryError::KeyType { .. }), "{e}");
    assert!(r.is_empty());
}
