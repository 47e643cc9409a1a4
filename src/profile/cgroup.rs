//! Where this process's cgroups are: read from `/proc/self/mountinfo` (which cgroup file
//! systems are mounted where, v1 with their controllers, v2 unified) and `/proc/self/cgroup`
//! (this process's group in each hierarchy). Nothing is hard-coded: a container whose
//! cgroup mount starts below the hierarchy's root, or a v1 hierarchy with controllers
//! mounted together (`cpu,cpuacct`), resolve the same way. It only locates; creating groups
//! and writing limits is `confine`'s job (above this module).

use std::path::{Path, PathBuf};

/// One cgroup file system mount from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The hierarchy path mounted there (`/` unless the mount is of a sub-tree).
    pub root: String,
    /// Where it is mounted.
    pub point: PathBuf,
    /// `None` for cgroup2; the v1 controllers of the hierarchy otherwise.
    pub controllers: Option<Vec<String>>,
}

/// Options of a v1 mount that are not controllers.
fn is_controller(opt: &str) -> bool {
    !matches!(
        opt,
        "rw" | "ro" | "noprefix" | "clone_children" | "xattr" | "cpuset_v2_mode"
    ) && !opt.contains('=')
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup mounts in a mountinfo text (`ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS…] -
/// FSTYPE SOURCE SUPEROPTS`).
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let (root, point) = (fields.get(3)?, fields.get(4)?);
            let mut rest = after.split(' ');
            let fstype = rest.next()?;
            let superopts = rest.nth(1).unwrap_or("");
            let controllers = match fstype {
                "cgroup2" => None,
                "cgroup" => Some(
                    superopts
                        .split(',')
                        .filter(|o| is_controller(o))
                        .map(str::to_string)
                        .collect(),
                ),
                _ => return None,
            };
            Some(Mount {
                root: unescape(root),
                point: PathBuf::from(unescape(point)),
                controllers,
            })
        })
        .collect()
}

/// One line of `/proc/self/cgroup`: `ID:CONTROLLERS:PATH` (`0::PATH` for v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The v1 controllers (named hierarchies such as `name=systemd` included); empty for v2.
    pub controllers: Vec<String>,
    /// The group's path in its hierarchy.
    pub path: String,
}

/// The lines of a `/proc/PID/cgroup` text.
pub fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let list = parts.next()?;
            let path = parts.next()?.to_string();
            let controllers = list
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some(Membership { controllers, path })
        })
        .collect()
}

/// This process's group in one hierarchy: its folder, and its path as `/proc/PID/cgroup`
/// names it (to recognise members of groups made below it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The group's folder.
    pub dir: PathBuf,
    /// Its path in the hierarchy.
    pub path: String,
}

/// This process's groups: in the unified (v2) hierarchy, and per v1 controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchies {
    /// The v2 group, when cgroup2 is mounted.
    pub v2: Option<Place>,
    /// (controllers of the hierarchy, group) of every mounted v1 hierarchy.
    pub v1: Vec<(Vec<String>, Place)>,
}

/// The folder of hierarchy path `path` under a mount of hierarchy path `root`.
fn dir_of(mount: &Mount, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(mount.root.trim_end_matches('/'))
        .unwrap_or(path);
    match rel.trim_start_matches('/') {
        "" => mount.point.clone(),
        rel => mount.point.join(rel),
    }
}

impl Hierarchies {
    /// Resolve from the texts of mountinfo and `/proc/self/cgroup`.
    pub fn from_texts(mountinfo: &str, proc_cgroup: &str) -> Hierarchies {
        let mounts = parse_mountinfo(mountinfo);
        let mut h = Hierarchies::default();
        for m in parse_proc_cgroup(proc_cgroup) {
            if m.controllers.is_empty() {
                if let Some(mount) = mounts.iter().find(|x| x.controllers.is_none()) {
                    h.v2 = Some(Place {
                        dir: dir_of(mount, &m.path),
                        path: m.path.clone(),
                    });
                }
                continue;
            }
            let found = mounts.iter().find(|x| {
                x.controllers
                    .as_ref()
                    .is_some_and(|c| m.controllers.iter().all(|want| c.contains(want)))
            });
            if let Some(mount) = found {
                let place = Place {
                    dir: dir_of(mount, &m.path),
                    path: m.path.clone(),
                };
                h.v1.push((m.controllers.clone(), place));
            }
        }
        h
    }

