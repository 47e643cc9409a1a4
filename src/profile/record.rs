//! What a run records of its hardware profile (`summary.json`'s `profile`): the limits
//! asked for, and for each how it was applied (cgroup v2, cgroup v1, CPU affinity, a server
//! flag) or why it was not, and which server processes were confirmed inside the limits.
//! Plain data, read back by `compare` and capacity tools; rendering is a few lines here.

use serde::{Deserialize, Serialize};

use super::file::Profile;

/// How a limit was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A child group in the unified (v2) hierarchy.
    CgroupV2,
    /// A child group in the controller's v1 hierarchy.
    CgroupV1,
    /// `sched_setaffinity` on each server process before it starts.
    Affinity,
    /// A `chatcap serve` flag (`--worker-threads`).
    Flag,
    /// Not applied: the run went on without it (see `note`).
    NotApplied,
}

impl Method {
    /// How it reads in a report.
    pub fn label(self) -> &'static str {
        match self {
            Method::CgroupV2 => "cgroup v2",
            Method::CgroupV1 => "cgroup v1",
            Method::Affinity => "CPU affinity",
            Method::Flag => "server flag",
            Method::NotApplied => "NOT APPLIED",
        }
    }
}

/// One limit of the profile and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitRecord {
    /// `cpus`, `cpu_quota`, `memory` or `worker_threads`.
    pub limit: String,
    /// As asked, readable (`0-1`, `0.5 CPU`, `1.0 GiB`, `2`).
    pub asked: String,
    /// How it was applied.
    pub how: Method,
    /// What the system holds now, read back where it can be (the limit file's content,
    /// the CPU list, the flag's value); `null` when not applied.
    pub applied: Option<String>,
    /// The cgroup folder written (none for affinity, a flag, or a limit not applied).
    pub path: Option<String>,
    /// Why this method rather than a better one, or why the limit was not applied.
    pub note: Option<String>,
}

/// A server process the profile was meant to confine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfinedProcess {
    /// Its name in `resources` (`server`, `frontend-1`, a pool member's name).
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// Checked inside every applied limit (its `/proc/PID/cgroup` and CPU affinity).
    pub confined: bool,
}

/// The hardware profile of a run, as applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// The profile's name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The file it was read from.
    pub file: String,
    /// CPUs asked for (CPU list).
    pub cpus: Option<String>,
    /// CPU time asked for, in CPUs.
    pub cpu_quota: Option<f64>,
    /// Memory limit asked for, bytes.
    pub memory_bytes: Option<u64>,
    /// Worker threads per server process (as written, or matched to the CPU limit).
    pub worker_threads: Option<u64>,
    /// Each limit and how it was applied.
    pub limits: Vec<LimitRecord>,
    /// The cgroup folders the run made (removed at its end).
    pub cgroups: Vec<String>,
    /// The server processes started inside the limits.
    pub processes: Vec<ConfinedProcess>,
}

/// `1.0 GiB`, `512 MiB`.
pub fn size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= 1024.0 * MIB {
        format!("{:.1} GiB", b / (1024.0 * MIB))
    } else {
        format!("{:.0} MiB", b / MIB)
    }
}

impl ProfileRecord {
    /// The asked limits of `profile`, with nothing applied yet.
    pub fn asked(profile: &Profile) -> ProfileRecord {
        ProfileRecord {
            name: profile.name.clone(),
            description: profile.description.clone(),
            file: profile.file.display().to_string(),
            cpus: profile.cpus.as_ref().map(ToString::to_string),
            cpu_quota: profile.cpu_quota,
            memory_bytes: profile.memory_bytes,
            worker_threads: profile.threads().map(|n| n as u64),
            limits: Vec::new(),
            cgroups: Vec::new(),
            processes: Vec::new(),
        }
    }

    /// Every limit of `profile` recorded as not applied, for `reason` (a target this run
    /// did not start).
    pub fn not_applied(profile: &Profile, reason: &str) -> ProfileRecord {
        let mut r = Self::asked(profile);
        for (limit, asked) in asked_limits(profile) {
            r.limits.push(LimitRecord {
                limit: limit.into(),
                asked,
                how: Method::NotApplied,
                applied: None,
                path: None,
                note: Some(reason.to_string()),
            });
        }
        r
    }

    /// The limits that were not applied.
    pub fn missed(&self) -> impl Iterator<Item = &LimitRecord> {
        self.limits.iter().filter(|l| l.how == Method::NotApplied)
    }

