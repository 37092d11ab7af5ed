//! [`FloodControl`]: a token bucket per session.
//!
//! Each complete message from the client takes a token; tokens come back
//! at `rate` per second up to `burst`. A message without a token gets
//! `rate_limited` and is not acted on. More than `3 × burst` of those within
//! [`FLOOD_WINDOW`] is repeated flooding: the session is closed with 1008.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The window in which rejections are counted towards repeated flooding.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(5);

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Answer `rate_limited`, do nothing else.
    Limit,
    /// Close the session with 1008.
    Close,
}

#[derive(Debug)]
pub struct FloodControl {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
    /// When recent messages were rejected (at most `3 × burst + 1`).
    rejected: VecDeque<Instant>,
}

impl FloodControl {
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self { rate, burst, tokens: burst, refilled: now, rejected: VecDeque::new() }
    }

    /// Takes a token for one message received at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        while self
            .rejected
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > FLOOD_WINDOW)
        {
            self.rejected.pop_front();
        }
        self.rejected.push_back(now);
        if self.rejected.len() as f64 > 3.0 * self.burst {
            Verdict::Close
        } else {
            Verdict::Limit
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_applies() {
        let start = Instant::now();
        let mut flood = FloodControl::new(2.0, 3, start);
        assert_eq!(
            [flood.check(start), flood.check(start), flood.check(start)],
            [Verdict::Allow; 3]
        );
        assert_eq!(flood.check(start), Verdict::Limit);
        let later = start + Duration::from_millis(500); // one token back
        assert_eq!(flood.check(later), Verdict::Allow);
        assert_eq!(flood.check(later), Verdict::Limit);
    }

    #[test]
    fn repeated_flooding_closes() {
        let start = Instant::now();
        let mut flood = FloodControl::new(1.0, 2, start);
        flood.check(start);
        flood.check(start);
        let verdicts: Vec<_> = (0..7).map(|_| flood.check(start)).collect();
        assert_eq!(&verdicts[..6], &[Verdict::Limit; 6]);
        assert_eq!(verdicts[6], Verdict::Close, "the seventh rejection is more than 3 × 2");
    }

    #[test]
    fn rejections_older_than_the_window_are_forgotten() {
        let start = Instant::now();
        let mut flood = FloodControl::new(0.0, 1, start);
        flood.check(start);
        for _ in 0..3 {
            assert_eq!(flood.check(start), Verdict::Limit);
        }
        let later = start + FLOOD_WINDOW + Duration::from_secs(1);
        assert_eq!(flood.check(later), Verdict::Limit, "earlier rejections expired");
    }
}
