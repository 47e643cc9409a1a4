//! Keeps `scenarios/scenario.schema.json` honest: it must be valid JSON and list exactly the
//! keys the raw serde types accept, which are read from serde itself (a probe deserializer
//! that records the field names a struct asks for, [`chatcap_server::schema_probe`]) rather
//! than from a hand-kept list.

use chatcap_server::schema_probe::{schema_properties, struct_fields};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::raw::*;

fn fields<T: DeserializeOwned>() -> Vec<String> {
    struct_fields::<T>().unwrap_or_else(|| panic!("{} is not a struct", std::any::type_name::<T>()))
}

fn keys(schema: &Value) -> Vec<String> {
    schema_properties(schema).unwrap_or_else(|| panic!("no properties in {schema}"))
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
