//! Applying a hardware profile to the server processes a run starts (never to the load
//! generator): a child cgroup named `chatcap-<pid>-<profile>` below this process's own
//! group, in the unified (v2) hierarchy when it offers the controller, else in that
//! controller's v1 hierarchy; CPU affinity where no cgroup can hold the CPU set (or a whole
//! number of CPUs of quota); and `--worker-threads` on every server. A limit that cannot be
//! applied is recorded as such, with the reason — the run goes on and the report says so.
//!
//! A process enters the groups between fork and exec (it writes `0`, "myself", to each
//! group's `cgroup.procs`, opened beforehand), so it is charged from its first instruction
//! and its threads inherit the affinity. The groups are removed when the [`Confinement`] is
//! dropped — the end of the run, an error, or Ctrl-C — after killing anything left inside;
//! groups left by a run that was killed outright are removed by the next one.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cgroup::{parse_proc_cgroup, v2_controllers, Hierarchies, Place};
use super::cpus::CpuList;
use super::file::Profile;
use super::record::{size, ConfinedProcess, LimitRecord, Method, ProfileRecord};

/// The CFS period used for quotas, µs (the kernel's default).
const PERIOD_US: u64 = 100_000;

/// How long removing a group may take (killing what is left inside first).
const REMOVE_WITHIN: Duration = Duration::from_secs(5);

/// A group this run made.
#[derive(Debug)]
struct Group {
    /// Its folder.
    dir: PathBuf,
    /// How `/proc/PID/cgroup` names its hierarchy: `None` for v2, a v1 controller.
    controller: Option<String>,
    /// Its path in the hierarchy.
    path: String,
    /// Holds at least one applied limit.
    used: bool,
}

/// A limit expressed as cgroup files, per hierarchy version.
struct CgLimit {
    /// `cpus`, `cpu_quota`, `memory`.
    name: &'static str,
    /// Readable value asked for.
    asked: String,
    /// The controller it needs.
    controller: &'static str,
    /// Files to write in a v2 group, in order (`true`: required).
    v2: Vec<(&'static str, String, bool)>,
    /// Files to write in a v1 group, in order (`true`: required).
    v1: Vec<(&'static str, String, bool)>,
}

/// The limits of one profile, applied for one run. Dropping it removes its cgroups.
#[derive(Debug)]
pub struct Confinement {
    label: String,
    groups: Vec<Group>,
    /// `cgroup.subtree_control` files we enabled a controller in: (file, controller).
    enabled: Vec<(PathBuf, String)>,
    /// Each used group's `cgroup.procs`, open for writing.
    procs: Vec<File>,
    affinity: Option<CpuList>,
    threads: Option<usize>,
    record: ProfileRecord,
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), String> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| format!("writing {value} to {}: {e}", path.display()))
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The path of group `label` below `place` in its hierarchy.
fn child_path(place: &Place, label: &str) -> String {
    format!("{}/{label}", place.path.trim_end_matches('/'))
}

impl Confinement {
    /// Apply `profile` on this machine (its cgroups as `/proc/self` reports them).
    pub fn create(profile: &Profile) -> Confinement {
        Self::create_in(profile, &Hierarchies::detect(), CpuList::allowed())
    }

