//! Hardware profile files (`scenarios/profiles/*.toml`): read in two stages, the file as
//! written and the validated [`Profile`], with every problem located as
//! `file:line: field: message` (the same located errors as scenario and topology files).
//! It only reads and checks; applying a profile is `confine`'s job (above this module).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::cpus::CpuList;
use crate::scenario::span::{self, FieldPath, FileError, Problem, Source};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    description: String,
    cpus: Option<String>,
    cpu_quota: Option<f64>,
    memory: Option<String>,
    worker_threads: Option<i64>,
}

/// A validated hardware profile: the limits the system under test runs within.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Short name (results folders and cgroups are named after it).
    pub name: String,
    /// What it stands for.
    pub description: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// CPUs the servers may run on.
    pub cpus: Option<CpuList>,
    /// CPU time, in CPUs (0.5 = half of one CPU's time).
    pub cpu_quota: Option<f64>,
    /// Memory limit of the servers together, bytes.
    pub memory_bytes: Option<u64>,
    /// Worker threads of each server process, as written.
    pub worker_threads: Option<usize>,
}

/// Smallest memory limit accepted: a server does not start in less.
pub const MIN_MEMORY: u64 = 32 * 1024 * 1024;

/// Quota bounds, in CPUs (the kernel's smallest quota is 1 ms per 100 ms period).
const QUOTA_RANGE: std::ops::RangeInclusive<f64> = 0.01..=1024.0;

impl Profile {
    /// Read and validate a profile file.
    pub fn load(path: &Path) -> Result<Profile, FileError> {
        let text = span::read("profile", path)?;
        Self::parse(&text, path)
    }

    /// Validate profile `text`, as if read from `file`.
    pub fn parse(text: &str, file: &Path) -> Result<Profile, FileError> {
        let src = Source::new(file, text);
        let raw: RawProfile =
            toml::from_str(text).map_err(|e| FileError::Syntax(src.syntax_problem(&e)))?;
        validate(raw, &src)
    }

    /// Worker threads for each server: as written, or matched to the CPU limit (the number
    /// of CPUs in the set, or the quota rounded up), or `None` (the server's default).
    pub fn threads(&self) -> Option<usize> {
        if self.worker_threads.is_some() {
            return self.worker_threads;
        }
        let from_quota = self.cpu_quota.map(|q| (q.ceil() as usize).max(1));
        let from_set = self.cpus.as_ref().map(CpuList::len);
        match (from_quota, from_set) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// CPUs of computing the profile asks for: the quota or the set's size, the smaller
    /// (`None`: no CPU limit).
    pub fn cpu_capacity(&self) -> Option<f64> {
        let set = self.cpus.as_ref().map(|l| l.len() as f64);
        match (self.cpu_quota, set) {
            (Some(q), Some(s)) => Some(q.min(s)),
            (q, s) => q.or(s),
        }
    }

    /// The profile `arg` names: a file, or a name looked up as `scenarios/profiles/NAME.toml`
    /// (from the working folder), then as `profiles/NAME.toml` beside the scenario file or
    /// in its parent folder.
    pub fn find(arg: &str, scenario: &Path) -> Result<PathBuf, String> {
        let direct = PathBuf::from(arg);
        if direct.is_file() {
            return Ok(direct);
        }
        let file = format!("{arg}.toml");
        let mut candidates = vec![Path::new("scenarios/profiles").join(&file)];
        if let Some(dir) = scenario.parent() {
            candidates.push(dir.join("profiles").join(&file));
            if let Some(up) = dir.parent() {
                candidates.push(up.join("profiles").join(&file));
            }
        }
        if let Some(found) = candidates.iter().find(|c| c.is_file()) {
            return Ok(found.clone());
        }
        let known = candidates
            .iter()
            .filter_map(|c| c.parent())
            .find(|d| d.is_dir())
            .map(|d| format!(" (profiles in {}: {})", d.display(), names_in(d).join(", ")))
            .unwrap_or_default();
        Err(format!(
            "no profile {arg:?}: not a file, nor scenarios/profiles/{file}{known}"
        ))
    }
}

/// The profile names (file stems) in a folder, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    names
}

