//! The `LL_` messages' descriptors, written out here so that every manifest describes them
//! without the application's `.proto` files.

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet};

/// The protocol's messages (package `longlink`) and their fields (name, type), numbered from 1.
const PROTOCOL: &[(&str, &[(&str, Type)])] = &[
    ("LL_SessionStart", &[]),
    (
        "LL_Session",
        &[("token", Type::String), ("window_s", Type::Uint32)],
    ),
    (
        "LL_Resume",
        &[("token", Type::String), ("last_seq", Type::Uint64)],
    ),
    (
        "LL_Resumed",
        &[("token", Type::String), ("last_seq", Type::Uint64)],
    ),
    ("LL_ResumeRefused", &[("reason", Type::String)]),
    ("LL_Ack", &[("seq", Type::Uint64)]),
    ("LL_Move", &[("after_ms", Type::Uint32)]),
];

/// The `LL_` messages (`longlink_wire::resume`, and a draining gate's `LL_Move{after_ms}`)
/// as one file of package `longlink`, as `protoc` would compile them.
///
/// ```
/// let set = longlink_wire::manifest::protocol_descriptors();
/// assert_eq!(set.file[0].package(), "longlink");
/// assert!(set.file[0].message_type.iter().any(|m| m.name() == "LL_Resume"));
/// ```
pub fn protocol_descriptors() -> FileDescriptorSet {
    let message_type = PROTOCOL
        .iter()
        .map(|(name, fields)| DescriptorProto {
            name: Some((*name).to_owned()),
            field: fields
                .iter()
                .zip(1..)
                .map(|((field, t), number)| FieldDescriptorProto {
                    name: Some((*field).to_owned()),
                    number: Some(number),
                    label: Some(Label::Optional.into()),
                    r#type: Some((*t).into()),
                    json_name: None,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    FileDescriptorSet {
        file: vec![FileDescriptorProto {
            name: Some("longlink/protocol.proto".to_owned()),
            package: Some("longlink".to_owned()),
            message_type,
            syntax: Some("proto3".to_owned()),
            ..Default::default()
        }],
    }
}
