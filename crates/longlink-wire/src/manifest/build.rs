//! [`Manifest::build`]: the registry's messages, described from descriptors.

use std::collections::{BTreeMap, HashMap};

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet};

use super::{EnumValue, FORMAT, FieldEntry, Manifest, MessageEntry, TypeEntry};
use crate::registry::{Direction, MessageInfo};

/// A message or enum type found in the descriptors.
#[derive(Clone, Copy)]
enum Def<'a> {
    Message(&'a DescriptorProto),
    Enum(&'a EnumDescriptorProto),
}

/// Every type of the descriptors by full name (`.pkg.Outer.Inner`), and the top-level
/// messages by bare name with their package.
struct Index<'a> {
    types: HashMap<String, Def<'a>>,
    top: HashMap<&'a str, (&'a str, &'a DescriptorProto)>,
}

impl<'a> Index<'a> {
    fn new(sets: [&'a FileDescriptorSet; 2]) -> Self {
        let mut index = Index {
            types: HashMap::new(),
            top: HashMap::new(),
        };
        for file in sets.iter().flat_map(|set| &set.file) {
            let prefix = match file.package() {
                "" => String::new(),
                package => format!(".{package}"),
            };
            for m in &file.message_type {
                index.top.entry(m.name()).or_insert((file.package(), m));
                index.add_message(&prefix, m);
            }
            for e in &file.enum_type {
                let name = format!("{prefix}.{}", e.name());
                index.types.entry(name).or_insert(Def::Enum(e));
            }
        }
        index
    }

    fn add_message(&mut self, prefix: &str, m: &'a DescriptorProto) {
        let full = format!("{prefix}.{}", m.name());
        for nested in &m.nested_type {
            self.add_message(&full, nested);
        }
        for e in &m.enum_type {
            let name = format!("{full}.{}", e.name());
            self.types.entry(name).or_insert(Def::Enum(e));
        }
        self.types.entry(full).or_insert(Def::Message(m));
    }

    /// The map entry type called `name`, if it is one.
    fn map_entry(&self, name: &str) -> Option<&'a DescriptorProto> {
        match self.types.get(name) {
            Some(Def::Message(m)) if m.options.as_ref().is_some_and(|o| o.map_entry()) => Some(m),
            _ => None,
        }
    }

    /// `m`'s fields as the manifest gives them, by number.
    fn fields(&self, m: &DescriptorProto) -> Vec<FieldEntry> {
        let mut fields: Vec<FieldEntry> = m.field.iter().map(|f| self.field(m, f)).collect();
        fields.sort_by_key(|f| f.number);
        fields
    }

    fn field(&self, m: &DescriptorProto, f: &FieldDescriptorProto) -> FieldEntry {
        let type_name = f.type_name.clone().filter(|t| !t.is_empty());
        let oneof = f
            .oneof_index
            .filter(|_| !f.proto3_optional())
            .and_then(|i| m.oneof_decl.get(usize::try_from(i).ok()?))
            .map(|o| o.name().to_owned());
        let mut entry = FieldEntry {
            name: f.name().to_owned(),
            number: f.number(),
            kind: kind(f.r#type()),
            type_name,
            repeated: f.label() == Label::Repeated,
            key_type: None,
            value_type: None,
            oneof,
            optional: f.proto3_optional(),
        };
        let map = entry.type_name.as_deref().and_then(|t| self.map_entry(t));
        if let Some(map) = map {
            let part = |number| map.field.iter().find(|f| f.number() == number);
            let (key, value) = (part(1), part(2));
            entry.kind = "map".to_owned();
            entry.repeated = false;
            entry.key_type = key.map(|k| kind(k.r#type()));
            entry.value_type = value.map(|v| kind(v.r#type()));
            entry.type_name = value
                .and_then(|v| v.type_name.clone())
                .filter(|t| !t.is_empty());
        }
        entry
    }

    /// Every type `fields` reach, directly or through other types, into `out`.
    fn reach(&self, fields: &[FieldEntry], out: &mut BTreeMap<String, TypeEntry>) {
        for name in fields.iter().filter_map(|f| f.type_name.as_deref()) {
            if out.contains_key(name) {
                continue;
            }
            let Some(def) = self.types.get(name) else {
                continue;
            };
            let entry = match *def {
                Def::Message(m) => TypeEntry {
                    name: name.to_owned(),
                    kind: "message".to_owned(),
                    fields: self.fields(m),
                    values: Vec::new(),
                },
                Def::Enum(e) => TypeEntry {
                    name: name.to_owned(),
                    kind: "enum".to_owned(),
                    fields: Vec::new(),
                    values: e
                        .value
                        .iter()
                        .map(|v| EnumValue {
                            name: v.name().to_owned(),
                            number: v.number(),
                        })
                        .collect(),
                },
            };
            let nested = entry.fields.clone();
            out.insert(name.to_owned(), entry);
            self.reach(&nested, out);
        }
    }
}

/// A field type's manifest name: `"message"`, `"enum"` or the scalar (`TYPE_INT64` ->
/// `"int64"`).
fn kind(t: Type) -> String {
    match t {
        Type::Message | Type::Group => "message".to_owned(),
        Type::Enum => "enum".to_owned(),
        scalar => scalar
            .as_str_name()
            .trim_start_matches("TYPE_")
            .to_ascii_lowercase(),
    }
}

impl Manifest {
    /// The manifest of `messages` (a registry's or a processor's), their fields from
    /// `descriptors` matched by message name, then from [`super::protocol_descriptors`] (so the
    /// `LL_` messages are described without the application's help). A message with no
    /// descriptor gets no fields and no `proto`.
    pub fn build<'a>(
        messages: impl IntoIterator<Item = &'a MessageInfo>,
        descriptors: &FileDescriptorSet,
    ) -> Manifest {
        let protocol = super::protocol_descriptors();
        let index = Index::new([descriptors, &protocol]);
        let mut infos: Vec<&MessageInfo> = messages.into_iter().collect();
        infos.sort_by_key(|info| info.id);
        let mut types = BTreeMap::new();
        let messages = infos
            .into_iter()
            .map(|info| {
                let found = index.top.get(info.name.as_str()).copied();
                let fields = found.map(|(_, m)| index.fields(m)).unwrap_or_default();
                index.reach(&fields, &mut types);
                MessageEntry {
                    name: info.name.clone(),
                    id: info.id,
                    direction: match info.direction {
                        Direction::Incoming => "incoming",
                        Direction::Outgoing => "outgoing",
                    }
                    .to_owned(),
                    delivery: info.delivery.as_str().to_owned(),
                    proto: found.map(|(package, m)| match package {
                        "" => m.name().to_owned(),
                        package => format!("{package}.{}", m.name()),
                    }),
                    fields,
                }
            })
            .collect();
        Manifest {
            format: FORMAT.to_owned(),
            messages,
            types: types.into_values().collect(),
        }
    }
}
