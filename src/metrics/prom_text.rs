//! The Prometheus text exposition format (version 0.0.4), read: `# HELP` and `# TYPE`
//! lines, samples with their labels (escaped `\\`, `\"` and `\n` in values), values such
//! as `NaN` and `+Inf`, and an optional timestamp (ignored). Also the canonical spelling
//! of a label set (`a="x",b="y"`), which `server_metrics.csv` stores and reads back.
//!
//! Pure text in, typed values out: no I/O here.

use std::collections::BTreeMap;

/// What a `# TYPE` line declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram` (`_bucket`, `_sum`, `_count` samples)
    Histogram,
    /// `summary` (quantile samples, `_sum`, `_count`)
    Summary,
    /// `untyped`, or a type this reader does not know
    Untyped,
}

/// What the `# HELP` and `# TYPE` lines say about one family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FamilyInfo {
    /// The help text, unescaped.
    pub help: Option<String>,
    /// The declared type.
    pub kind: Option<MetricType>,
}

/// Label (name, value) pairs in the order written, values unescaped.
pub type Labels = Vec<(String, String)>;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (a histogram's `x_sum`, not `x`).
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// The families that have a `# HELP` or `# TYPE` line, by name.
    pub families: BTreeMap<String, FamilyInfo>,
}

/// A line that is not valid exposition text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

impl Exposition {
    /// The declared type of the family a sample belongs to (`x_sum` of histogram `x` is
    /// a histogram sample); `None` when its family has no `# TYPE`.
    pub fn kind_of(&self, sample: &str) -> Option<MetricType> {
        let declared = |n: &str| self.families.get(n).and_then(|f| f.kind);
        if let Some(k) = declared(sample) {
            return Some(k);
        }
        ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| sample.strip_suffix(s))
            .filter_map(declared)
            .find(|k| matches!(k, MetricType::Histogram | MetricType::Summary))
    }
}

/// Parse a whole exposition.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut out = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err = |what: String| ParseError { line: i + 1, what };
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, [' ', '\t']);
            let keyword = words.next().unwrap_or("");
            let (Some(name), rest) = (words.next(), words.next().unwrap_or("")) else {
                continue;
            };
            match keyword {
                "HELP" => {
                    out.families.entry(name.into()).or_default().help = Some(unescape_help(rest))
                }
                "TYPE" => {
                    let kind = match rest.trim() {
                        "counter" => MetricType::Counter,
                        "gauge" => MetricType::Gauge,
                        "histogram" => MetricType::Histogram,
                        "summary" => MetricType::Summary,
                        "untyped" => MetricType::Untyped,
                        other => return Err(err(format!("unknown type {other:?}"))),
                    };
                    out.families.entry(name.into()).or_default().kind = Some(kind);
                }
                // Any other comment is free text.
                _ => {}
            }
            continue;
        }
        out.samples.push(sample(line).map_err(err)?);
    }
    Ok(out)
}

/// One sample line: `name[{labels}] value [timestamp]`.
fn sample(line: &str) -> Result<Sample, String> {
    let name_len = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_len];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("no metric name at the start of {line:?}"));
    }
    let mut rest = &line[name_len..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.trim_start().strip_prefix('{') {
        let (parsed, after) = label_list(inner)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| format!("{name} has no value"))?;
    let value = parse_value(value).ok_or_else(|| format!("{name}: {value:?} is not a number"))?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("{name}: timestamp {ts:?} is not an integer"))?;
    }
    if let Some(extra) = fields.next() {
        return Err(format!("{name}: unexpected {extra:?} after the value"));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// A sample value: a float, or `NaN`, `+Inf`, `-Inf` (any case, `Inf` unsigned too).
fn parse_value(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "+inf" | "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// The labels after `{`, up to and including the closing `}`; returns them and the text
/// after the brace.
fn label_list(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("a label without `=`")?;
        let key = s[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad label name {key:?}"));
        }
        let quoted = s[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("label {key}: value not in double quotes"))?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    Some((_, c)) => return Err(format!("label {key}: unknown escape \\{c}")),
                    None => return Err(format!("label {key}: unterminated value")),
                },
                Some((_, c)) => value.push(c),
                None => return Err(format!("label {key}: unterminated value")),
            }
        };
        labels.push((key.to_string(), value));
        s = quoted[end + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err(format!("after label {key}: expected `,` or `}}`"));
        }
    }
}

