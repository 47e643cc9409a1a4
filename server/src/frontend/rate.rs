//! Request rate limits: a token bucket per WebSocket session, and one per user for the web
//! services (HTTP calls), with the same settings (`front.rate_per_sec`, `front.rate_burst`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A token bucket.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(burst: f64) -> Self {
        Self {
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Take one token: false when the bucket is empty (the request is to be refused).
    pub fn take(&mut self, rate: f64, burst: f64) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One bucket per user (web-service calls), kept for authenticated users only.
#[derive(Debug, Default)]
pub struct PerUser {
    buckets: Mutex<HashMap<i64, Bucket>>,
}

impl PerUser {
    /// Take one token of `user`'s bucket.
    pub fn take(&self, user: i64, rate: f64, burst: f64) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .entry(user)
            .or_insert_with(|| Bucket::full(burst))
            .take(rate, burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_then_refill() {
        let users = PerUser::default();
        let granted = (0..10).filter(|_| users.take(7, 1000.0, 5.0)).count();
        assert_eq!(granted, 5, "the burst");
        assert!(
            users.take(8, 1000.0, 5.0),
            "another user has a bucket of its own"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(users.take(7, 1000.0, 5.0), "refilled at the rate");
    }
}