    /// Apply `profile` with the given hierarchies and the CPUs this process may use.
    pub fn create_in(profile: &Profile, h: &Hierarchies, allowed: Option<CpuList>) -> Confinement {
        let mut c = Confinement {
            label: format!("chatcap-{}-{}", std::process::id(), profile.name),
            groups: Vec::new(),
            enabled: Vec::new(),
            procs: Vec::new(),
            affinity: None,
            threads: profile.threads(),
            record: ProfileRecord::asked(profile),
        };
        remove_stale(h);
        if let Some(cpus) = &profile.cpus {
            let r = c.limit_cpus(h, cpus, allowed.as_ref());
            c.record.limits.push(r);
        }
        if let Some(q) = profile.cpu_quota {
            let whole = (q.fract() == 0.0 && profile.cpus.is_none()).then_some(q as usize);
            let r = c.limit_quota(h, q, whole.zip(allowed.as_ref()));
            c.record.limits.push(r);
        }
        if let Some(m) = profile.memory_bytes {
            let v1 = vec![
                ("memory.limit_in_bytes", m.to_string(), true),
                // Swap counts too where the kernel accounts it; not everywhere does.
                ("memory.memsw.limit_in_bytes", m.to_string(), false),
            ];
            let l = CgLimit {
                name: "memory",
                asked: size(m),
                controller: "memory",
                v2: vec![
                    ("memory.max", m.to_string(), true),
                    ("memory.swap.max", "0".into(), false),
                ],
                v1,
            };
            let r = c.cgroup(h, &l).unwrap_or_else(|why| not_applied(&l, why));
            c.record.limits.push(r);
        }
        if let Some(n) = c.threads {
            let flag = format!("chatcap serve --worker-threads {n}");
            let note = match profile.worker_threads {
                Some(_) => flag,
                None => format!("{flag}, matched to the CPU limit"),
            };
            c.record.limits.push(LimitRecord {
                limit: "worker_threads".into(),
                asked: n.to_string(),
                how: Method::Flag,
                applied: Some(n.to_string()),
                path: None,
                note: Some(note),
            });
        }
        c.open_procs();
        c
    }

    fn limit_cpus(
        &mut self,
        h: &Hierarchies,
        cpus: &CpuList,
        allowed: Option<&CpuList>,
    ) -> LimitRecord {
        let l = CgLimit {
            name: "cpus",
            asked: cpus.to_string(),
            controller: "cpuset",
            v2: vec![("cpuset.cpus", cpus.to_string(), true)],
            v1: vec![("cpuset.cpus", cpus.to_string(), true)],
        };
        if let Some(a) = allowed {
            let missing = cpus.missing_from(a);
            if !missing.is_empty() {
                let why = format!("CPUs {missing} are not available to this run (it may use {a})");
                return not_applied(&l, vec![why]);
            }
        }
        match self.cgroup(h, &l) {
            Ok(r) => r,
            Err(why) => {
                self.affinity = Some(cpus.clone());
                LimitRecord {
                    how: Method::Affinity,
                    applied: Some(cpus.to_string()),
                    note: Some(why.join("; ")),
                    ..not_applied(&l, Vec::new())
                }
            }
        }
    }

    /// `whole`: (the quota as a whole number of CPUs, the CPUs allowed), when the CPU set
    /// is free for an affinity fallback.
    fn limit_quota(
        &mut self,
        h: &Hierarchies,
        q: f64,
        whole: Option<(usize, &CpuList)>,
    ) -> LimitRecord {
        let quota = ((q * PERIOD_US as f64).round() as u64).max(1000);
        let l = CgLimit {
            name: "cpu_quota",
            asked: format!("{q} CPU"),
            controller: "cpu",
            v2: vec![("cpu.max", format!("{quota} {PERIOD_US}"), true)],
            v1: vec![
                ("cpu.cfs_period_us", PERIOD_US.to_string(), true),
                ("cpu.cfs_quota_us", quota.to_string(), true),
            ],
        };
        let why = match self.cgroup(h, &l) {
            Ok(r) => return r,
            Err(why) => why,
        };
        match whole {
            Some((n, allowed)) if n >= 1 => {
                let set = allowed.first(n);
                self.affinity = Some(set.clone());
                LimitRecord {
                    how: Method::Affinity,
                    applied: Some(set.to_string()),
                    note: Some(format!(
                        "approximated by running on {n} whole CPU(s); {}",
                        why.join("; ")
                    )),
                    ..not_applied(&l, Vec::new())
                }
            }
            _ => not_applied(&l, why),
        }
    }

    /// Apply `l` in a v2 group, else a v1 group; `Err` holds why neither could.
    fn cgroup(&mut self, h: &Hierarchies, l: &CgLimit) -> Result<LimitRecord, Vec<String>> {
        let mut why = Vec::new();
        match self.in_v2(h, l) {
            Ok(r) => return Ok(r),
            Err(e) => why.push(format!("cgroup v2: {e}")),
        }
        match self.in_v1(h, l) {
            Ok(mut r) => {
                r.note = Some(why.join("; "));
                Ok(r)
            }
            Err(e) => {
                why.push(format!("cgroup v1: {e}"));
                Err(why)
            }
        }
    }

