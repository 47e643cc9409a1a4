//! CPU lists as the kernel writes them (`0`, `0-1`, `0,2-3`): parsed, printed back in the
//! same compact form, and the set this process may run on (its affinity). It knows nothing
//! of cgroups or profiles.

use std::fmt;

/// A set of CPU numbers, sorted and without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

/// The largest CPU number accepted (the kernel's `CPU_SETSIZE`).
pub const MAX_CPU: usize = 1023;

impl CpuList {
    /// The CPUs, ascending.
    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    /// How many CPUs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty (never for a parsed list).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first `n` CPUs of the list.
    pub fn first(&self, n: usize) -> CpuList {
        CpuList(self.0.iter().copied().take(n).collect())
    }

    /// The CPUs of this list that `other` lacks.
    pub fn missing_from(&self, other: &CpuList) -> CpuList {
        CpuList(
            self.0
                .iter()
                .copied()
                .filter(|c| !other.0.contains(c))
                .collect(),
        )
    }

    /// A list of these CPUs.
    pub fn from_cpus(cpus: impl IntoIterator<Item = usize>) -> CpuList {
        let mut v: Vec<usize> = cpus.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        CpuList(v)
    }

    /// Parse `0`, `0-3`, `0,2-3` (spaces around items allowed); `None` when malformed,
    /// empty, reversed (`3-1`) or past [`MAX_CPU`].
    pub fn parse(text: &str) -> Option<CpuList> {
        let mut cpus = Vec::new();
        for item in text.split(',') {
            let item = item.trim();
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                None => {
                    let c: usize = item.parse().ok()?;
                    (c, c)
                }
            };
            if lo > hi || hi > MAX_CPU {
                return None;
            }
            cpus.extend(lo..=hi);
        }
        let list = CpuList::from_cpus(cpus);
        (!list.is_empty()).then_some(list)
    }

    /// The CPUs this process may run on (its affinity mask); `None` when it cannot be read.
    #[allow(unsafe_code)]
    pub fn allowed() -> Option<CpuList> {
        // SAFETY: `cpu_set_t` is plain data, valid when zeroed; sched_getaffinity writes at
        // most `size_of::<cpu_set_t>()` bytes into it and CPU_ISSET only reads it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return None;
            }
            Some(CpuList::from_cpus(
                (0..=MAX_CPU).filter(|c| libc::CPU_ISSET(*c, &set)),
            ))
        }
    }

    /// The list as a kernel CPU mask, for `sched_setaffinity`.
    #[allow(unsafe_code)]
    pub fn to_cpu_set(&self) -> libc::cpu_set_t {
        // SAFETY: as in `allowed`: a zeroed `cpu_set_t` is valid, and CPU_SET only writes
        // bits below CPU_SETSIZE (every number in a list is at most MAX_CPU).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for c in &self.0 {
                libc::CPU_SET(*c, &mut set);
            }
            set
        }
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        let mut first = true;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_print_compactly() {
        let l = CpuList::parse("0,2-3, 5").expect("valid");
        assert_eq!(l.cpus(), &[0, 2, 3, 5]);
        assert_eq!(l.to_string(), "0,2-3,5");
        assert_eq!(CpuList::parse("1-0"), None);
        assert_eq!(CpuList::parse(""), None);
        assert_eq!(CpuList::parse("a"), None);
        assert_eq!(CpuList::parse("0-4096"), None);
        assert_eq!(CpuList::parse("3,1,1").expect("valid").to_string(), "1,3");
    }

    #[test]
    fn this_process_may_run_somewhere() {
        let allowed = CpuList::allowed().expect("affinity readable");
        assert!(!allowed.is_empty());
        assert_eq!(allowed.first(1).len(), 1);
        assert!(allowed.missing_from(&allowed).is_empty());
    }
}
