//! Confinement on a machine with no cgroups (the fallbacks, pure), and on this machine's
//! real cgroups when they can be written (a child process confined, the groups removed).

use std::path::Path;

use super::*;

fn profile(text: &str) -> Profile {
    Profile::parse(text, Path::new("p.toml")).expect("valid profile")
}

fn limit<'a>(r: &'a ProfileRecord, name: &str) -> &'a LimitRecord {
    r.limits
        .iter()
        .find(|l| l.limit == name)
        .unwrap_or_else(|| panic!("no {name} in {r:?}"))
}

#[test]
fn without_cgroups_cpus_fall_back_to_affinity_and_the_rest_is_said_missing() {
    let none = Hierarchies::default();
    let allowed = CpuList::parse("0-1");
    let p = profile(
        "name = \"t1\"\ndescription = \"\"\ncpus = \"1\"\ncpu_quota = 0.5\nmemory = \"64MiB\"\n",
    );
    let c = Confinement::create_in(&p, &none, allowed.clone());
    let r = c.record(&[]);
    let cpus = limit(&r, "cpus");
    assert_eq!(cpus.how, Method::Affinity);
    assert_eq!(cpus.applied.as_deref(), Some("1"));
    let quota = limit(&r, "cpu_quota");
    assert_eq!(quota.how, Method::NotApplied);
    let note = quota.note.as_deref().unwrap_or_default();
    assert!(note.contains("no cgroup2 file system is mounted"), "{note}");
    assert!(
        note.contains("no v1 hierarchy has the cpu controller"),
        "{note}"
    );
    assert_eq!(limit(&r, "memory").how, Method::NotApplied);
    assert_eq!(limit(&r, "worker_threads").applied.as_deref(), Some("1"));
    assert!(r.cgroups.is_empty());

    // A whole number of CPUs of quota, with the set free: approximated by affinity.
    let p = profile("name = \"t2\"\ndescription = \"\"\ncpu_quota = 1\n");
    let r = Confinement::create_in(&p, &none, allowed.clone()).record(&[]);
    let quota = limit(&r, "cpu_quota");
    assert_eq!(quota.how, Method::Affinity);
    assert_eq!(quota.applied.as_deref(), Some("0"));

    // CPUs this run may not use are refused, not half-applied.
    let p = profile("name = \"t3\"\ndescription = \"\"\ncpus = \"5\"\n");
    let r = Confinement::create_in(&p, &none, allowed).record(&[]);
    let cpus = limit(&r, "cpus");
    assert_eq!(cpus.how, Method::NotApplied);
    assert!(cpus
        .note
        .as_deref()
        .unwrap_or_default()
        .contains("CPUs 5 are not available"));
}

/// On this machine: when a memory and a CPU cgroup can be made here (root, a writable
/// hierarchy), a confined child runs inside them, and dropping removes them (killing the
/// child). Elsewhere every limit must still say what became of it.
#[test]
fn a_confined_child_runs_inside_and_the_groups_go_with_the_confinement() {
    let p =
        profile("name = \"unit-test\"\ndescription = \"\"\ncpu_quota = 0.5\nmemory = \"64MiB\"\n");
    let c = Confinement::create(&p);
    let r = c.record(&[]);
    for l in &r.limits {
        assert!(
            l.how != Method::NotApplied || l.note.is_some(),
            "a missed limit without a reason: {l:?}"
        );
    }
    let memory = limit(&r, "memory");
    if memory.how == Method::NotApplied {
        eprintln!("cgroups not writable here: {:?}", memory.note);
        return;
    }
    let applied = memory.applied.as_deref().unwrap_or_default();
    assert!(applied.contains(&(64u64 << 20).to_string()), "{applied}");
    let groups = c.cgroups();
    assert!(!groups.is_empty());

    // `confine` appends `--worker-threads`: a shell ignores extra arguments.
    let mut sh = std::process::Command::new("sh");
    sh.args(["-c", "exec sleep 30", "sh"]);
    c.confine(&mut sh);
    let mut child = sh.spawn().expect("start a confined child");
    assert!(c.holds(child.id()), "the child is not inside {groups:?}");
    let record = c.record(&[("sleeper".into(), child.id())]);
    assert!(record.processes[0].confined);

    drop(c);
    for g in &groups {
        assert!(!g.exists(), "{} still exists", g.display());
    }
    let status = child.wait().expect("the child ends");
    assert!(!status.success(), "the child was killed with its group");
}
