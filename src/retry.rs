//! Retry schedules shared by the durable queues (mail, deliveries, backup pushes):
//! capped exponential backoff, and when to give up.

use std::time::Duration;

/// When the queue retries: `first` after the first failure, doubling each time up to
/// `max`; a task still failing `give_up_after` its creation is given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
    /// How long after its creation a failing task is given up.
    pub give_up_after: Duration,
}

impl Backoff {
    /// The wait after the `failures`-th failed attempt (1 for the first), in whole
    /// seconds (the queue's clock), never less than one second.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let delay = self.first.saturating_mul(1u32 << doublings).min(self.max);
        Duration::from_secs(delay.as_secs_f64().ceil().max(1.0) as u64)
    }
}
