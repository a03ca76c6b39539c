//! The serde side: a [`Deserializer`] over one row's cells, and one for a cell
//! that parses it the way the field's type asks for (the probe that learns the
//! fields first is in `shape`).

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Expected, IntoDeserializer, SeqAccess, Visitor,
};
use serde::{Deserializer, forward_to_deserialize_any};

use crate::strconv::{self, NumError};

/// An error from deserializing a row; `cell` is the 0-based field it came from.
#[derive(Debug)]
pub(crate) struct DeError {
    /// What went wrong.
    pub(crate) message: String,
    /// The field (position in the record) that failed, if known.
    pub(crate) cell: Option<usize>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        DeError {
            message: msg.to_string(),
            cell: None,
        }
    }
}

/// Refuses anything but a struct, tuple struct or tuple (or a newtype of one).
pub(crate) const NOT_A_STRUCT: &str = "a record must be a struct with named fields or a tuple struct \
     (no #[serde(flatten)], no maps or enums at the top level)";

/// Deserializes one record from its cells, given in field order.
pub(crate) fn from_cells<T: DeserializeOwned>(cells: &[&str]) -> Result<T, DeError> {
    T::deserialize(RowDe { cells })
}

/// A row: a struct whose fields are the cells, by position.
struct RowDe<'a> {
    cells: &'a [&'a str],
}

impl<'de> Deserializer<'de> for RowDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom(NOT_A_STRUCT))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_seq(Cells {
            cells: self.cells,
            next: 0,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_struct("", &[], v)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_struct("", &[], v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq map enum identifier ignored_any
    }
}

/// The cells of a row as a sequence; errors are tagged with their cell.
struct Cells<'a> {
    cells: &'a [&'a str],
    next: usize,
}

impl<'de> SeqAccess<'de> for Cells<'de> {
    type Error = DeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, DeError> {
        let Some(&cell) = self.cells.get(self.next) else {
            return Ok(None);
        };
        let i = self.next;
        self.next += 1;
        seed.deserialize(CellDe(cell)).map(Some).map_err(|mut e| {
            e.cell.get_or_insert(i);
            e
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.cells.len() - self.next)
    }
}

/// One cell, parsed as the field's type asks: scalars as leaf parses them,
/// anything nested as JSON.
struct CellDe<'a>(&'a str);

impl<'de> CellDe<'de> {
    fn fail<T>(&self, expected: &str) -> Result<T, DeError> {
        Err(de::Error::custom(format_args!(
            "expected {expected}, found {:?}",
            self.0
        )))
    }

    fn int(&self, bits: u32, ty: &str) -> Result<i128, DeError> {
        strconv::parse_int(self.0, bits).or_else(|e| match e {
            NumError::Syntax => self.fail(&format!("an integer ({ty})")),
            NumError::Range => self.fail(&format!("an integer that fits in {ty}")),
        })
    }

    fn uint(&self, bits: u32, ty: &str) -> Result<u128, DeError> {
        strconv::parse_uint(self.0, bits).or_else(|e| match e {
            NumError::Syntax => self.fail(&format!("an unsigned integer ({ty})")),
            NumError::Range => self.fail(&format!("an unsigned integer that fits in {ty}")),
        })
    }

    fn float(&self, f32: bool) -> Result<f64, DeError> {
        let ty = if f32 { "f32" } else { "f64" };
        crate::float::parse_float(self.0, f32).or_else(|e| match e {
            NumError::Syntax => self.fail(&format!("a number ({ty})")),
            NumError::Range => self.fail(&format!("a number that fits in {ty}")),
        })
    }

    /// The cell as JSON, for the nested types leaf reads with `json.Unmarshal`.
    fn json<V, F>(self, v: V, f: F) -> Result<V::Value, DeError>
    where
        V: Visitor<'de>,
        F: FnOnce(
            &mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
            V,
        ) -> serde_json::Result<V::Value>,
    {
        let expected = (&v as &dyn Expected).to_string();
        let mut json = serde_json::Deserializer::from_str(self.0);
        f(&mut json, v)
            .and_then(|value| json.end().map(|()| value))
            .or_else(|e| self.fail(&format!("JSON for {expected} ({e})")))
    }
}

/// `deserialize_<int>` methods through Go's `ParseInt`/`ParseUint`.
macro_rules! ints {
    ($($method:ident $visit:ident $ty:ident $parse:ident $bits:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            let n = self.$parse($bits, stringify!($ty))?;
            v.$visit(n as $ty)
        }
    )*};
}

impl<'de> Deserializer<'de> for CellDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.json(v, |j, v| j.deserialize_any(v))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match strconv::parse_bool(self.0) {
            Some(b) => v.visit_bool(b),
            None => {
                self.fail("a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)")
            }
        }
    }

    ints! {
        deserialize_i8 visit_i8 i8 int 8;
        deserialize_i16 visit_i16 i16 int 16;
        deserialize_i32 visit_i32 i32 int 32;
        deserialize_i64 visit_i64 i64 int 64;
        deserialize_i128 visit_i128 i128 int 128;
        deserialize_u8 visit_u8 u8 uint 8;
        deserialize_u16 visit_u16 u16 uint 16;
        deserialize_u32 visit_u32 u32 uint 32;
        deserialize_u64 visit_u64 u64 uint 64;
        deserialize_u128 visit_u128 u128 uint 128;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_f32(self.float(true)? as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_f64(self.float(false)?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let mut chars = self.0.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => v.visit_char(c),
            _ => self.fail("a single character"),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_borrowed_str(self.0)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_borrowed_str(self.0)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_borrowed_str(self.0)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_borrowed_bytes(self.0.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_borrowed_bytes(self.0.as_bytes())
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.0.is_empty() {
            v.visit_none()
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.0.is_empty() {
            v.visit_unit()
        } else {
            self.fail("an empty cell")
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.json(v, |j, v| j.deserialize_seq(v))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, DeError> {
        self.json(v, |j, v| j.deserialize_tuple(len, v))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.json(v, |j, v| j.deserialize_tuple_struct(name, len, v))
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.json(v, |j, v| j.deserialize_map(v))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.json(v, |j, v| j.deserialize_struct(name, fields, v))
    }

    /// A bare word names a unit variant (`Sword`); JSON (`"Sword"`,
    /// `{"Bow": 3}`) is read as JSON.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        if self.0.trim_start().starts_with(['{', '"']) {
            self.json(v, |j, v| j.deserialize_enum(name, variants, v))
        } else {
            v.visit_enum(IntoDeserializer::<DeError>::into_deserializer(self.0))
        }
    }

    /// A column the record ignores (`_unused: serde::de::IgnoredAny`), as leaf
    /// ignores unexported fields: the cell is counted but not parsed.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}
