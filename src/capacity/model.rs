//! `capacity.json`: the searches (every step, the supported users, what bound each) and the
//! capacity model fitted from their steps — users per core, memory and CPU per user per
//! role, deliveries/s per core, database bytes per message and per day — each with how it
//! grows with users (least squares over the passing steps, R²). Schema:
//! `reports/schema/capacity.schema.json`. `plan` reads this file; nothing here runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bound::{self, Bound, Knee};
use super::fit::{least_squares, median, Fit};
use super::search::{Mode, Stop};
use super::step::Step;
use crate::report::figures::role;

/// Schema identifier of `capacity.json`.
pub const SCHEMA: &str = "chatcap.capacity/1";

/// One search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// Supported users: the highest passing step (`None`: even the first step failed).
    pub supported_users: Option<u32>,
    /// The lowest failing step.
    pub first_fail_users: Option<u32>,
    /// Why the search stopped.
    pub stop: Stop,
    /// What bound it.
    pub bound: Bound,
    /// The steps, in the order run.
    pub steps: Vec<Step>,
}

impl SearchResult {
    /// A search's result from its steps (`stop` as the search ended).
    pub fn of(steps: Vec<Step>, stop: Stop) -> SearchResult {
        let supported = steps.iter().filter(|s| s.passed()).map(|s| s.users).max();
        let fail = steps
            .iter()
            .filter(|s| {
                matches!(
                    s.verdict,
                    super::step::Verdict::Fail | super::step::Verdict::Error
                )
            })
            .filter(|s| supported.is_none_or(|p| s.users > p))
            .min_by_key(|s| s.users);
        SearchResult {
            supported_users: supported,
            first_fail_users: fail.map(|s| s.users),
            stop,
            bound: bound::bound(fail),
            steps,
        }
    }
}

/// Supported users over the repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confidence {
    /// Each search's supported users (0: none passed).
    pub values: Vec<u32>,
    /// Median.
    pub median: f64,
    /// Lowest and highest.
    pub min: u32,
    /// See `min`.
    pub max: u32,
    /// (max − min) ÷ median, as a fraction.
    pub spread: f64,
}

/// The capacity model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Supported users the model is scaled from (the median of the searches).
    pub supported_users: f64,
    /// CPUs the servers had.
    pub cpus: f64,
    /// `profile` (its CPU limit) or `machine` (every core: no CPU limit).
    pub cpus_from: String,
    /// Supported users ÷ CPUs.
    pub users_per_core: f64,
    /// Connections per user (endpoints).
    pub connections_per_user: f64,
    /// Deliveries per second at the highest passing step ÷ CPUs.
    pub deliveries_per_s_per_core: f64,
    /// Per role: resident memory (all processes of the role summed), bytes, against users.
    pub memory_per_user: BTreeMap<String, Fit>,
    /// Per role: CPU (cores, summed) against users.
    pub cpu_per_user: BTreeMap<String, Fit>,
    /// Processes of each role.
    pub processes_per_role: BTreeMap<String, u32>,
    /// Database growth per acknowledged post, bytes (`None`: no database measured).
    pub db_bytes_per_message: Option<f64>,
    /// Posts per user per second, the scenario's rate as measured.
    pub messages_per_user_per_s: f64,
    /// Database growth per day at the supported users and the scenario's rates, bytes.
    pub db_bytes_per_day: Option<f64>,
    /// Other figures against users: `deliveries_per_s`, `posts_per_s`, `<op>.p99_us`.
    pub growth: BTreeMap<String, Fit>,
    /// Open-file limit of one process where measured.
    pub fd_limit: u64,
    /// Logical cores of the measuring machine (where the generator ran).
    pub machine_cores: u64,
}

/// The whole `capacity.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityFile {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file (or the results folders a model was built from).
    pub source: String,
    /// Hardware profile name (`None`: unlimited).
    pub profile: Option<String>,
    /// `stepped`, `feedback`, or `None` for a model built from existing results.
    pub mode: Option<Mode>,
    /// Feedback tolerance.
    pub tolerance: Option<f64>,
    /// Start, RFC 3339.
    pub started_at: String,
    /// Whether Ctrl-C stopped it (the figures are what was found until then).
    pub interrupted: bool,
    /// Each search.
    pub searches: Vec<SearchResult>,
    /// Supported users over the searches.
    pub supported: Confidence,
    /// What bound the search whose figure is nearest the median.
    pub bound: Bound,
    /// The knee of latency against users, over every step.
    pub knee: Option<Knee>,
    /// The model.
    pub model: Model,
}

/// The operation whose p99 draws the chart and finds the knee: the first failed latency
/// objective's, else post→ack.
pub fn key_operation(steps: &[Step]) -> String {
    steps
        .iter()
        .flat_map(|s| s.failed.iter())
        .filter_map(|f| f.text.split(' ').next())
        .filter(|metric| crate::scenario::slo::is_latency(metric))
        .filter_map(|metric| metric.split('.').next())
        .map(str::to_string)
        .next()
        .unwrap_or_else(|| "post_ack".into())
}

