//! How a registered message travels: its [`Delivery`] class to clients (with the key of a
//! latest-per-key type), and the [`RateLimit`] of an incoming type. Both are chosen at
//! registration ([`MessageOptions`](super::MessageOptions)); what they mean for the resume
//! protocol's count is in [`crate::resume`].

use std::any::{Any, TypeId, type_name};
use std::fmt;
use std::sync::Arc;

/// How a server-to-client message travels: the class a type is registered with.
///
/// The manifest states it as `"delivery"`. For the resume protocol's count: `reliable` and
/// `latest` messages are numbered (counted by both sides), `volatile` ones are not.
///
/// ```
/// use longlink_wire::Delivery;
///
/// assert_eq!(serde_json::to_string(&Delivery::Latest).unwrap(), r#""latest""#);
/// assert!(Delivery::Reliable.numbered() && Delivery::Latest.numbered());
/// assert!(!Delivery::Volatile.numbered());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Queued in order, counted against the queue's bounds (`queue_full` applies), replayed
    /// on resume. The default.
    #[default]
    Reliable,
    /// Sent only while the connection's queue is short; otherwise dropped and counted. Never
    /// numbered, never replayed, never the cause of a disconnect.
    Volatile,
    /// At most one of a type and key waits in a connection's queue: a newer one replaces
    /// the waiting one (only while it is unwritten), taking its number.
    Latest,
}

impl Delivery {
    /// Whether messages of this class are numbered by the resume protocol (counted by the
    /// client, acknowledged, replayed).
    pub fn numbered(self) -> bool {
        self != Delivery::Volatile
    }

    /// The manifest's word: `"reliable"`, `"volatile"` or `"latest"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Reliable => "reliable",
            Delivery::Volatile => "volatile",
            Delivery::Latest => "latest",
        }
    }
}

/// The key function of a latest-per-key type, on a value of any type: `None` when the value
/// is not of the registered type.
pub(super) type KeyFn = Arc<dyn Fn(&dyn Any) -> Option<u64> + Send + Sync>;

/// The class asked for at registration, with the key function and the type it takes.
#[derive(Clone, Default)]
pub(super) enum Class {
    #[default]
    Reliable,
    Volatile,
    Latest {
        key: KeyFn,
        of: TypeId,
        type_name: &'static str,
    },
}

impl fmt::Debug for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Class::Reliable => f.write_str("Reliable"),
            Class::Volatile => f.write_str("Volatile"),
            Class::Latest { type_name, .. } => write!(f, "Latest(key of {type_name})"),
        }
    }
}

impl Class {
    pub(super) fn latest<T: 'static>(key: impl Fn(&T) -> u64 + Send + Sync + 'static) -> Class {
        Class::Latest {
            key: Arc::new(move |value: &dyn Any| value.downcast_ref::<T>().map(&key)),
            of: TypeId::of::<T>(),
            type_name: type_name::<T>(),
        }
    }

    pub(super) fn delivery(&self) -> Delivery {
        match self {
            Class::Reliable => Delivery::Reliable,
            Class::Volatile => Delivery::Volatile,
            Class::Latest { .. } => Delivery::Latest,
        }
    }
}

/// What happens to an incoming message over its type's [`RateLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverLimit {
    /// The message is dropped and counted; the server's hook for the type (if any) may
    /// answer the client. The connection stays.
    #[default]
    Drop,
    /// The messages already read are answered, then the connection is closed (as the
    /// whole-connection `max_msg_rate` does).
    Close,
}

/// A limit on how often one connection may send one incoming type: a token bucket of
/// `per_sec` messages a second holding at most `burst`.
///
/// ```
/// use longlink_wire::{OverLimit, RateLimit};
///
/// let limit = RateLimit::per_second(5).burst(10).over(OverLimit::Close);
/// assert_eq!((limit.per_sec, limit.burst, limit.over), (5, 10, OverLimit::Close));
/// assert_eq!(RateLimit::per_second(20).burst, 20); // the burst defaults to the rate
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RateLimit {
    /// Messages per second (at least 1).
    pub per_sec: u32,
    /// Most messages at once (at least 1; the rate unless set).
    pub burst: u32,
    /// What a message over the limit gets.
    pub over: OverLimit,
}

impl RateLimit {
    /// `per_sec` messages a second (0 is taken as 1), burst the same, over it dropped.
    pub fn per_second(per_sec: u32) -> RateLimit {
        let per_sec = per_sec.max(1);
        RateLimit {
            per_sec,
            burst: per_sec,
            over: OverLimit::Drop,
        }
    }

    /// Most messages at once (0 is taken as 1).
    pub fn burst(mut self, burst: u32) -> RateLimit {
        self.burst = burst.max(1);
        self
    }

    /// What a message over the limit gets.
    pub fn over(mut self, over: OverLimit) -> RateLimit {
        self.over = over;
        self
    }
}
