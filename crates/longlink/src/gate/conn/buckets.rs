//! Token buckets of one connection: one for `max_msg_rate` (the connection as a whole), and
//! one per incoming type with a rate limit
//! ([`MessageOptions::rate_limit`](crate::processor::MessageOptions::rate_limit)), made at
//! the first limited message.

use crate::agent::Agent;
use crate::gate::shared::Rate;
use crate::processor::{Decoded, Over, Router};

/// A connection's buckets. An idle connection's task holds the connection's bucket and one
/// pointer.
pub(super) struct Buckets {
    /// `max_msg_rate`'s, when it is on.
    pub(super) conn: Option<Bucket>,
    /// By the router's limit slot; `None` until a limited type's first message.
    types: Option<Box<[Bucket]>>,
}

impl Buckets {
    pub(super) fn new(rate: Option<Rate>) -> Buckets {
        Buckets {
            conn: rate.map(Bucket::new),
            types: None,
        }
    }

    /// Takes a token for `decoded` from its type's bucket at `now_ms`. `None`: the type has
    /// no limit or is within it; else what the router made of the message over it.
    #[inline]
    pub(super) fn over_type_limit(
        &mut self,
        decoded: &Decoded,
        router: &Router,
        agent: &Agent,
        now_ms: impl FnOnce() -> u64,
    ) -> Option<Over> {
        let index = decoded.index();
        let limit = router.limit(index)?;
        let rate = Rate {
            per_sec: f64::from(limit.limit.per_sec),
            burst: f64::from(limit.limit.burst),
        };
        let types = self.types.get_or_insert_with(|| {
            (0..router.limited_types())
                .map(|_| Bucket::unused())
                .collect()
        });
        let bucket = types.get_mut(limit.slot)?;
        if bucket.unused {
            *bucket = Bucket::new(rate);
        }
        if bucket.take(rate, now_ms()) {
            return None;
        }
        Some(router.over_limit(index, limit.limit, agent))
    }
}

/// A token bucket: `rate` messages per second, `burst` at once. The rate itself is the
/// gate's or the type's: a bucket holds only its level.
pub(super) struct Bucket {
    tokens: f64,
    at_ms: u64,
    /// Not filled yet (a type's bucket before its first message).
    unused: bool,
}

impl Bucket {
    fn new(rate: Rate) -> Self {
        Bucket {
            tokens: rate.burst,
            at_ms: 0,
            unused: false,
        }
    }

    fn unused() -> Self {
        Bucket {
            tokens: 0.0,
            at_ms: 0,
            unused: true,
        }
    }

    /// Takes one token at `now_ms`; false when the bucket is empty.
    pub(super) fn take(&mut self, rate: Rate, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64 / 1000.0;
        self.at_ms = now_ms;
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
