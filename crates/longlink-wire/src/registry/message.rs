//! What the registry knows of each message, and how it is told: [`MessageOptions`] in,
//! [`MessageInfo`] out.

use crate::kind::Encoding;

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

/// Per-type registration options: an explicit name, a pinned protobuf id, the direction.
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
}

/// What is known of one registered message (for manifests and diagnostics). Serializes as
/// its four public fields.
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
