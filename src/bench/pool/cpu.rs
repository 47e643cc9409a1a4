//! CPU time of the pool's processes from `/proc`, including PostgreSQL, which is a tree of
//! processes (a postmaster and one backend per connection). Reading only; Linux only.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ is 100 on every Linux
/// configuration we run on, as `target::cpu_time` assumes too).
const TICKS_PER_SEC: u64 = 100;

/// (parent pid, utime + stime, cutime + cstime) in ticks, from a `/proc/<pid>/stat` line.
pub fn parse_stat(stat: &str) -> Option<(u32, u64, u64)> {
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i)?.parse::<u64>().ok();
    // Fields 4 (ppid) and 14–17 (utime, stime, cutime, cstime) of the whole line.
    let ppid = u32::try_from(num(1)?).ok()?;
    Some((ppid, num(11)? + num(12)?, num(13)? + num(14)?))
}

fn ticks(t: u64) -> Duration {
    Duration::from_millis(t * 1000 / TICKS_PER_SEC)
}

/// CPU time of `root` and every live child of it: the root's own time, the time of its
/// children that have exited (`cutime + cstime`, so a backend that ends during the window
/// keeps counting), and each live child's own time.
pub fn tree_cpu_time(root: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{root}/stat")).ok()?;
    let (_, own, reaped) = parse_stat(&stat)?;
    let mut total = own + reaped;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == root {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((ppid, own, _)) = parse_stat(&stat) {
            if ppid == root {
                total += own;
            }
        }
    }
    Some(ticks(total))
}

/// The port of a `postgres://` URL (5432 when it names none).
pub fn pg_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host.rsplit_once(':') {
        // An IPv6 literal without a port ends in `]`.
        Some((_, port)) if !port.ends_with(']') => port.parse().ok(),
        _ => Some(5432),
    }
}

/// Whether a command line (NUL-separated, as in `/proc/<pid>/cmdline`) is a PostgreSQL
/// server started with `-p PORT`.
pub fn is_postmaster_of(cmdline: &str, port: u16) -> bool {
    let args: Vec<&str> = cmdline.split('\0').collect();
    let is_postgres = args
        .first()
        .is_some_and(|a| a.rsplit('/').next() == Some("postgres"));
    let port = port.to_string();
    is_postgres
        && args
            .windows(2)
            .any(|w| (w[0] == "-p" || w[0] == "--port") && w[1] == port)
}

/// The postmaster serving `url` on this machine, when its command line names the port (as
/// the throwaway clusters' do); `None` otherwise (a packaged server reading its port from
/// its configuration file is not found, and its CPU is not reported).
pub fn find_postmaster(url: &str) -> Option<u32> {
    let port = pg_port(url)?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if is_postmaster_of(&String::from_utf8_lossy(&cmdline), port) {
            return Some(pid);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_parent_and_times() {
        let line = "19216 (postgres: check pointer) S 19215 19215 19215 0 -1 4194624 \
                    100 0 0 0 7 3 40 2 20 0 1 0 12345 0 0";
        assert_eq!(parse_stat(line), Some((19215, 10, 42)));
        assert_eq!(parse_stat("garbage"), None);
        let own = std::fs::read_to_string("/proc/self/stat").expect("own stat");
        assert!(parse_stat(&own).is_some());
        assert!(tree_cpu_time(std::process::id()).is_some());
    }

    #[test]
    fn ports_come_from_the_url() {
        assert_eq!(pg_port("postgres://postgres@127.0.0.1:34057"), Some(34057));
        assert_eq!(
            pg_port("postgres://u:p@h:5433/db?sslmode=disable"),
            Some(5433)
        );
        assert_eq!(pg_port("postgresql://h/db"), Some(5432));
        assert_eq!(pg_port("postgres://[::1]/db"), Some(5432));
        assert_eq!(pg_port("not a url"), None);
    }

    #[test]
    fn postmasters_are_recognised_by_their_port() {
        let args = [
            "/usr/lib/postgresql/15/bin/postgres",
            "-D",
            "/tmp/x/data",
            "-p",
            "34057",
        ];
        let cmd = args.join("\0") + "\0";
        let cmd = cmd.as_str();
        assert!(is_postmaster_of(cmd, 34057));
        assert!(!is_postmaster_of(cmd, 5432));
        assert!(!is_postmaster_of("postgres: walwriter \0", 34057));
        assert!(!is_postmaster_of(
            &["/bin/sleep", "-p", "34057"].join("\0"),
            34057
        ));
    }
}
