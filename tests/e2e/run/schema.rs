//! `summary.json` against its checked-in schema (`reports/schema/summary.schema.json`):
//! a small validator for the part of JSON Schema 2020-12 the schema uses, a check that
//! the schema and the report model (`chatcap::report::model::Summary`) name the same
//! fields, and the validation of a real run's summary (called from the run tests).

use std::collections::BTreeMap;

use chatcap::metrics::resources::ProcessSummary;
use chatcap::profile::record::{ConfinedProcess, LimitRecord, Method, ProfileRecord};
use chatcap::report::model::{
    DeliverySummary, Latency, Machine, OpSummary, SloResult, Summary, UsersSummary, SCHEMA,
};
use chatcap::runner::reconcile::Reconciliation;
use serde_json::Value;

/// The checked-in schema.
pub fn schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/reports/schema/summary.schema.json"
    );
    let text = std::fs::read_to_string(path).expect("read the summary schema");
    serde_json::from_str(&text).expect("the summary schema is JSON")
}

/// Every way `value` breaks `schema`, as `path: reason` lines (empty: valid). Supports
/// `type`, `const`, `enum`, `minimum`, `required`, `properties`, `additionalProperties`,
/// `items`, `anyOf` and local `$ref`s (`#/$defs/…`); annotations are ignored.
pub fn validate(root: &Value, schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    check(root, schema, value, path, &mut errors);
    errors
}

