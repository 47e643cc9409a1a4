//! A scenario scaled to another number of users, as a new scenario file for one step of a
//! search: `population.users` set, every `ramp.to` and `spike.to` (and `step.by`) scaled by
//! the same factor; room sizes, rates per user and objectives as the scenario says. The
//! search may shorten holds, set the sign-in rate and judge objectives on the last phase.
//! Works on the TOML document (comments are not kept); validating is the scenario module's.

use std::path::Path;
use std::time::Duration;

use toml::{Table, Value};

/// What a step changes besides the users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Every hold (and soak) lasts this long.
    pub hold: Option<Duration>,
    /// Every ramp signs users in at this rate (users per second).
    pub ramp_rate: Option<f64>,
    /// Leave out this much of the hold's start when judging objectives (`slo_settle`).
    pub settle: Option<Duration>,
}

/// Why a scenario cannot be scaled.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScaleError {
    /// Not TOML.
    #[error("{file}: not a TOML document: {reason}")]
    Syntax {
        /// The scenario file.
        file: String,
        /// The parser's message.
        reason: String,
    },
    /// No `population.users` to scale from.
    #[error("{file}: population.users: missing or not a positive whole number, so the scenario cannot be scaled")]
    NoUsers {
        /// The scenario file.
        file: String,
    },
}

/// The scenario `text` (read from `file`) scaled to `users`.
pub fn scaled(text: &str, file: &Path, users: u32, o: &Overrides) -> Result<String, ScaleError> {
    let name = file.display().to_string();
    let mut doc: Table = text
        .parse()
        .map_err(|e: toml::de::Error| ScaleError::Syntax {
            file: name.clone(),
            reason: e.message().to_string(),
        })?;
    let base = doc
        .get("population")
        .and_then(|p| p.get("users"))
        .and_then(Value::as_integer)
        .filter(|u| *u > 0)
        .ok_or(ScaleError::NoUsers { file: name })?;
    let factor = users as f64 / base as f64;
    let scale = |v: &mut Value| {
        if let Some(n) = v.as_integer() {
            let s = (n as f64 * factor).round() as i64;
            *v = Value::Integer(if n > 0 { s.max(1) } else { 0 });
        }
    };
    if let Some(Value::Table(p)) = doc.get_mut("population") {
        p.insert("users".into(), Value::Integer(users.into()));
    }
    if let Some(Value::Array(load)) = doc.get_mut("load") {
        for entry in load.iter_mut().filter_map(Value::as_table_mut) {
            for (shape, body) in entry.iter_mut() {
                let Some(body) = body.as_table_mut() else {
                    continue;
                };
                match shape.as_str() {
                    "ramp" => {
                        if let Some(to) = body.get_mut("to") {
                            scale(to);
                        }
                        if let Some(rate) = o.ramp_rate {
                            body.remove("over");
                            body.insert("rate".into(), Value::String(format!("{rate}/s")));
                        }
                    }
                    "spike" => {
                        if let Some(to) = body.get_mut("to") {
                            scale(to);
                        }
                    }
                    "step" => {
                        if let Some(by) = body.get_mut("by") {
                            scale(by);
                        }
                    }
                    "hold" | "soak" => {
                        if let Some(d) = o.hold {
                            body.insert("for".into(), Value::String(secs(d)));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    // Every step is judged on its hold, not on the ramp before it.
    doc.entry("slo_window")
        .or_insert_with(|| Value::String("last_phase".into()));
    if let Some(d) = o.settle {
        doc.insert("slo_settle".into(), Value::String(secs(d)));
    }
    absolute_paths(&mut doc, file);
    if let Some(Value::String(n)) = doc.get_mut("name") {
        *n = format!("{n}-{users}u");
    }
    Ok(toml::to_string(&doc).unwrap_or_default())
}

fn secs(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// The step's copy lives in the search's folder: paths the scenario gives relative to its
/// own folder (a topology, a tokens file) are made absolute.
fn absolute_paths(doc: &mut Table, file: &Path) {
    let dir = file.parent().unwrap_or(Path::new("."));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    if let Some(Value::Table(t)) = doc.get_mut("target") {
        for key in ["path", "tokens"] {
            if let Some(Value::String(p)) = t.get_mut(key) {
                if Path::new(p.as_str()).is_relative() {
                    *p = dir.join(&*p).display().to_string();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    const TEXT: &str = r#"name = "t"
[population]
users = 1000
model = "lync2013"
[behaviour]
model = "lync2013"
[[load]]
ramp = { to = 1000, rate = "10/s" }
[[load]]
hold = { for = "1h" }
[slo]
"post_ack.p99" = "< 50ms"
"#;

    #[test]
    fn users_ramps_and_holds_are_scaled_and_the_copy_validates() {
        let o = Overrides {
            hold: Some(Duration::from_secs(20)),
            ramp_rate: Some(100.0),
            settle: Some(Duration::from_secs(5)),
        };
        let text = scaled(TEXT, Path::new("x/t.toml"), 250, &o).expect("scaled");
        let plan = Scenario::parse(&text, Path::new("y/t-250.toml")).expect("valid");
        assert_eq!(plan.duration(), Duration::from_millis(22_500));
        assert!(
            text.contains("users = 250") && text.contains("to = 250"),
            "{text}"
        );
        assert!(text.contains("slo_window = \"last_phase\""), "{text}");
        assert!(text.contains("name = \"t-250u\""), "{text}");
    }

    #[test]
    fn a_scenario_without_users_is_refused() {
        let e = scaled(
            "name = \"x\"\n",
            Path::new("s.toml"),
            5,
            &Overrides::default(),
        );
        assert_eq!(
            e,
            Err(ScaleError::NoUsers {
                file: "s.toml".into()
            })
        );
    }
}
