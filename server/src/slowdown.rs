//! Test hook `chat.test_slowdown` (never set in production): makes the server process use
//! `factor` times the CPU it otherwise would, on the cores it already competes for, so that
//! a regression gate can be shown to catch a server that became that much slower. A thread
//! measures every 10 ms how much CPU the rest of the process used (`/proc`: the process
//! minus its own thread) and burns `factor − 1` times as much on its own thread.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// CPU time the whole process used, µs (`/proc/self/stat`: user + system, in the kernel's
/// fixed 100 ticks per second).
fn process_cpu_us() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) * 10_000
}

/// CPU time of the calling thread, µs (`/proc/thread-self/schedstat`, ns).
fn thread_cpu_us() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(|ns| ns / 1000)
        .unwrap_or(0)
}

/// Start the burner when `factor` is above 1; it stops with `shutdown`.
pub fn start(factor: f64, shutdown: CancellationToken) {
    if !(factor > 1.0 && factor.is_finite()) {
        return;
    }
    tracing::warn!(
        factor,
        "test hook chat.test_slowdown is on: the server burns extra CPU"
    );
    let spawned = std::thread::Builder::new()
        .name("test-slowdown".into())
        .spawn(move || {
            let mut others_before = process_cpu_us().saturating_sub(thread_cpu_us());
            let mut debt = 0.0_f64;
            while !shutdown.is_cancelled() {
                std::thread::sleep(Duration::from_millis(10));
                let mine = thread_cpu_us();
                let others = process_cpu_us().saturating_sub(mine);
                debt += others.saturating_sub(others_before) as f64 * (factor - 1.0);
                others_before = others;
                // Burn the debt (bounded, so that shutdown is never held up for long).
                let goal = mine + debt.min(200_000.0) as u64;
                let mut now = mine;
                while now < goal && !shutdown.is_cancelled() {
                    for _ in 0..10_000 {
                        std::hint::black_box(now.wrapping_mul(31));
                    }
                    now = thread_cpu_us();
                }
                debt = (debt - (now - mine) as f64).max(0.0);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("test hook chat.test_slowdown: cannot start its thread: {e}");
    }
}