    /// This process's hierarchies, as the kernel reports them (none when unreadable).
    pub fn detect() -> Hierarchies {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Self::from_texts(&read("/proc/self/mountinfo"), &read("/proc/self/cgroup"))
    }

    /// The v1 hierarchy that has `controller`: (all its controllers, this process's group).
    pub fn v1(&self, controller: &str) -> Option<(&[String], &Place)> {
        self.v1
            .iter()
            .find(|(c, _)| c.iter().any(|x| x == controller))
            .map(|(c, p)| (c.as_slice(), p))
    }
}

/// The v2 controllers a group can hand to its children (`cgroup.controllers`).
pub fn v2_controllers(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hybrid host: v1 controllers (cpu and cpuacct apart) plus an empty cgroup2.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_SELF: &str = "\
9:name=systemd:/
4:memory:/sandbox/abc
3:cpuset:/
1:cpu:/
0::/
";

    #[test]
    fn a_hybrid_host_resolves_per_controller() {
        let h = Hierarchies::from_texts(HYBRID, HYBRID_SELF);
        let v2 = h.v2.as_ref().expect("cgroup2 mounted");
        assert_eq!(v2.dir, Path::new("/sys/fs/cgroup/unified"));
        let (_, mem) = h.v1("memory").expect("memory hierarchy");
        assert_eq!(mem.dir, Path::new("/sys/fs/cgroup/memory/sandbox/abc"));
        assert_eq!(mem.path, "/sandbox/abc");
        let (_, cpu) = h.v1("cpu").expect("cpu hierarchy");
        assert_eq!(cpu.dir, Path::new("/sys/fs/cgroup/cpu"));
        assert!(h.v1("pids").is_none());
        assert!(
            h.v1("name=systemd").is_none(),
            "a named hierarchy has no controllers"
        );
    }

    #[test]
    fn comounted_controllers_and_systemd_v2_resolve() {
        let mountinfo = "\
25 20 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
26 20 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
        let me = "3:cpu,cpuacct:/user.slice\n0::/user.slice/user-0.slice/session-1.scope\n";
        let h = Hierarchies::from_texts(mountinfo, me);
        let (ctrl, cpu) = h.v1("cpuacct").expect("co-mounted");
        assert_eq!(ctrl, ["cpu", "cpuacct"]);
        assert_eq!(cpu.dir, Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice"));
        let v2 = h.v2.expect("v2");
        assert_eq!(
            v2.dir,
            Path::new("/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope")
        );
    }

    #[test]
    fn a_container_mount_of_a_subtree_strips_its_root() {
        let mountinfo = "700 690 0:30 /docker/f00 /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n";
        let me = "0::/docker/f00/run\n";
        let h = Hierarchies::from_texts(mountinfo, me);
        assert_eq!(h.v2.expect("v2").dir, Path::new("/sys/fs/cgroup/run"));
        // A namespaced view: the path is already relative to the mount.
        let h = Hierarchies::from_texts(mountinfo, "0::/\n");
        assert_eq!(h.v2.expect("v2").dir, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn escaped_mount_points_and_no_cgroups_at_all() {
        let mountinfo = "1 0 0:1 / /mnt/my\\040cg rw - cgroup cgroup rw,memory\n";
        let h = Hierarchies::from_texts(mountinfo, "2:memory:/\n");
        assert_eq!(
            h.v1("memory").expect("memory").1.dir,
            Path::new("/mnt/my cg")
        );
        assert_eq!(Hierarchies::from_texts("", ""), Hierarchies::default());
    }
}