fn validate(raw: RawProfile, src: &Source<'_>) -> Result<Profile, FileError> {
    let root = FieldPath::root();
    let mut problems: Vec<Problem> = Vec::new();
    let mut bad = |field: &str, msg: String| problems.push(src.problem(&root.key(field), msg));

    let name_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    if raw.name.is_empty() || raw.name.len() > 40 || !raw.name.chars().all(name_ok) {
        bad(
            "name",
            "must be 1–40 letters, digits, '-', '_' or '.' (it names folders and cgroups)".into(),
        );
    }
    let cpus = raw.cpus.as_deref().and_then(|text| {
        let list = CpuList::parse(text);
        if list.is_none() {
            bad(
                "cpus",
                format!("{text:?} is not a CPU list such as \"0\", \"0-1\" or \"0,2-3\""),
            );
        }
        list
    });
    if let Some(q) = raw.cpu_quota {
        if !q.is_finite() || !QUOTA_RANGE.contains(&q) {
            bad(
                "cpu_quota",
                format!("must be 0.01–1024 CPUs (0.5 = half of one CPU's time), not {q}"),
            );
        } else if let Some(set) = cpus.as_ref().filter(|s| q > s.len() as f64) {
            bad(
                "cpu_quota",
                format!(
                    "{q} CPUs cannot be used on the {} CPU(s) of cpus = \"{set}\"",
                    set.len()
                ),
            );
        }
    }
    let memory_bytes = raw
        .memory
        .as_deref()
        .and_then(|text| match parse_bytes(text) {
            Some(b) if b >= MIN_MEMORY => Some(b),
            Some(_) => {
                bad(
                    "memory",
                    format!("{text:?} is below the 32MiB a server needs"),
                );
                None
            }
            None => {
                bad(
                    "memory",
                    format!("{text:?} is not a size such as \"512MiB\", \"1GiB\" or \"1.5GiB\""),
                );
                None
            }
        });
    let worker_threads = match raw.worker_threads {
        Some(n) if (1..=1024).contains(&n) => Some(n as usize),
        Some(n) => {
            bad("worker_threads", format!("must be 1–1024, not {n}"));
            None
        }
        None => None,
    };
    if !problems.is_empty() {
        return Err(FileError::Invalid(problems));
    }
    Ok(Profile {
        name: raw.name,
        description: raw.description,
        file: src.file().to_path_buf(),
        cpus,
        cpu_quota: raw.cpu_quota,
        memory_bytes,
        worker_threads,
    })
}

/// Bytes of a size: a number with an optional unit `B`, `KiB`, `MiB`, `GiB`, `TiB` (powers
/// of 1024) or `KB`, `MB`, `GB`, `TB` (powers of 1000).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0f64.powi(4),
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return None,
    };
    let bytes = n * scale;
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then(|| bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Profile, FileError> {
        Profile::parse(text, Path::new("p.toml"))
    }

    #[test]
    fn a_full_profile_reads() {
        let p = parse(
            "name = \"half\"\ndescription = \"half a CPU\"\ncpus = \"0-1\"\ncpu_quota = 0.5\nmemory = \"1GiB\"\n",
        )
        .expect("valid");
        assert_eq!(
            p.cpus.as_ref().map(ToString::to_string).as_deref(),
            Some("0-1")
        );
        assert_eq!(p.cpu_quota, Some(0.5));
        assert_eq!(p.memory_bytes, Some(1 << 30));
        assert_eq!(p.worker_threads, None);
        assert_eq!(p.threads(), Some(1), "matched to the quota");
    }

    #[test]
    fn threads_follow_the_cpu_limit_unless_given() {
        let p = parse("name = \"a\"\ndescription = \"\"\ncpus = \"0-3\"\n").expect("valid");
        assert_eq!(p.threads(), Some(4));
        let p = parse("name = \"a\"\ndescription = \"\"\ncpu_quota = 1\nworker_threads = 3\n")
            .expect("valid");
        assert_eq!(p.threads(), Some(3));
        let p = parse("name = \"a\"\ndescription = \"\"\n").expect("valid");
        assert_eq!(p.threads(), None);
    }

    #[test]
    fn problems_name_file_line_and_field() {
        let text = "name = \"x\"\ndescription = \"d\"\ncpus = \"2-1\"\ncpu_quota = 0\nmemory = \"lots\"\nworker_threads = 0\n";
        let err = parse(text).expect_err("invalid");
        let lines: Vec<String> = err.problems().iter().map(|p| p.to_string()).collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].starts_with("p.toml:3: cpus: "), "{lines:?}");
        assert!(lines[1].starts_with("p.toml:4: cpu_quota: "), "{lines:?}");
        assert!(lines[2].starts_with("p.toml:5: memory: "), "{lines:?}");
        assert!(
            lines[3].starts_with("p.toml:6: worker_threads: "),
            "{lines:?}"
        );
    }

    #[test]
    fn unknown_keys_and_missing_fields_are_located() {
        let err = parse("name = \"x\"\ndescription = \"d\"\ncpu = \"0\"\n").expect_err("bad");
        assert!(err.to_string().starts_with("p.toml:3: cpu: "), "{err}");
        let err = parse("name = \"x\"\n").expect_err("bad");
        assert!(err.to_string().contains("description"), "{err}");
    }

    #[test]
    fn a_quota_larger_than_the_set_is_refused() {
        let err = parse("name = \"x\"\ndescription = \"\"\ncpus = \"0\"\ncpu_quota = 2\n")
            .expect_err("bad");
        assert!(
            err.to_string().starts_with("p.toml:4: cpu_quota: "),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_profiles_are_valid_and_found_by_name() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/profiles");
        let names = names_in(&dir);
        assert!(names.len() >= 4, "{names:?}");
        let scenario = dir.with_file_name("quickstart.toml");
        for name in names {
            let file = Profile::find(&name, &scenario).expect("found by name");
            let p = Profile::load(&file).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.name, name, "{}: name and file differ", file.display());
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("1.5GiB"), Some(3 << 29));
        assert_eq!(parse_bytes("2 GB"), Some(2_000_000_000));
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("1 furlong"), None);
        assert_eq!(parse_bytes("MiB"), None);
    }
}