    /// CPUs of computing the servers had, by the limits actually applied (`None`: not
    /// limited). Capacity per core divides by this.
    pub fn cpu_capacity(&self) -> Option<f64> {
        let applied = |name: &str| {
            self.limits
                .iter()
                .any(|l| l.limit == name && l.how != Method::NotApplied)
        };
        let quota = self.cpu_quota.filter(|_| applied("cpu_quota"));
        let set = self
            .cpus
            .as_deref()
            .filter(|_| applied("cpus"))
            .and_then(super::cpus::CpuList::parse)
            .map(|l| l.len() as f64);
        match (quota, set) {
            (Some(q), Some(s)) => Some(q.min(s)),
            (q, s) => q.or(s),
        }
    }

    /// The profile as Markdown lines for `summary.md`: one per limit, and a plain warning
    /// when any limit was not applied or a process was not confirmed inside.
    pub fn markdown(&self) -> String {
        let mut out = format!("Profile **{}** ({}):\n\n", self.name, self.file);
        if self.limits.is_empty() {
            out += "- no limits: the servers ran on the whole machine\n";
        }
        for l in &self.limits {
            let detail = match (&l.applied, &l.path) {
                (Some(v), Some(p)) => format!(" — `{v}` in {p}"),
                (Some(v), None) => format!(" — `{v}`"),
                _ => String::new(),
            };
            let note = l
                .note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            out += &format!(
                "- {} {}: {}{detail}{note}\n",
                l.limit,
                l.asked,
                l.how.label()
            );
        }
        let missed: Vec<&str> = self.missed().map(|l| l.limit.as_str()).collect();
        if !missed.is_empty() {
            out += &format!(
                "\n**Not applied: {}.** The servers ran without {}; compare these figures with that in mind.\n",
                missed.join(", "),
                if missed.len() == 1 { "this limit" } else { "these limits" }
            );
        }
        let outside: Vec<&str> = self
            .processes
            .iter()
            .filter(|p| !p.confined)
            .map(|p| p.name.as_str())
            .collect();
        if !outside.is_empty() {
            out += &format!(
                "\n**Not confirmed inside the limits: {}.**\n",
                outside.join(", ")
            );
        }
        out
    }
}

/// (limit, readable value) of every limit a profile asks for, worker threads last.
pub fn asked_limits(p: &Profile) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(c) = &p.cpus {
        v.push(("cpus", c.to_string()));
    }
    if let Some(q) = p.cpu_quota {
        v.push(("cpu_quota", format!("{q} CPU")));
    }
    if let Some(m) = p.memory_bytes {
        v.push(("memory", size(m)));
    }
    if let Some(n) = p.threads() {
        v.push(("worker_threads", n.to_string()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn profile(text: &str) -> Profile {
        Profile::parse(text, Path::new("p.toml")).expect("valid profile")
    }

    #[test]
    fn a_target_not_started_here_records_every_limit_as_missed() {
        let p = profile("name = \"h\"\ndescription = \"\"\ncpu_quota = 0.5\nmemory = \"1GiB\"\n");
        let r = ProfileRecord::not_applied(&p, "the target was not started by this run");
        let names: Vec<&str> = r.missed().map(|l| l.limit.as_str()).collect();
        assert_eq!(names, ["cpu_quota", "memory", "worker_threads"]);
        assert_eq!(r.cpu_capacity(), None);
        let md = r.markdown();
        assert!(
            md.contains("**Not applied: cpu_quota, memory, worker_threads.**"),
            "{md}"
        );
        assert!(md.contains("memory 1.0 GiB: NOT APPLIED"), "{md}");
    }

    #[test]
    fn capacity_counts_only_applied_cpu_limits() {
        let p = profile("name = \"h\"\ndescription = \"\"\ncpus = \"0-1\"\ncpu_quota = 1.5\n");
        let mut r = ProfileRecord::asked(&p);
        for (limit, asked) in asked_limits(&p) {
            r.limits.push(LimitRecord {
                limit: limit.into(),
                asked,
                how: Method::CgroupV1,
                applied: None,
                path: None,
                note: None,
            });
        }
        assert_eq!(r.cpu_capacity(), Some(1.5));
        r.limits[1].how = Method::NotApplied;
        assert_eq!(r.cpu_capacity(), Some(2.0));
        let json = serde_json::to_string(&r).expect("serialises");
        assert!(json.contains("\"how\":\"cgroup_v1\""), "{json}");
    }
}
