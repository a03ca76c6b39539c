//! Learning a record type's fields before any row is read: a probe
//! deserializer that `deserialize_struct` hands the field list to.

use std::fmt;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserializer, forward_to_deserialize_any};

use crate::de::NOT_A_STRUCT;

/// The record type's shape, as its `Deserialize` impl tells it.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// The type's name (from serde; the struct's name).
    pub(crate) name: &'static str,
    /// The fields' serde names, in order (for tuple structs: `"0"`, `"1"`, ...).
    pub(crate) fields: Vec<String>,
}

/// The probe's outcome travels as its error, which stops `deserialize` early.
#[derive(Debug)]
enum ProbeError {
    Found(Shape),
    Other(String),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Found(shape) => write!(f, "struct {}", shape.name),
            ProbeError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        ProbeError::Other(msg.to_string())
    }
}

/// Learns a record type's fields: `deserialize_struct` hands them over.
struct Probe;

impl<'de> Deserializer<'de> for Probe {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        Err(ProbeError::Other(NOT_A_STRUCT.into()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ProbeError> {
        let fields = fields.iter().map(|f| (*f).to_owned()).collect();
        Err(ProbeError::Found(Shape { name, fields }))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        _: V,
    ) -> Result<V::Value, ProbeError> {
        let fields = (0..len).map(|i| i.to_string()).collect();
        Err(ProbeError::Found(Shape { name, fields }))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_tuple_struct("tuple", len, v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, ProbeError> {
        v.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq map enum identifier ignored_any
    }
}

/// The fields of `T`, or why `T` cannot be a record.
pub(crate) fn shape_of<T: DeserializeOwned>() -> Result<Shape, String> {
    match T::deserialize(Probe) {
        Err(ProbeError::Found(shape)) => Ok(shape),
        Err(ProbeError::Other(m)) => Err(m),
        Ok(_) => Err(NOT_A_STRUCT.into()),
    }
}
