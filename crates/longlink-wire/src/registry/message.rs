//! What the registry knows of each message, and how it is told: [`MessageOptions`] in,
//! [`MessageInfo`] out.

use crate::kind::Encoding;

use super::delivery::{Class, Delivery, RateLimit};

/// Which way a registered message travels.
///
/// ```
/// use longlink_wire::Direction;
///
/// assert_eq!(serde_json::to_string(&Direction::Outgoing).unwrap(), r#""outgoing""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Accepted from clients (and may also be sent to them); it needs a destination.
    Incoming,
    /// Only sent to clients; a client that sends it gets its connection closed.
    Outgoing,
}

/// Per-type registration options: an explicit name, a pinned protobuf id, the direction, the
/// delivery class of what the server sends, and a rate limit on what clients send.
///
/// ```
/// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
/// # struct S2cKick {}
/// use longlink_wire::{Direction, MessageOptions, Registry};
///
/// let mut registry = Registry::new();
/// let info = registry.register::<S2cKick>(MessageOptions::new().name("S2C_Kick").id(7).outgoing())?;
/// assert_eq!((info.name.as_str(), info.id, info.direction), ("S2C_Kick", 7, Direction::Outgoing));
/// # Ok::<(), longlink_wire::RegistryError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MessageOptions {
    /// The JSON name; `None`: the bare type name.
    pub(super) name: Option<String>,
    /// The protobuf id; `None`: the registration order.
    pub(super) id: Option<u16>,
    /// Server-to-client only.
    pub(super) outgoing: bool,
    /// How the server sends it (with the key of a latest-per-key type).
    pub(super) class: Class,
    /// How often one connection may send it.
    pub(super) rate_limit: Option<RateLimit>,
}

impl MessageOptions {
    /// Default options: bare type name, next id in registration order, incoming.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the JSON name (the envelope key) instead of the bare Rust type name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Pins the protobuf id instead of taking the registration order.
    pub fn id(mut self, id: u16) -> Self {
        self.id = Some(id);
        self
    }
    /// Marks the type as server-to-client only.
    pub fn outgoing(mut self) -> Self {
        self.outgoing = true;
        self
    }
    /// Sends it [`Delivery::Volatile`]: only while the connection's queue is short, else
    /// dropped and counted; never numbered by the resume protocol, never replayed.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct S2cTyping {}
    /// use longlink_wire::{Delivery, MessageOptions, Registry};
    ///
    /// let mut registry = Registry::new();
    /// let info = registry.register::<S2cTyping>(MessageOptions::new().outgoing().volatile())?;
    /// assert_eq!(info.delivery, Delivery::Volatile);
    /// # Ok::<(), longlink_wire::RegistryError>(())
    /// ```
    pub fn volatile(mut self) -> Self {
        self.class = Class::Volatile;
        self
    }
    /// Sends it [`Delivery::Latest`] per `key` (a function of the message, e.g. its room):
    /// at most one of a key waits in a connection's queue, a newer one replaces it. `T` must
    /// be the registered type ([`RegistryError::KeyType`](crate::RegistryError::KeyType)
    /// otherwise).
    ///
    /// ```
    /// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// struct RoomInfo { #[prost(uint64, tag = "1")] room_id: u64 }
    /// use longlink_wire::{Delivery, MessageOptions, Registry};
    ///
    /// let mut registry = Registry::new();
    /// let opts = MessageOptions::new().outgoing().latest_by(|m: &RoomInfo| m.room_id);
    /// assert_eq!(registry.register::<RoomInfo>(opts)?.delivery, Delivery::Latest);
    /// assert_eq!(registry.latest_key(0, &RoomInfo { room_id: 7 }), Some(7));
    /// # Ok::<(), longlink_wire::RegistryError>(())
    /// ```
    pub fn latest_by<T: 'static>(
        mut self,
        key: impl Fn(&T) -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.class = Class::latest(key);
        self
    }
    /// Limits how often one connection may send it (see [`RateLimit`]).
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }
}

/// What is known of one registered message (for manifests and diagnostics). Serializes as
/// its public fields (`rate_limit` only when there is one).
///
/// ```
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Hello {}
/// use longlink_wire::{Encoding, MessageOptions, Registry};
///
/// let mut registry = Registry::new();
/// let info = registry.register_json::<Hello>(MessageOptions::new())?;
/// assert!(info.supports(Encoding::Json) && !info.supports(Encoding::Protobuf));
/// let json = serde_json::to_value(info).unwrap();
/// assert_eq!(json["name"], "Hello");
/// assert_eq!(json["direction"], "incoming");
/// # Ok::<(), longlink_wire::RegistryError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageInfo {
    /// JSON envelope key and protobuf message name.
    pub name: String,
    /// Protobuf id.
    pub id: u16,
    /// The Rust type.
    pub type_name: &'static str,
    /// Incoming or outgoing.
    pub direction: Direction,
    /// How the server sends it.
    pub delivery: Delivery,
    /// How often one connection may send it, if limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Registered with a JSON codec.
    #[serde(skip)]
    pub(super) json: bool,
    /// Registered with a protobuf codec.
    #[serde(skip)]
    pub(super) protobuf: bool,
}

impl MessageInfo {
    /// Whether the type was registered with a codec for `encoding`.
    pub fn supports(&self, encoding: Encoding) -> bool {
        match encoding {
            Encoding::Json => self.json,
            Encoding::Protobuf => self.protobuf,
        }
    }
}
