//! Keeping checked-in JSON Schemas honest (`scenarios/scenario.schema.json`,
//! `docs/topology.schema.json`): the keys a serde struct accepts (and the variants of a unit
//! enum), read from serde itself by a probe deserializer that records the names a type asks
//! for, and the keys a schema object lists. Schema tests compare the two instead of a
//! hand-kept list; this module reads no files (tests hand it the parsed schema).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

#[derive(Debug)]
enum ProbeError {
    Fields(&'static [&'static str]),
    Variants(&'static [&'static str]),
    Other(String),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Fields(n) => write!(f, "fields {n:?}"),
            ProbeError::Variants(n) => write!(f, "variants {n:?}"),
            ProbeError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ProbeError::Other(msg.to_string())
    }
}

/// A deserializer that answers a struct's request with the list of its fields, and an
/// enum's with the list of its variants.
struct Probe;

impl<'de> Deserializer<'de> for Probe {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        Err(ProbeError::Other("not a struct".into()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ProbeError> {
        Err(ProbeError::Fields(fields))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ProbeError> {
        Err(ProbeError::Variants(variants))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map identifier
        ignored_any
    }
}

/// The keys serde accepts for struct `T` (after renames), sorted; `None` when `T` does not
/// deserialize as a struct (a map, an enum, a custom type).
pub fn struct_fields<'de, T: Deserialize<'de>>() -> Option<Vec<String>> {
    match T::deserialize(Probe) {
        Err(ProbeError::Fields(f)) => Some(sorted(f)),
        _ => None,
    }
}

/// The variant names serde accepts for enum `T` (after renames), sorted; `None` when `T`
/// does not deserialize as an enum.
pub fn enum_variants<'de, T: Deserialize<'de>>() -> Option<Vec<String>> {
    match T::deserialize(Probe) {
        Err(ProbeError::Variants(v)) => Some(sorted(v)),
        _ => None,
    }
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut n: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    n.sort();
    n
}

/// The keys of a JSON Schema object's `properties`, sorted; `None` when it has none.
pub fn schema_properties(schema: &serde_json::Value) -> Option<Vec<String>> {
    let mut k: Vec<String> = schema["properties"].as_object()?.keys().cloned().collect();
    k.sort();
    Some(k)
}
