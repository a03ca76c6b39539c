//! The processor's decoding as the gate uses it: golden bytes, errors, names and ids,
//! destinations, raw bodies, one-codec types.

use std::any::type_name;

use bytes::Bytes;
use proptest::prelude::*;

use super::{DecodedMsg, decode};
use crate::codec::DecodeError;
use crate::processor::{MessageOptions, Processor, ProcessorError, RegistryError};
use longlink_wire::Encoding;

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

fn both(encoding: Encoding) -> Processor {
    let mut p = Processor::new(encoding);
    p.register::<StringValue>().unwrap();
    p.register::<Int32Value>().unwrap();
    p.register::<Chat>().unwrap();
    p
}

fn decoded(p: &Processor, bytes: &[u8]) -> Result<DecodedMsg, DecodeError> {
    decode(&p.codec, &p.routes, &Bytes::copy_from_slice(bytes)).map(|d| d.msg)
}

fn typed<T: 'static + Clone>(p: &Processor, bytes: &[u8]) -> Result<T, DecodeError> {
    match decoded(p, bytes)? {
        DecodedMsg::Typed(m) => Ok(m.downcast_ref::<T>().unwrap().clone()),
        DecodedMsg::Raw(_) => panic!("raw"),
        DecodedMsg::Forward(_) => panic!("forwarded"),
    }
}

#[test]
fn golden_protobuf_id_and_body() {
    let p = both(Encoding::Protobuf);
    let e = p.encode(&Int32Value { value: 150 }).unwrap();
    assert_eq!(e.as_bytes(), &[0x00, 0x01, 0x08, 0x96, 0x01]);
    let mut le = both(Encoding::Protobuf);
    le.set_id_little_endian(true);
    assert_eq!(
        le.encode(&Int32Value { value: 150 }).unwrap().as_bytes(),
        &[0x01, 0x00, 0x08, 0x96, 0x01]
    );
    assert_eq!(
        typed::<Int32Value>(&p, &[0x00, 0x01, 0x08, 0x96, 0x01]).unwrap(),
        Int32Value { value: 150 }
    );
    assert_eq!(
        typed::<Int32Value>(&p, &[0x00, 0x01]).unwrap(),
        Int32Value { value: 0 }
    );
}

#[test]
fn protobuf_errors() {
    let p = both(Encoding::Protobuf);
    assert_eq!(
        typed::<Int32Value>(&p, &[0x00]).unwrap_err(),
        DecodeError::TooShort(1)
    );
    assert_eq!(
        typed::<Int32Value>(&p, &[0x00, 0x09]).unwrap_err(),
        DecodeError::UnknownId(9)
    );
    assert!(matches!(
        typed::<Int32Value>(&p, &[0x00, 0x01, 0xff, 0xff]).unwrap_err(),
        DecodeError::BadBody { .. }
    ));
}

