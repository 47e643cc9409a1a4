//! The search itself, as a state machine with no I/O: it says which user count to try
//! next ([`Search::next_users`]) and learns each verdict ([`Search::record`]). Stepped mode climbs
//! by a fixed step to the first failure; feedback mode climbs while healthy, then bisects
//! between the last pass and the first failure until they are within the tolerance.
//! Running the steps is the command's job (`cmd`).

use serde::{Deserialize, Serialize};

/// How the user counts are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// start, start+step, …, up to the first failing step.
    Stepped,
    /// Add users while every SLO holds, back off on a failure, bisect until settled.
    Feedback,
}

/// What the search is asked to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    /// Stepped or feedback.
    pub mode: Mode,
    /// First user count.
    pub start: u32,
    /// Users added after a passing step.
    pub step: u32,
    /// Never try more users than this.
    pub max: u32,
    /// Feedback: stop when (first fail − last pass) ≤ this share of the first fail.
    pub tolerance: f64,
}

/// Why a search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// A step failed (stepped), or pass and fail are within the tolerance (feedback).
    Settled,
    /// Every step up to `--max` passed: the bound is above what was tried.
    ReachedMax,
    /// Interrupted (Ctrl-C) or a step could not be run.
    Interrupted,
}

/// The search's state: the highest passing and the lowest failing user count so far.
#[derive(Debug, Clone)]
pub struct Search {
    spec: Spec,
    pass: Option<u32>,
    fail: Option<u32>,
    stop: Option<Stop>,
}

impl Search {
    /// A search that has tried nothing yet.
    pub fn new(spec: Spec) -> Search {
        Search {
            spec,
            pass: None,
            fail: None,
            stop: None,
        }
    }

    /// The next user count to try; `None` once the search is over ([`Search::stopped`]).
    pub fn next_users(&mut self) -> Option<u32> {
        if self.stop.is_some() {
            return None;
        }
        let s = self.spec;
        let climb = |pass: Option<u32>| match pass {
            None => Some(s.start),
            Some(p) if p >= s.max => None,
            Some(p) => Some(p.saturating_add(s.step).min(s.max)),
        };
        let next = match (s.mode, self.fail) {
            (_, None) => climb(self.pass),
            (Mode::Stepped, Some(_)) => {
                self.stop = Some(Stop::Settled);
                return None;
            }
            (Mode::Feedback, Some(hi)) => {
                let lo = self.pass.unwrap_or(0);
                let slack = ((s.tolerance * hi as f64).floor() as u32).max(1);
                let mid = lo + (hi - lo) / 2;
                if hi - lo <= slack || mid == lo {
                    self.stop = Some(Stop::Settled);
                    return None;
                }
                Some(mid)
            }
        };
        if next.is_none() {
            self.stop = Some(Stop::ReachedMax);
        }
        next
    }

    /// Learn the verdict of a step at `users`.
    pub fn record(&mut self, users: u32, pass: bool) {
        if pass {
            self.pass = Some(self.pass.map_or(users, |p| p.max(users)));
        } else {
            self.fail = Some(self.fail.map_or(users, |f| f.min(users)));
        }
    }

    /// End the search early (Ctrl-C, a step that could not run).
    pub fn interrupt(&mut self) {
        self.stop = Some(Stop::Interrupted);
    }

    /// Supported users: the highest passing count below every failing one.
    pub fn supported(&self) -> Option<u32> {
        self.pass
    }

    /// The lowest failing user count.
    pub fn first_fail(&self) -> Option<u32> {
        self.fail
    }

    /// Why the search stopped (`None` while running).
    pub fn stopped(&self) -> Option<Stop> {
        self.stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spec: Spec, bound: u32) -> (Search, Vec<u32>) {
        let mut s = Search::new(spec);
        let mut tried = Vec::new();
        while let Some(u) = s.next_users() {
            tried.push(u);
            s.record(u, u <= bound);
            assert!(tried.len() < 100, "does not end: {tried:?}");
        }
        (s, tried)
    }

    fn spec(mode: Mode) -> Spec {
        Spec {
            mode,
            start: 100,
            step: 100,
            max: 10_000,
            tolerance: 0.05,
        }
    }

    #[test]
    fn stepped_stops_at_the_first_failure() {
        let (s, tried) = run(spec(Mode::Stepped), 350);
        assert_eq!(tried, vec![100, 200, 300, 400]);
        assert_eq!((s.supported(), s.first_fail()), (Some(300), Some(400)));
        assert_eq!(s.stopped(), Some(Stop::Settled));
    }

    #[test]
    fn feedback_converges_within_the_tolerance() {
        for bound in [137, 350, 999, 2_345] {
            let (s, tried) = run(spec(Mode::Feedback), bound);
            let (lo, hi) = (s.supported().unwrap(), s.first_fail().unwrap());
            assert!(lo <= bound && hi > bound, "{bound}: {lo}..{hi} {tried:?}");
            assert!(
                (hi - lo) as f64 <= 0.05 * hi as f64 || hi - lo <= 1,
                "{tried:?}"
            );
        }
    }

    #[test]
    fn a_failing_start_bisects_down_and_max_stops_a_climb() {
        let (s, _) = run(spec(Mode::Feedback), 40);
        assert!(s.supported().unwrap() <= 40 && s.first_fail().unwrap() > 40);
        let (s, tried) = run(
            Spec {
                max: 250,
                ..spec(Mode::Stepped)
            },
            1_000,
        );
        assert_eq!(tried, vec![100, 200, 250]);
        assert_eq!(s.stopped(), Some(Stop::ReachedMax));
        let (s, _) = run(spec(Mode::Stepped), 50);
        assert_eq!((s.supported(), s.first_fail()), (None, Some(100)));
    }
}
