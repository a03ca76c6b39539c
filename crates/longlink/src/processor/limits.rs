//! Rate limits per incoming type ([`RateLimit`], set at registration with
//! [`MessageOptions::rate_limit`](super::MessageOptions::rate_limit)): the application's hook
//! for a message over its limit ([`Processor::on_limited`]), and each type's place among the
//! limited ones, which every connection's token buckets are indexed by (the router answers
//! for them).

use std::any::type_name;
use std::sync::Arc;

use longlink_wire::RateLimit;

use super::{Processor, ProcessorError};
use crate::agent::Agent;

/// The hook of a type's messages over its rate limit.
pub(super) type LimitedFn = Arc<dyn Fn(&Agent) + Send + Sync>;

impl Processor {
    /// Sets what a connection gets when it sends `T` over `T`'s rate limit with
    /// [`OverLimit::Drop`](super::OverLimit::Drop): `f` runs on the connection's task (keep it short), e.g. to
    /// answer with an error message; the message itself is dropped and counted
    /// (`longlink_rate_limited_total`).
    ///
    /// ```
    /// use longlink::processor::{MessageOptions, RateLimit};
    /// use longlink::{Encoding, Processor};
    ///
    /// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// struct Say { #[prost(string, tag = "1")] text: String }
    ///
    /// let mut p = Processor::new(Encoding::Json);
    /// p.register_with::<Say>(MessageOptions::new().rate_limit(RateLimit::per_second(10)))?;
    /// p.handle(|_: &Say, _| {})?;
    /// p.on_limited::<Say>(|agent| {
    ///     let _ = agent.write(&Say { text: "slow down".into() });
    /// })?;
    /// # Ok::<(), longlink::processor::ProcessorError>(())
    /// ```
    pub fn on_limited<T: 'static>(
        &mut self,
        f: impl Fn(&Agent) + Send + Sync + 'static,
    ) -> Result<(), ProcessorError> {
        let (route, info) = self.incoming_route::<T>()?;
        if info.rate_limit.is_none() {
            return Err(ProcessorError::NoRateLimit(type_name::<T>()));
        }
        route.limited = Some(Arc::new(f));
        Ok(())
    }
}

/// A limited type's place among the limited types, and its limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    /// Its bucket's index in a connection's buckets.
    pub(crate) slot: usize,
    pub(crate) limit: RateLimit,
}

/// The limits of every registered type, by the registry's index: `None` for most.
pub(super) fn limits(per_type: impl Iterator<Item = Option<RateLimit>>) -> Box<[Option<Limit>]> {
    let mut slot = 0;
    per_type
        .map(|limit| {
            limit.map(|limit| {
                slot += 1;
                Limit {
                    slot: slot - 1,
                    limit,
                }
            })
        })
        .collect()
}

/// What a message over its type's limit calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// It was dropped (and the hook ran): read on.
    Dropped,
    /// Close the connection once the messages already read are answered.
    Close,
}
