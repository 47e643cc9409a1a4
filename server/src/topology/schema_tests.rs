//! Keeps `docs/topology.schema.json` honest: valid JSON, draft 2020-12, and exactly the
//! keys (and `kind` values) the raw serde types accept, read from serde through
//! [`crate::schema_probe`] rather than from a hand-kept list.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::raw::{RawChatServer, RawCompliance, RawDatabase, RawFrontEnd, RawKind, RawTopology};
use crate::schema_probe::{enum_variants, schema_properties, struct_fields};

fn fields<T: DeserializeOwned>() -> Vec<String> {
    struct_fields::<T>().unwrap_or_else(|| panic!("{} is not a struct", std::any::type_name::<T>()))
}

fn keys(schema: &Value) -> Vec<String> {
    schema_properties(schema).unwrap_or_else(|| panic!("no properties in {schema}"))
}

fn strings(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().expect("a string").to_string())
        .collect();
    s.sort();
    s
}

#[test]
fn schema_is_json_and_lists_every_key() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/topology.schema.json");
    let text = std::fs::read_to_string(&path).expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(keys(&schema), fields::<RawTopology>(), "top-level keys");
    assert_eq!(schema["additionalProperties"], false);
    let defs = &schema["$defs"];
    let sections: [(&str, Vec<String>); 4] = [
        ("database", fields::<RawDatabase>()),
        ("compliance", fields::<RawCompliance>()),
        ("chat_server", fields::<RawChatServer>()),
        ("front_end", fields::<RawFrontEnd>()),
    ];
    for (name, want) in sections {
        assert_eq!(keys(&defs[name]), want, "$defs.{name}");
        assert_eq!(defs[name]["additionalProperties"], false, "$defs.{name}");
    }
    assert_eq!(
        strings(&schema["properties"]["kind"]["enum"]),
        enum_variants::<RawKind>().expect("an enum")
    );
    // The defaults the schema states are the ones the validator applies.
    let server = &defs["chat_server"]["properties"];
    assert_eq!(server["link_port"]["default"], super::DEFAULT_LINK_PORT);
    assert_eq!(server["pool_port"]["default"], super::DEFAULT_POOL_PORT);
    assert_eq!(
        server["metrics_port"]["default"],
        super::DEFAULT_METRICS_PORT
    );
    assert_eq!(
        defs["front_end"]["properties"]["port"]["default"],
        super::DEFAULT_FRONT_END_PORT
    );
    assert_eq!(
        defs["compliance"]["properties"]["run_interval_secs"]["default"],
        super::DEFAULT_COMPLIANCE_INTERVAL_SECS
    );
    assert_eq!(
        schema["properties"]["chat_server"]["maxItems"],
        super::MAX_SERVERS
    );
}
