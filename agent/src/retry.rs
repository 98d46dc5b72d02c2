//! Exponential backoff with jitter, shared by every request the agent makes.
//!
//! The budget is sized to ride out a registry restart (Harbor's registry pod
//! being rescheduled takes tens of seconds) without turning a dead registry
//! into minutes of silent waiting per request.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // 0.25 + 0.5 + 1 + 2 + 4 + 8 + 10 * 4 s: about a minute in all.
        RetryPolicy { retries: 10, base: Duration::from_millis(250), cap: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// The pause before retry number `attempt` (1-based): exponential, capped,
    /// with "equal jitter" (half fixed, half random) so that parallel uploads
    /// that failed together do not come back together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let d = exp.min(self.cap);
        let half = d / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_cap_with_jitter() {
        let p = RetryPolicy::default();
        for attempt in 1..=12 {
            let want = p.base.saturating_mul(1 << (attempt - 1)).min(p.cap);
            let d = p.delay(attempt);
            assert!(d >= want / 2 && d <= want, "attempt {attempt}: {d:?} vs {want:?}");
        }
    }
}