/// Build the file from the searches.
pub fn build(
    scenario: String,
    source: String,
    mode: Option<Mode>,
    tolerance: Option<f64>,
    started_at: String,
    interrupted: bool,
    searches: Vec<SearchResult>,
) -> CapacityFile {
    let values: Vec<u32> = searches
        .iter()
        .map(|s| s.supported_users.unwrap_or(0))
        .collect();
    let as_f: Vec<f64> = values.iter().map(|v| *v as f64).collect();
    let med = median(&as_f).unwrap_or(0.0);
    let (min, max) = (
        values.iter().copied().min().unwrap_or(0),
        values.iter().copied().max().unwrap_or(0),
    );
    let nearest = searches
        .iter()
        .min_by(|a, b| {
            let d = |s: &SearchResult| (s.supported_users.unwrap_or(0) as f64 - med).abs();
            d(a).total_cmp(&d(b))
        })
        .map(|s| s.bound.clone())
        .unwrap_or_else(|| bound::bound(None));
    let steps: Vec<Step> = searches.iter().flat_map(|s| s.steps.clone()).collect();
    let op = key_operation(&steps);
    let knee = bound::knee(&steps, &op);
    let profile = steps.iter().find_map(|s| s.profile.clone());
    CapacityFile {
        schema: SCHEMA.into(),
        scenario,
        source,
        profile,
        mode,
        tolerance,
        started_at,
        interrupted,
        supported: Confidence {
            values,
            median: med,
            min,
            max,
            spread: if med > 0.0 {
                (max - min) as f64 / med
            } else {
                0.0
            },
        },
        bound: nearest,
        knee,
        model: model(&steps, med),
        searches,
    }
}

/// The model fitted from `steps` at `supported` users.
pub fn model(steps: &[Step], supported: f64) -> Model {
    let passing: Vec<&Step> = steps.iter().filter(|s| s.passed()).collect();
    let measured: Vec<&Step> = steps.iter().filter(|s| s.error.is_none()).collect();
    // Fit over the passing steps; with fewer than two, over every measured one.
    let fit_on: Vec<&Step> = if passing.len() >= 2 {
        passing.clone()
    } else {
        measured.clone()
    };
    let reference = measured.first();
    let cpus = reference
        .map_or(1.0, |s| s.server_cpus())
        .max(f64::MIN_POSITIVE);
    let cpus_from = if reference.is_some_and(|s| s.cpu_capacity.is_some()) {
        "profile"
    } else {
        "machine"
    };
    let top = passing.iter().max_by_key(|s| s.users);
    let mut per_role: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
    let mut processes_per_role: BTreeMap<String, u32> = BTreeMap::new();
    for s in &fit_on {
        let mut sums: BTreeMap<String, (f64, f64, u32)> = BTreeMap::new();
        for (name, p) in &s.processes {
            let e = sums.entry(role(name).to_string()).or_default();
            e.0 += p.rss_bytes as f64;
            e.1 += p.cpu_cores;
            e.2 += 1;
        }
        for (r, (rss, cpu, n)) in sums {
            per_role
                .entry(r.clone())
                .or_default()
                .push((s.users as f64, rss, cpu));
            let slot = processes_per_role.entry(r).or_default();
            *slot = (*slot).max(n);
        }
    }
    let fits = |pick: fn(&(f64, f64, f64)) -> f64| -> BTreeMap<String, Fit> {
        per_role
            .iter()
            .filter_map(|(r, pts)| {
                let xy: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, pick(p))).collect();
                least_squares(&xy).map(|f| (r.clone(), f))
            })
            .collect()
    };
    let line = |f: &dyn Fn(&Step) -> f64| {
        least_squares(
            &fit_on
                .iter()
                .map(|s| (s.users as f64, f(s)))
                .collect::<Vec<_>>(),
        )
    };
    let mut growth = BTreeMap::new();
    for (name, f) in [
        ("deliveries_per_s", line(&|s: &Step| s.deliveries_per_s)),
        ("posts_per_s", line(&|s: &Step| s.posts_per_s)),
    ] {
        if let Some(f) = f {
            growth.insert(name.to_string(), f);
        }
    }
    let ops: Vec<String> = fit_on
        .iter()
        .flat_map(|s| s.p99_us.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for op in ops {
        let pts: Vec<(f64, f64)> = fit_on
            .iter()
            .filter_map(|s| s.p99_us.get(&op).map(|p| (s.users as f64, *p as f64)))
            .collect();
        if let Some(f) = least_squares(&pts) {
            growth.insert(format!("{op}.p99_us"), f);
        }
    }
    let posts: u64 = measured.iter().map(|s| s.posts).sum();
    let db: u64 = measured.iter().map(|s| s.db_growth_bytes).sum();
    let db_bytes_per_message = (posts > 0 && db > 0).then(|| db as f64 / posts as f64);
    let rates: Vec<f64> = fit_on
        .iter()
        .filter(|s| s.users > 0)
        .map(|s| s.posts_per_s / s.users as f64)
        .collect();
    let messages_per_user_per_s = median(&rates).unwrap_or(0.0);
    Model {
        supported_users: supported,
        cpus,
        cpus_from: cpus_from.into(),
        users_per_core: supported / cpus,
        connections_per_user: median(
            &measured
                .iter()
                .filter(|s| s.users > 0)
                .map(|s| s.target_connections as f64 / s.users as f64)
                .collect::<Vec<_>>(),
        )
        .unwrap_or(1.0),
        deliveries_per_s_per_core: top.map_or(0.0, |s| s.deliveries_per_s / cpus),
        memory_per_user: fits(|p| p.1),
        cpu_per_user: fits(|p| p.2),
        processes_per_role,
        db_bytes_per_message,
        messages_per_user_per_s,
        db_bytes_per_day: db_bytes_per_message
            .map(|b| b * messages_per_user_per_s * supported * 86_400.0),
        growth,
        fd_limit: reference.map_or(0, |s| s.fd_limit),
        machine_cores: reference.map_or(0, |s| s.cores),
    }
}
