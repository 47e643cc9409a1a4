//! Keeps `scenarios/scenario.schema.json` honest: it must be valid JSON and list exactly the
//! keys the raw serde types accept, which are read from serde itself (a probe deserializer
//! that records the field names a struct asks for) rather than from a hand-kept list.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::Value;

use super::raw::*;

#[derive(Debug)]
enum ProbeError {
    Fields(&'static [&'static str]),
    Other(String),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Fields(fields) => write!(f, "fields {fields:?}"),
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

/// A deserializer that answers a struct's request with the list of its fields.
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

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn fields<T: DeserializeOwned + fmt::Debug>() -> Vec<String> {
    match T::deserialize(Probe) {
        Err(ProbeError::Fields(f)) => {
            let mut f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            f.sort();
            f
        }
        other => panic!("not a struct: {other:?}"),
    }
}

fn keys(schema: &Value) -> Vec<String> {
    let mut k: Vec<String> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no properties in {schema}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

#[test]
fn schema_is_json_and_lists_every_key() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/scenario.schema.json");
    let text = std::fs::read_to_string(&path).expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(keys(&schema), fields::<Scenario>(), "top-level keys");
    assert_eq!(schema["additionalProperties"], false);
    let defs = &schema["$defs"];
    let sections: [(&str, Vec<String>); 10] = [
        ("target", fields::<RawTarget>()),
        ("population", fields::<RawPopulation>()),
        ("room_class", fields::<RawRoomClass>()),
        ("behaviour", fields::<RawBehaviour>()),
        ("op", fields::<RawOp>()),
        ("workload", fields::<RawWorkload>()),
        ("ramp", fields::<RawRamp>()),
        ("hold", fields::<RawHold>()),
        ("step", fields::<RawStep>()),
        ("spike", fields::<RawSpike>()),
    ];
    for (name, want) in sections {
        assert_eq!(keys(&defs[name]), want, "$defs.{name}");
        assert_eq!(defs[name]["additionalProperties"], false, "$defs.{name}");
    }
    // Operation names in the schema are the ones the validator knows.
    let mut ops: Vec<String> = defs["op"]["properties"]["op"]["enum"]
        .as_array()
        .expect("op enum")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    ops.sort();
    let mut want: Vec<String> = super::plan::OpKind::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    want.sort();
    assert_eq!(ops, want);
}