fn check(root: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(root, |node, key| &node[key]))
            .filter(|t| !t.is_null());
        match target {
            Some(t) => check(root, t, value, path, errors),
            None => errors.push(format!("{path}: unresolvable $ref {r}")),
        }
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.iter().any(|t| has_type(value, t)) {
            errors.push(format!("{path}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            errors.push(format!("{path}: {value} is not {c}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            errors.push(format!("{path}: {value} is not one of {options:?}"));
        }
    }
    if let (Some(min), Some(v)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if v < min {
            errors.push(format!("{path}: {v} is below {min}"));
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        if !any
            .iter()
            .any(|s| validate(root, s, value, path).is_empty())
        {
            errors.push(format!("{path}: {value} matches none of anyOf"));
        }
    }
    if let Some(obj) = value.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(key) {
                errors.push(format!("{path}: required key `{key}` is missing"));
            }
        }
        for (key, v) in obj {
            let here = format!("{path}.{key}");
            match (
                props.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => check(root, s, v, &here, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{here}: not allowed (not in the schema)"))
                }
                (None, Some(s)) if s.is_object() => check(root, s, v, &here, errors),
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            check(root, items, v, &format!("{path}[{i}]"), errors);
        }
    }
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        // 2020-12: any number with a zero fractional part.
        "integer" => {
            value.is_u64() || value.is_i64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// A summary with every optional part present and every map non-empty, so that its JSON
/// shows every field the model has. Built field by field on purpose: a field added to
/// the model breaks this until the schema is updated too.
fn full_summary() -> Summary {
    let lat = Latency {
        p50_us: 1,
        p90_us: 2,
        p99_us: 3,
        p999_us: 4,
        max_us: 5,
        mean_us: 1.5,
    };
    let op = OpSummary {
        count: 10,
        errors: 1,
        timeouts: 1,
        rate_per_s: 2.5,
        response: lat.clone(),
        service: lat,
    };
    Summary {
        schema: SCHEMA.to_string(),
        scenario: "s".into(),
        scenario_file: "s.toml".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        ending: "completed".into(),
        duration_s: 4.0,
        users: UsersSummary {
            peak: 1,
            target_peak: 1,
            population: 1,
            disconnects: 0,
        },
        operations: BTreeMap::from([("post_ack".to_string(), op)]),
        delivery: DeliverySummary {
            received: 1,
            lost: 0,
            duplicated: 0,
            out_of_order: 0,
        },
        errors: BTreeMap::from([("timeout".to_string(), 1)]),
        error_rate: 0.1,
        reconciliation: Some(Reconciliation {
            rooms_checked: 1,
            acked_checked: 10,
            missing: 0,
            duplicated: 0,
            unreadable_rooms: 0,
        }),
        resources: BTreeMap::from([(
            "server".to_string(),
            ProcessSummary {
                cpu_avg_pct: 1.0,
                cpu_max_pct: 2.0,
                rss_max_bytes: 3,
                fds_max: 4,
                threads_max: 5,
                db_bytes: 6,
            },
        )]),
        slo: vec![SloResult {
            text: "post_ack.p99 < 1ms".into(),
            value: Some(3.0),
            unit: "us".into(),
            pass: false,
        }],
        machine: Machine {
            cpu_model: "cpu".into(),
            cores: 2,
            memory_bytes: 3,
            kernel: "k".into(),
            hostname: "h".into(),
            fd_limit: 4,
        },
        slo_window: Some(chatcap::report::window::WindowSummary {
            from_s: 2.0,
            operations: BTreeMap::from([(
                "post_ack".to_string(),
                chatcap::report::window::WindowOp {
                    count: 5,
                    response: Latency::default(),
                    service: Latency::default(),
                },
            )]),
        }),
        profile: Some(full_profile()),
    }
}

/// A profile record with every limit kind and every optional part present.
fn full_profile() -> ProfileRecord {
    let limit = |name: &str, how| LimitRecord {
        limit: name.into(),
        asked: "1".into(),
        how,
        applied: Some("1".into()),
        path: Some("/sys/fs/cgroup/x".into()),
        note: Some("why".into()),
    };
    ProfileRecord {
        name: "p".into(),
        description: "d".into(),
        file: "p.toml".into(),
        cpus: Some("0-1".into()),
        cpu_quota: Some(0.5),
        memory_bytes: Some(1 << 30),
        worker_threads: Some(1),
        limits: vec![
            limit("cpus", Method::Affinity),
            limit("cpu_quota", Method::CgroupV1),
            limit("memory", Method::CgroupV2),
            limit("worker_threads", Method::Flag),
            LimitRecord {
                applied: None,
                path: None,
                ..limit("memory", Method::NotApplied)
            },
        ],
        cgroups: vec!["/sys/fs/cgroup/x".into()],
        processes: vec![ConfinedProcess {
            name: "server".into(),
            pid: 1,
            confined: true,
        }],
    }
}

/// Every object the schema describes by `properties` requires all of them and allows no
/// others: then "valid" means "the same fields", in both directions.
fn assert_closed_objects(node: &Value, path: &str) {
    match node {
        Value::Object(map) => {
            if let Some(props) = map.get("properties").and_then(Value::as_object) {
                let mut required: Vec<&str> = map
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                required.sort_unstable();
                let mut keys: Vec<&str> = props.keys().map(String::as_str).collect();
                keys.sort_unstable();
                assert_eq!(required, keys, "{path}: required must list every property");
                assert_eq!(
                    map.get("additionalProperties"),
                    Some(&Value::Bool(false)),
                    "{path}: additionalProperties must be false"
                );
            }
            for (k, v) in map {
                assert_closed_objects(v, &format!("{path}/{k}"));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                assert_closed_objects(v, &format!("{path}/{i}"));
            }
        }
        _ => {}
    }
}

#[test]
fn schema_and_summary_model_name_the_same_fields() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_closed_objects(&schema, "#");
    let full = serde_json::to_value(full_summary()).expect("serialize a summary");
    let errors = validate(&schema, &schema, &full, "summary");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // And with the optional parts absent.
    let mut bare = full_summary();
    bare.reconciliation = None;
    bare.slo[0].value = None;
    bare.operations.clear();
    bare.profile = None;
    let bare = serde_json::to_value(bare).expect("serialize a summary");
    let errors = validate(&schema, &schema, &bare, "summary");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Summaries written before profiles (`chatcap.summary/1`, no `profile` key) still read.
#[test]
fn a_version_1_summary_still_reads() {
    let mut v = serde_json::to_value(full_summary()).expect("serialize a summary");
    let obj = v.as_object_mut().expect("an object");
    obj.remove("profile");
    obj.insert("schema".into(), Value::from("chatcap.summary/1"));
    let s: Summary = serde_json::from_value(v).expect("a version 1 summary reads");
    assert_eq!(s.profile, None);
}

#[test]
fn the_validator_reports_what_breaks_the_schema() {
    let schema = schema();
    let mut v = serde_json::to_value(full_summary()).expect("serialize a summary");
    v["users"]["peak"] = Value::from(-1);
    v["operations"]["post_ack"]["extra"] = Value::from(1);
    v["ending"] = Value::from("maybe");
    v["machine"]
        .as_object_mut()
        .expect("an object")
        .remove("cores");
    v["slo"][0]["value"] = Value::from("fast");
    let errors = validate(&schema, &schema, &v, "summary").join("\n");
    for want in [
        "summary.users.peak: -1 is below 0",
        "summary.operations.post_ack.extra: not allowed",
        "summary.ending: \"maybe\" is not one of",
        "summary.machine: required key `cores` is missing",
        "summary.slo[0].value: \"fast\" is not of type",
    ] {
        assert!(errors.contains(want), "missing {want:?} in:\n{errors}");
    }
}
