//! Rate limiting: token buckets keyed by whatever the caller chooses (a client
//! address key from [`crate::web::client_addr`], an account, a pod origin).
//!
//! Owns: the buckets and their memory bound. Does not own: deciding who the client
//! is (the web layer does that, trusting proxies only as configured).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A set of token buckets sharing one rule: `burst` requests at once, refilled at
/// `per_period` requests per `period`.
pub struct RateLimiter {
    burst: f64,
    refill_per_sec: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `per_period` requests per `period`, with bursts of up to `burst`.
    pub fn new(burst: u32, per_period: u32, period: Duration) -> RateLimiter {
        RateLimiter {
            burst: f64::from(burst.max(1)),
            refill_per_sec: f64::from(per_period.max(1)) / period.as_secs_f64().max(0.001),
            max_keys: 100_000,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; false when the key is over its rate.
    pub fn allow(&self, key: &str) -> bool {
        self.allow_at(key, Instant::now())
    }

    fn allow_at(&self, key: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= self.max_keys && !buckets.contains_key(key) {
            // Forget buckets that have refilled completely: they carry no state.
            let full_after = Duration::from_secs_f64(self.burst / self.refill_per_sec);
            buckets.retain(|_, b| now.duration_since(b.updated) < full_after);
            if buckets.len() >= self.max_keys {
                return false;
            }
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.refill_per_sec).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills() {
        let limiter = RateLimiter::new(3, 60, Duration::from_secs(60));
        let start = Instant::now();
        assert!(limiter.allow_at("a", start));
        assert!(limiter.allow_at("a", start));
        assert!(limiter.allow_at("a", start));
        assert!(!limiter.allow_at("a", start));
        assert!(limiter.allow_at("b", start), "keys are independent");
        assert!(
            limiter.allow_at("a", start + Duration::from_secs(1)),
            "one token per second comes back"
        );
        assert!(!limiter.allow_at("a", start + Duration::from_secs(1)));
    }

    #[test]
    fn memory_is_bounded() {
        let mut limiter = RateLimiter::new(1, 1, Duration::from_secs(3600));
        limiter.max_keys = 10;
        let now = Instant::now();
        for i in 0..10 {
            assert!(limiter.allow_at(&i.to_string(), now));
        }
        assert!(
            !limiter.allow_at("new", now),
            "a full table refuses new keys rather than growing"
        );
        assert!(
            limiter.allow_at("new", now + Duration::from_secs(7200)),
            "stale buckets are dropped"
        );
    }
}
