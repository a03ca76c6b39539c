//! The registry: golden bytes of both encodings, names and ids, every registration error,
//! one-codec types, round trips and arbitrary input.
use super::*;
use crate::Encoding;
use proptest::prelude::*;

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
fn golden_protobuf_id_and_body() {
    let r = both();
    let v = Int32Value { value: 150 };
    assert_eq!(
        encode(&r, &v, Encoding::Protobuf, false),
        [0x00, 0x01, 0x08, 0x96, 0x01]
    );
    assert_eq!(
        encode(&r, &v, Encoding::Protobuf, true),
        [0x01, 0x00, 0x08, 0x96, 0x01]
    );
    let p = Encoding::Protobuf;
    assert_eq!(
        typed::<Int32Value>(&r, &[0x00, 0x01, 0x08, 0x96, 0x01], p).unwrap(),
        v
    );
    let (index, value) = r.decode(&[0x01, 0x00, 0x08, 0x96, 0x01], p, true).unwrap();
    assert_eq!(index, 1);
    assert_eq!(value.downcast_ref::<Int32Value>(), Some(&v));
    assert_eq!(
        typed::<Int32Value>(&r, &[0x00, 0x01], p).unwrap(),
        Int32Value { value: 0 }
    );
}

#[test]
fn protobuf_errors() {
    let r = both();
    let p = Encoding::Protobuf;
    assert_eq!(
        typed::<Int32Value>(&r, &[0x00], p).unwrap_err(),
        DecodeError::TooShort(1)
    );
    assert_eq!(
        typed::<Int32Value>(&r, &[0x00, 0x09], p).unwrap_err(),
        DecodeError::UnknownId(9)
    );
    assert!(matches!(
        typed::<Int32Value>(&r, &[0x00, 0x01, 0xff, 0xff], p).unwrap_err(),
        DecodeError::BadBody { name, .. } if name == "Int32Value"
    ));
}