    fn in_v2(&mut self, h: &Hierarchies, l: &CgLimit) -> Result<LimitRecord, String> {
        let place = h.v2.as_ref().ok_or("no cgroup2 file system is mounted")?;
        let available = v2_controllers(&place.dir);
        if !available.iter().any(|c| c == l.controller) {
            return Err(format!(
                "the {} controller is not available in {} (cgroup.controllers: \"{}\")",
                l.controller,
                place.dir.display(),
                available.join(" ")
            ));
        }
        let control = place.dir.join("cgroup.subtree_control");
        let on = std::fs::read_to_string(&control).unwrap_or_default();
        if !on.split_whitespace().any(|c| c == l.controller) {
            write(
                &place.dir,
                "cgroup.subtree_control",
                &format!("+{}", l.controller),
            )?;
            self.enabled.push((control, l.controller.to_string()));
        }
        let i = self.group(place, None, &[])?;
        self.apply(i, l, &l.v2, Method::CgroupV2)
    }

    fn in_v1(&mut self, h: &Hierarchies, l: &CgLimit) -> Result<LimitRecord, String> {
        let (controllers, place) = h
            .v1(l.controller)
            .ok_or_else(|| format!("no v1 hierarchy has the {} controller", l.controller))?;
        let i = self.group(place, Some(l.controller), controllers)?;
        self.apply(i, l, &l.v1, Method::CgroupV1)
    }

    /// The index of the group below `place`, made now if new. A v1 cpuset group starts
    /// with no CPUs and no memory nodes (nothing may join it): it gets its parent's.
    fn group(
        &mut self,
        place: &Place,
        controller: Option<&str>,
        hierarchy: &[String],
    ) -> Result<usize, String> {
        let dir = place.dir.join(&self.label);
        if let Some(i) = self.groups.iter().position(|g| g.dir == dir) {
            return Ok(i);
        }
        std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        self.groups.push(Group {
            dir: dir.clone(),
            controller: controller.map(str::to_string),
            path: child_path(place, &self.label),
            used: false,
        });
        if hierarchy.iter().any(|c| c == "cpuset") {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                write(&dir, file, &read(&place.dir, file))?;
            }
        }
        Ok(self.groups.len() - 1)
    }

