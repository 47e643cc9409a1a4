//! SLO thresholds as written in `[slo]` (`"post_ack.p99" = "< 50ms"`) → [`Slo`]. Checks the
//! metric's syntax and that the unit fits the metric (a time for percentiles, none or `%`
//! otherwise); which metrics exist is the report's business, not this module's.

use super::plan::{Cmp, Slo};

/// Whether `metric` is a latency statistic (`….p99`, `….p999`, `….max`, `….mean`, `….min`).
pub fn is_latency(metric: &str) -> bool {
    let last = metric.rsplit('.').next().unwrap_or(metric);
    matches!(last, "max" | "mean" | "min")
        || (last.len() > 1
            && last.starts_with('p')
            && last[1..].chars().all(|c| c.is_ascii_digit()))
}

/// Checks a metric path's syntax: lowercase words joined by dots.
pub fn check_name(metric: &str) -> Result<(), String> {
    let syntax_ok = !metric.is_empty()
        && metric.split('.').all(|seg| {
            seg.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && seg
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if syntax_ok {
        Ok(())
    } else {
        Err(format!(
            "`{metric}` is not a metric name: lowercase words joined by dots, e.g. post_ack.p99, delivery.lost, error_rate"
        ))
    }
}

/// The number ≥ 0 at the start of `rest` and the unit after it (`""`, `%`, `ms`…), as in
/// `50ms` or `2.5 %`; errors quote the whole `value`.
pub fn number_and_unit<'a>(value: &str, rest: &'a str) -> Result<(f64, &'a str), String> {
    let split = rest
        .find(|c: char| c.is_alphabetic() || c == '%')
        .unwrap_or(rest.len());
    let (num, unit) = (rest[..split].trim(), rest[split..].trim());
    let n = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("`{value}`: `{num}` is not a number ≥ 0"))?;
    Ok((n, unit))
}

/// Parses one `[slo]` entry.
pub fn parse(metric: &str, value: &str) -> Result<Slo, String> {
    check_name(metric)?;
    let v = value.trim();
    let (cmp, rest) = [
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("==", Cmp::Eq),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
    ]
    .into_iter()
    .find_map(|(op, cmp)| v.strip_prefix(op).map(|rest| (cmp, rest.trim())))
    .ok_or_else(|| {
        format!("`{value}`: start with a comparison (<, <=, >, >=, ==), e.g. \"< 50ms\"")
    })?;
    let (n, unit) = number_and_unit(value, rest)?;
    let latency = is_latency(metric);
    let threshold = match unit {
        "us" | "µs" if latency => n,
        "ms" if latency => n * 1e3,
        "s" if latency => n * 1e6,
        "" if latency => {
            return Err(format!(
                "`{value}`: `{metric}` is a latency; give a unit: us, ms or s"
            ));
        }
        "%" if latency => {
            return Err(format!(
                "`{value}`: `{metric}` is a latency; give a unit: us, ms or s"
            ));
        }
        "us" | "µs" | "ms" | "s" => {
            return Err(format!(
                "`{value}`: `{metric}` is not a latency, so it takes no time unit"
            ));
        }
        "%" => n / 100.0,
        "" => n,
        other => return Err(format!("`{value}`: unknown unit `{other}` (us, ms, s, %)")),
    };
    Ok(Slo {
        text: format!("{metric} {v}"),
        metric: metric.to_string(),
        cmp,
        threshold,
    })
}