#[test]
fn json_names_and_errors() {
    let p = both(Encoding::Json);
    assert_eq!(
        typed::<StringValue>(&p, br#"{"StringValue":{"value":"x"}}"#).unwrap(),
        StringValue { value: "x".into() }
    );
    assert_eq!(
        typed::<StringValue>(&p, br#"{"Nope":{}}"#).unwrap_err(),
        DecodeError::UnknownName("Nope".into())
    );
    assert!(matches!(
        typed::<StringValue>(&p, br#"{"StringValue":{"value":1}}"#),
        Err(DecodeError::BadBody { .. })
    ));
    assert!(matches!(
        typed::<StringValue>(&p, br#"{"StringValue":{},"Int32Value":{}}"#),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(
        typed::<StringValue>(&p, b"not json"),
        Err(DecodeError::Json(_))
    ));
}

#[test]
fn explicit_names_and_ids() {
    let mut p = Processor::new(Encoding::Protobuf);
    p.register_with::<StringValue>(MessageOptions::new().name("S").id(100))
        .unwrap();
    let info = p.register::<Int32Value>().unwrap();
    assert_eq!((info.name.as_str(), info.id), ("Int32Value", 1));
    assert_eq!(
        p.encode(&StringValue {
            value: String::new()
        })
        .unwrap()
        .as_bytes(),
        &[0x00, 100]
    );
    assert!(matches!(
        p.register_with::<Chat>(MessageOptions::new().id(100)),
        Err(ProcessorError::Registry(RegistryError::DuplicateId {
            id: 100,
            ..
        }))
    ));
    assert!(matches!(
        p.register_with::<Chat>(MessageOptions::new().name("S")),
        Err(ProcessorError::Registry(RegistryError::DuplicateName(_)))
    ));
    assert_eq!(
        p.register::<Int32Value>().unwrap_err(),
        ProcessorError::Registry(RegistryError::DuplicateType(type_name::<Int32Value>()))
    );
}

#[test]
fn unrouted_incoming_types_are_an_error_outgoing_are_not() {
    let mut p = Processor::new(Encoding::Json);
    p.register::<StringValue>().unwrap();
    p.register_outgoing::<Int32Value>().unwrap();
    assert_eq!(
        p.validate(),
        Err(ProcessorError::Unrouted(vec!["StringValue".into()]))
    );
    p.handle::<StringValue, _>(|_, _| {}).unwrap();
    assert_eq!(p.validate(), Ok(()));
    assert_eq!(
        p.handle::<Int32Value, _>(|_, _| {}),
        Err(ProcessorError::OutgoingOnly(type_name::<Int32Value>()))
    );
    assert_eq!(
        typed::<Int32Value>(&p, br#"{"Int32Value":{}}"#).unwrap_err(),
        DecodeError::Outgoing("Int32Value".into())
    );
    assert_eq!(
        p.handle::<Chat, _>(|_, _| {}),
        Err(ProcessorError::NotRegistered(type_name::<Chat>()))
    );
}

#[test]
fn raw_handlers_get_the_undecoded_body() {
    let mut p = Processor::new(Encoding::Json);
    p.register::<StringValue>().unwrap();
    p.handle_raw::<StringValue, _>(|_, _| {}).unwrap();
    // The body is not decoded, so a body of the wrong shape is fine.
    match decoded(&p, br#"{"StringValue":[1,2]}"#).unwrap() {
        DecodedMsg::Raw(raw) => assert_eq!(&raw.body[..], b"[1,2]"),
        DecodedMsg::Typed(_) | DecodedMsg::Forward(_) => panic!("decoded"),
    }
}

#[test]
fn json_only_types_refuse_a_protobuf_processor() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct OnlyJson {
        a: u8,
    }
    let mut p = Processor::new(Encoding::Protobuf);
    assert!(matches!(
        p.register_json::<OnlyJson>(MessageOptions::new()),
        Err(ProcessorError::WrongEncoding { .. })
    ));
    let mut j = Processor::new(Encoding::Json);
    j.register_json::<OnlyJson>(MessageOptions::new()).unwrap();
    assert_eq!(
        j.encode(&OnlyJson { a: 1 }).unwrap().as_bytes(),
        br#"{"OnlyJson":{"a":1}}"#
    );
}

#[test]
fn protobuf_only_types_refuse_a_json_processor() {
    let mut p = Processor::new(Encoding::Json);
    let e = p
        .register_protobuf::<Int32Value>(MessageOptions::new())
        .unwrap_err();
    assert!(matches!(e, ProcessorError::WrongEncoding { .. }), "{e}");
    assert!(e.to_string().contains("Protobuf"), "{e}");
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
        let p = both(Encoding::Json);
        let e = p.encode(&msg).unwrap();
        prop_assert_eq!(typed::<Chat>(&p, e.as_bytes()).unwrap(), msg);
    }

    #[test]
    fn protobuf_round_trip(msg in chat_strategy(), le in any::<bool>()) {
        let mut p = both(Encoding::Protobuf);
        p.set_id_little_endian(le);
        let e = p.encode(&msg).unwrap();
        prop_assert_eq!(typed::<Chat>(&p, e.as_bytes()).unwrap(), msg);
    }

    #[test]
    fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decoded(&both(Encoding::Json), &data);
        let _ = decoded(&both(Encoding::Protobuf), &data);
    }
}
