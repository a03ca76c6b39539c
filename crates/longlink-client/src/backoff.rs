//! Jittered exponential backoff for reconnecting: "full jitter", each wait drawn uniformly
//! from zero to an exponentially growing cap, so that many clients cut at once do not all
//! come back at once.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The waits before reconnection attempts: attempt `n` (from 1) waits a random time in
/// `0..=min(max, initial * 2^(n-1))`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    /// xorshift64* state, never zero.
    state: u64,
}

impl Backoff {
    /// A backoff from `initial` doubling up to `max`, seeded from the process's random
    /// hasher keys (different in every process and for every call).
    pub(crate) fn new(initial: Duration, max: Duration) -> Backoff {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Backoff::with_seed(initial, max, hasher.finish())
    }

    /// Like [`Backoff::new`], with a fixed seed (for tests).
    pub(crate) fn with_seed(initial: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            state: seed | 1,
        }
    }

    /// The cap of attempt `attempt` (from 1): `min(max, initial * 2^(attempt-1))`.
    pub(crate) fn cap(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The wait before attempt `attempt` (from 1): uniform in `0..=cap(attempt)`.
    pub(crate) fn delay(&mut self, attempt: u32) -> Duration {
        let cap = u64::try_from(self.cap(attempt).as_nanos()).unwrap_or(u64::MAX);
        if cap == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.next() % cap.saturating_add(1))
    }

    /// xorshift64*.
    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_cap_doubles_up_to_the_maximum() {
        let b = Backoff::with_seed(50 * MS, 2000 * MS, 1);
        let caps: Vec<_> = (1..=8).map(|n| b.cap(n).as_millis()).collect();
        assert_eq!(caps, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.cap(0), 50 * MS);
        assert_eq!(b.cap(u32::MAX), 2000 * MS);
    }

    #[test]
    fn delays_stay_under_the_cap_and_spread_out() {
        let mut b = Backoff::with_seed(50 * MS, 2000 * MS, 7);
        for attempt in 1..=10 {
            let draws: Vec<_> = (0..200).map(|_| b.delay(attempt)).collect();
            assert!(draws.iter().all(|d| *d <= b.cap(attempt)));
            let low = draws.iter().filter(|d| **d < b.cap(attempt) / 2).count();
            assert!(
                (40..160).contains(&low),
                "attempt {attempt}: {low} of 200 low"
            );
        }
        let mut zero = Backoff::with_seed(Duration::ZERO, Duration::ZERO, 0);
        assert_eq!(zero.delay(3), Duration::ZERO);
    }

    #[test]
    fn two_backoffs_draw_differently() {
        let mut a = Backoff::new(50 * MS, 2000 * MS);
        let mut b = Backoff::new(50 * MS, 2000 * MS);
        let da: Vec<_> = (0..8).map(|_| a.delay(6)).collect();
        let db: Vec<_> = (0..8).map(|_| b.delay(6)).collect();
        assert_ne!(da, db);
    }
}