/// `# HELP` text escapes only `\\` and `\n`.
fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('n')) => {
                out.push('\n');
                chars.next();
            }
            ('\\', Some('\\')) => {
                out.push('\\');
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// A label set in its canonical spelling: `a="x",b="y"` in the order given, values
/// escaped as in the exposition format; empty for no labels.
pub fn format_labels(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Read back a label set spelt by [`format_labels`].
pub fn parse_labels(s: &str) -> Result<Labels, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    match label_list(&format!("{s}}}"))? {
        (labels, "") => Ok(labels),
        (_, rest) => Err(format!("unexpected {rest:?} after the labels")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real text from the server's `/metrics` (metrics-exporter-prometheus), plus the
    /// corners of the format: escapes, NaN, infinities, timestamps, histograms.
    const TEXT: &str = r#"# HELP chatcap_requests_total Requests handled by the chat core, by operation.
# TYPE chatcap_requests_total counter
chatcap_requests_total{op="post"} 120
chatcap_requests_total{op="join"} 30

# HELP chatcap_sessions Sessions held by the chat server.
# TYPE chatcap_sessions gauge
chatcap_sessions 50

# HELP chatcap_commit_seconds Time spent storing one group-commit batch.
# TYPE chatcap_commit_seconds summary
chatcap_commit_seconds{quantile="0"} 0.000412
chatcap_commit_seconds{quantile="0.99"} 0.0031
chatcap_commit_seconds{quantile="1"} NaN
chatcap_commit_seconds_sum 0.25
chatcap_commit_seconds_count 200
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le="0.1",path="/a\"b\\c\nd"} 3 1700000000000
rpc_seconds_bucket{le="+Inf",path="/a\"b\\c\nd",} 4
rpc_seconds_sum -Inf
rpc_seconds_count 4
# a free comment
untyped_thing +Inf
"#;

    #[test]
    fn reads_help_type_labels_and_values() {
        let e = parse(TEXT).expect("parses");
        assert_eq!(e.samples.len(), 13);
        let req = &e.families["chatcap_requests_total"];
        assert_eq!(req.kind, Some(MetricType::Counter));
        assert_eq!(
            req.help.as_deref(),
            Some("Requests handled by the chat core, by operation.")
        );
        assert_eq!(
            e.samples[0].labels,
            [("op".to_string(), "post".to_string())]
        );
        assert_eq!(e.samples[0].value, 120.0);
        assert_eq!(e.samples[2].name, "chatcap_sessions");
        assert!(e.samples[2].labels.is_empty());
        assert!(e.samples[5].value.is_nan());
        let bucket = &e.samples[8];
        assert_eq!(bucket.labels[1].1, "/a\"b\\c\nd");
        assert_eq!(bucket.value, 3.0);
        assert_eq!(e.samples[9].labels[0].1, "+Inf");
        assert_eq!(e.samples[10].value, f64::NEG_INFINITY);
        assert_eq!(e.samples[11].value, 4.0);
        assert_eq!(e.samples[12].value, f64::INFINITY);
        assert!(!e.families.contains_key("untyped_thing"));
    }

    #[test]
    fn sums_and_counts_belong_to_their_family() {
        let e = parse(TEXT).expect("parses");
        assert_eq!(
            e.kind_of("chatcap_commit_seconds_sum"),
            Some(MetricType::Summary)
        );
        assert_eq!(e.kind_of("rpc_seconds_bucket"), Some(MetricType::Histogram));
        assert_eq!(
            e.kind_of("chatcap_requests_total"),
            Some(MetricType::Counter)
        );
        assert_eq!(e.kind_of("untyped_thing"), None);
        // A counter's `_count`-looking name is not a summary sample.
        assert_eq!(e.kind_of("chatcap_sessions_count"), None);
    }

    #[test]
    fn help_escapes_are_undone() {
        let e = parse("# HELP x a \\\\ and\\nnext\n# TYPE x gauge\nx 1\n").expect("parses");
        assert_eq!(e.families["x"].help.as_deref(), Some("a \\ and\nnext"));
    }

    #[test]
    fn empty_text_is_an_empty_exposition() {
        assert_eq!(parse("").expect("parses"), Exposition::default());
        assert_eq!(parse("\n\n").expect("parses").samples.len(), 0);
    }

    #[test]
    fn malformed_lines_are_named() {
        for (text, line, what) in [
            ("x 1\ny\n", 2, "has no value"),
            ("x{a=\"1\"} one\n", 1, "not a number"),
            ("x{a=1} 2\n", 1, "double quotes"),
            ("x{a=\"1} 2\n", 1, "unterminated"),
            ("x{a=\"\\t\"} 2\n", 1, "unknown escape"),
            ("x{a=\"1\" b=\"2\"} 2\n", 1, "expected `,`"),
            ("x 1 2 3\n", 1, "unexpected"),
            ("x 1 soon\n", 1, "timestamp"),
            ("{a=\"1\"} 2\n", 1, "no metric name"),
            ("# TYPE x gauges\n", 1, "unknown type"),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!(e.line, line, "{text}");
            assert!(e.what.contains(what), "{text}: {e}");
        }
    }

    #[test]
    fn label_sets_round_trip() {
        let labels = vec![
            ("code".to_string(), "busy".to_string()),
            ("path".to_string(), "a,b=\"c\"\\\nd".to_string()),
        ];
        let text = format_labels(&labels);
        assert_eq!(text, r#"code="busy",path="a,b=\"c\"\\\nd""#);
        assert_eq!(parse_labels(&text).expect("reads back"), labels);
        assert_eq!(format_labels(&[]), "");
        assert_eq!(parse_labels("").expect("empty"), Vec::new());
        assert!(parse_labels("a=\"1\"} junk").is_err());
    }
}