#[test]
fn json_names_and_errors() {
    let r = both();
    let j = Encoding::Json;
    assert_eq!(
        typed::<StringValue>(&r, br#"{"StringValue":{"value":"x"}}"#, j).unwrap(),
        StringValue { value: "x".into() }
    );
    assert_eq!(
        typed::<StringValue>(&r, br#"{"Nope":{}}"#, j).unwrap_err(),
        DecodeError::UnknownName("Nope".into())
    );
    assert!(matches!(
        typed::<StringValue>(&r, br#"{"StringValue":{"value":1}}"#, j),
        Err(DecodeError::BadBody { .. })
    ));
    assert!(matches!(
        typed::<StringValue>(&r, br#"{"StringValue":{},"Int32Value":{}}"#, j),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(
        typed::<StringValue>(&r, b"not json", j),
        Err(DecodeError::Json(_))
    ));
    assert_eq!(
        encode(&r, &StringValue { value: "x".into() }, j, false),
        br#"{"StringValue":{"value":"x"}}"#
    );
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
    assert_eq!(
        r.register::<Chat>(MessageOptions::new().id(u16::MAX)),
        Err(RegistryError::TooMany)
    );
    // A refused registration leaves nothing behind.
    assert_eq!(r.len(), 2);
    assert_eq!(r.index_of::<Chat>(), None);
    assert_eq!(r.register::<Chat>(MessageOptions::new()).unwrap().id, 2);
}

#[test]
fn errors_are_checked_type_then_name_then_range_then_id() {
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
    // A bad id is reported before a taken one could be.
    assert_eq!(
        r.register::<Chat>(MessageOptions::new().id(u16::MAX)),
        Err(RegistryError::TooMany)
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
fn open_gives_the_undecoded_body() {
    let r = both();
    // The body is not decoded, so a body of the wrong shape is fine until decode_body.
    let payload = br#"{"StringValue":[1,2]}"#;
    let opened = r.open(payload, Encoding::Json, false).unwrap();
    assert_eq!(opened.index, 0);
    assert_eq!(opened.body.as_bytes(), b"[1,2]");
    assert!(
        payload
            .as_ptr_range()
            .contains(&opened.body.as_bytes().as_ptr())
    );
    assert!(matches!(
        r.decode_body(&opened),
        Err(DecodeError::BadBody { .. })
    ));
    let payload = [0x00, 0x02, 0x08, 0x01];
    let opened = r.open(&payload, Encoding::Protobuf, false).unwrap();
    assert_eq!(opened.index, 2);
    assert_eq!(opened.body.as_bytes(), &payload[2..]);
    assert!(matches!(opened.body, Body::Protobuf(_)));
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
fn encode_errors() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct BadKeys(std::collections::BTreeMap<Vec<u8>, u8>);

    let mut r = both();
    let mut out = b"keep".to_vec();
    assert_eq!(
        r.encode(&1u64, Encoding::Json, false, &mut out),
        Err(EncodeError::NotRegistered("u64"))
    );
    r.register_json::<BadKeys>(MessageOptions::new()).unwrap();
    let bad = BadKeys([(vec![1], 1)].into_iter().collect());
    let e = r.encode(&bad, Encoding::Json, false, &mut out).unwrap_err();
    assert!(
        matches!(&e, EncodeError::Json { name, .. } if name == "BadKeys"),
        "{e}"
    );
    assert!(e.to_string().starts_with("message BadKeys: json: "), "{e}");
    assert_eq!(out, b"keep", "a failed encode appends nothing");
}

#[test]
fn encode_appends_and_returns_the_index() {
    let r = both();
    let mut out = b"x".to_vec();
    let chat = Chat {
        room_id: 1,
        text: "t".into(),
        ts: 2,
    };
    assert_eq!(r.encode(&chat, Encoding::Json, false, &mut out), Ok(2));
    assert_eq!(out, br#"x{"Chat":{"room_id":1,"text":"t","ts":2}}"#);
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
        })
    );
}

#[test]
fn the_registry_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Registry>();
}

fn chat_strategy() -> impl Strategy<Value = Chat> {
    (any::<u64>(), ".{0,40}", any::<i64>()).prop_map(|(room_id, text, ts)| Chat {
        room_id,
        text,
        ts,
    })
}

proptest! {
    #[test]
    fn json_round_trip(msg in chat_strategy()) {
        let r = both();
        let e = encode(&r, &msg, Encoding::Json, false);
        prop_assert_eq!(typed::<Chat>(&r, &e, Encoding::Json).unwrap(), msg);
    }

    #[test]
    fn protobuf_round_trip(msg in chat_strategy(), le in any::<bool>()) {
        let r = both();
        let e = encode(&r, &msg, Encoding::Protobuf, le);
        let (index, value) = r.decode(&e, Encoding::Protobuf, le).unwrap();
        prop_assert_eq!(index, 2);
        prop_assert_eq!(value.downcast_ref::<Chat>(), Some(&msg));
    }

    #[test]
    fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..64), le in any::<bool>()) {
        let r = both();
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            if let Ok(opened) = r.open(&data, encoding, le) {
                let _ = r.check_incoming(opened.index);
                let _ = r.decode_body(&opened);
            }
        }
    }

    /// Payloads shaped like envelopes, with registered names and arbitrary bodies.
    #[test]
    fn envelope_shaped_garbage_never_panics(
        name in "(StringValue|Int32Value|Chat|X)",
        body in r#"[\[\]{}":,0-9a-z\\-]{0,24}"#,
    ) {
        let r = both();
        let payload = format!(r#"{{"{name}":{body}}}"#);
        if let Ok(opened) = r.open(payload.as_bytes(), Encoding::Json, false) {
            prop_assert!(payload.as_bytes().as_ptr_range().contains(&opened.body.as_bytes().as_ptr()));
            let _ = r.decode_body(&opened);
        }
    }
}