    fn apply(
        &mut self,
        i: usize,
        l: &CgLimit,
        files: &[(&'static str, String, bool)],
        how: Method,
    ) -> Result<LimitRecord, String> {
        let dir = self.groups[i].dir.clone();
        let mut applied = Vec::new();
        for (file, value, required) in files {
            match write(&dir, file, value) {
                Ok(()) if *required => applied.push(format!("{file}={}", read(&dir, file))),
                Ok(()) => {}
                Err(e) if *required => return Err(e),
                // An optional file (swap accounting) the kernel may not have.
                Err(_) => {}
            }
        }
        self.groups[i].used = true;
        Ok(LimitRecord {
            limit: l.name.into(),
            asked: l.asked.clone(),
            how,
            applied: Some(applied.join(" ")),
            path: Some(dir.display().to_string()),
            note: None,
        })
    }

    /// Remove the groups no limit ended up in; open the others' `cgroup.procs`.
    fn open_procs(&mut self) {
        let (used, unused): (Vec<Group>, Vec<Group>) = std::mem::take(&mut self.groups)
            .into_iter()
            .partition(|g| g.used);
        for g in unused {
            remove_group(&g.dir);
        }
        for g in used {
            match std::fs::OpenOptions::new()
                .write(true)
                .open(g.dir.join("cgroup.procs"))
            {
                Ok(f) => {
                    self.procs.push(f);
                    self.groups.push(g);
                }
                Err(e) => {
                    let dir = g.dir.display().to_string();
                    for l in &mut self.record.limits {
                        if l.path.as_deref() == Some(&dir) {
                            l.how = Method::NotApplied;
                            l.note = Some(format!("cannot open {dir}/cgroup.procs: {e}"));
                        }
                    }
                    remove_group(&g.dir);
                }
            }
        }
        self.record.cgroups = self
            .groups
            .iter()
            .map(|g| g.dir.display().to_string())
            .collect();
    }

    /// Make `cmd` (a `chatcap serve`) start inside the limits: `--worker-threads`, and
    /// entering every group and the CPU affinity before it executes.
    #[allow(unsafe_code)]
    pub fn confine(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        if let Some(n) = self.threads {
            cmd.arg("--worker-threads").arg(n.to_string());
        }
        let fds: Vec<RawFd> = self.procs.iter().map(AsRawFd::as_raw_fd).collect();
        let set = self.affinity.as_ref().map(CpuList::to_cpu_set);
        if fds.is_empty() && set.is_none() {
            return;
        }
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: it calls write(2) and sched_setaffinity(2)
        // on data prepared before the fork (open descriptors, a filled cpu_set_t), and
        // neither allocates nor takes locks. Writing "0" to cgroup.procs moves the
        // writer (v1 and v2 alike). std's Command has no safe way to do either.
        unsafe {
            cmd.pre_exec(move || {
                for fd in &fds {
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(set) = &set {
                    let size = std::mem::size_of::<libc::cpu_set_t>();
                    if libc::sched_setaffinity(0, size, set) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }

    /// True when process `pid` is in every group and on the CPU set of this confinement.
    pub fn holds(&self, pid: u32) -> bool {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            return false;
        };
        let lines = parse_proc_cgroup(&text);
        let in_groups = self.groups.iter().all(|g| {
            lines.iter().any(|m| {
                m.path == g.path
                    && match &g.controller {
                        None => m.controllers.is_empty(),
                        Some(c) => m.controllers.contains(c),
                    }
            })
        });
        let on_cpus = self.affinity.as_ref().is_none_or(|want| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|v| CpuList::parse(v.trim()))
                .as_ref()
                == Some(want)
        });
        in_groups && on_cpus
    }

    /// The record for the report, with each of `processes` (name, pid) checked inside.
    pub fn record(&self, processes: &[(String, u32)]) -> ProfileRecord {
        let mut r = self.record.clone();
        r.processes = processes
            .iter()
            .map(|(name, pid)| ConfinedProcess {
                name: name.clone(),
                pid: *pid,
                confined: self.holds(*pid),
            })
            .collect();
        r
    }

    /// The groups' folders (removed on drop).
    pub fn cgroups(&self) -> Vec<PathBuf> {
        self.groups.iter().map(|g| g.dir.clone()).collect()
    }
}

impl Drop for Confinement {
    fn drop(&mut self) {
        self.procs.clear();
        for g in self.groups.drain(..).rev() {
            remove_group(&g.dir);
        }
        for (control, controller) in self.enabled.drain(..) {
            // Best effort: another group may use it now, and then the kernel refuses.
            let _ = std::fs::write(control, format!("-{controller}"));
        }
    }
}

fn not_applied(l: &CgLimit, why: Vec<String>) -> LimitRecord {
    LimitRecord {
        limit: l.name.into(),
        asked: l.asked.clone(),
        how: Method::NotApplied,
        applied: None,
        path: None,
        note: (!why.is_empty()).then(|| why.join("; ")),
    }
}

/// Remove a group, killing whatever is still inside; false when it could not be removed.
fn remove_group(dir: &Path) -> bool {
    let deadline = std::time::Instant::now() + REMOVE_WITHIN;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
            Err(e) if std::time::Instant::now() >= deadline => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the run's cgroup");
                return false;
            }
            Err(_) => {}
        }
        for pid in read(dir, "cgroup.procs").split_whitespace() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid])
                .status();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Remove the groups of runs that are gone (a `chatcap` killed outright leaves its
/// `chatcap-<pid>-…` groups behind).
fn remove_stale(h: &Hierarchies) {
    let parents = h.v2.iter().chain(h.v1.iter().map(|(_, p)| p));
    for place in parents {
        let Ok(entries) = std::fs::read_dir(&place.dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("chatcap-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                tracing::info!(dir = %e.path().display(), "removing a cgroup left by an earlier run");
                remove_group(&e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests;
