#![doc = include_str!("resume.md")]
//!
//! # The messages in code
//!
//! [`register`] adds the seven to a registry, in both encodings:
//!
//! ```
//! use longlink_wire::resume::{self, LlAck, LlSession};
//! use longlink_wire::{Encoding, Registry};
//!
//! let mut registry = Registry::new();
//! resume::register(&mut registry)?;
//! let mut out = Vec::new();
//! registry.encode(&LlAck { seq: 12 }, Encoding::Json, false, &mut out)?;
//! assert_eq!(out, br#"{"LL_Ack":{"seq":12}}"#);
//! out.clear();
//! registry.encode(&LlAck { seq: 12 }, Encoding::Protobuf, false, &mut out)?;
//! assert_eq!(out, [0xff, 0xff, 0x08, 12]);
//! let session = LlSession { token: "t".into(), window_s: 30 };
//! out.clear();
//! registry.encode(&session, Encoding::Json, false, &mut out)?;
//! assert_eq!(out, br#"{"LL_Session":{"token":"t","window_s":30}}"#);
//! out.clear();
//! registry.encode(&resume::LlMove { after_ms: 1200 }, Encoding::Json, false, &mut out)?;
//! assert_eq!(out, br#"{"LL_Move":{"after_ms":1200}}"#);
//! out.clear();
//! registry.encode(&resume::LlMove { after_ms: 1200 }, Encoding::Protobuf, false, &mut out)?;
//! assert_eq!(out, [0xff, 0xf9, 0x08, 0xb0, 0x09]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::Encoding;
use crate::registry::{MessageOptions, Registry, RegistryError};

/// `LL_Move`'s protobuf id: the lowest of the protocol's.
pub const MOVE_ID: u16 = 65529;
/// `LL_SessionStart`'s protobuf id.
pub const SESSION_START_ID: u16 = 65530;
/// `LL_Session`'s protobuf id.
pub const SESSION_ID: u16 = 65531;
/// `LL_Resume`'s protobuf id.
pub const RESUME_ID: u16 = 65532;
/// `LL_Resumed`'s protobuf id.
pub const RESUMED_ID: u16 = 65533;
/// `LL_ResumeRefused`'s protobuf id.
pub const RESUME_REFUSED_ID: u16 = 65534;
/// `LL_Ack`'s protobuf id.
pub const ACK_ID: u16 = 65535;

/// Whether a message name is one of the protocol's (they all start with `LL_`).
pub fn is_protocol_name(name: &str) -> bool {
    name.starts_with("LL_")
}

/// Whether a payload is one of the protocol's, from its envelope alone (the body is not
/// read): a protobuf id of 65529 or more (in `id_little_endian` order), or a JSON object whose
/// one key starts with `LL_`.
///
/// ```
/// use longlink_wire::Encoding;
/// use longlink_wire::resume::is_protocol_payload;
///
/// assert!(is_protocol_payload(br#" { "LL_Ack":{"seq":1}}"#, Encoding::Json, false));
/// assert!(!is_protocol_payload(br#"{"Hello":{}}"#, Encoding::Json, false));
/// assert!(is_protocol_payload(&[0xff, 0xff, 0x08, 0x01], Encoding::Protobuf, false));
/// assert!(!is_protocol_payload(&[0x00, 0x01], Encoding::Protobuf, false));
/// assert!(is_protocol_payload(&[0xfa, 0xff], Encoding::Protobuf, true));
/// assert!(is_protocol_payload(&[0xff, 0xf9], Encoding::Protobuf, false)); // LL_Move
/// assert!(!is_protocol_payload(&[0xff, 0xf8], Encoding::Protobuf, false));
/// ```
pub fn is_protocol_payload(payload: &[u8], encoding: Encoding, id_little_endian: bool) -> bool {
    match encoding {
        Encoding::Protobuf => {
            let [a, b, ..] = *payload else {
                return false;
            };
            let id = if id_little_endian {
                u16::from_le_bytes([a, b])
            } else {
                u16::from_be_bytes([a, b])
            };
            id >= MOVE_ID
        }
        Encoding::Json => payload
            .trim_ascii_start()
            .strip_prefix(b"{")
            .is_some_and(|rest| rest.trim_ascii_start().starts_with(b"\"LL_")),
    }
}

/// Why a resume was refused (`LL_ResumeRefused.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// No such session (a forged token, or a gate that has since restarted).
    Unknown,
    /// The window lapsed before the client came back.
    Expired,
    /// The token is an old one: the session was resumed with a newer token, or taken over.
    Replaced,
    /// More messages waited for the client than `resume_buffer` allows.
    Overflow,
    /// The session is still there but could not be resumed just now: it is held by another
    /// gate of the cluster and moving it failed (a timeout, a lost chunk, NATS away). It
    /// stays where it was: resume again (on any gate), after a backoff, within the window.
    Retry,
}

impl RefuseReason {
    /// The reason as it travels.
    pub fn as_str(self) -> &'static str {
        match self {
            RefuseReason::Unknown => "unknown",
            RefuseReason::Expired => "expired",
            RefuseReason::Replaced => "replaced",
            RefuseReason::Overflow => "overflow",
            RefuseReason::Retry => "retry",
        }
    }

    /// Every reason, for metrics labels.
    pub const ALL: [RefuseReason; 5] = [
        RefuseReason::Unknown,
        RefuseReason::Expired,
        RefuseReason::Replaced,
        RefuseReason::Overflow,
        RefuseReason::Retry,
    ];

    /// Whether the session is gone (log in again); false for [`RefuseReason::Retry`]
    /// (resume again).
    ///
    /// ```
    /// use longlink_wire::resume::RefuseReason;
    /// assert!(RefuseReason::Expired.is_final());
    /// assert!(!RefuseReason::Retry.is_final());
    /// ```
    pub fn is_final(self) -> bool {
        self != RefuseReason::Retry
    }

    /// The reason named `s`, if it is one of [`RefuseReason::ALL`].
    pub fn parse(s: &str) -> Option<RefuseReason> {
        RefuseReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Client → server: make this connection's session resumable.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
pub struct LlSessionStart {}

/// Server → client: the session's token and window.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
pub struct LlSession {
    /// What `LL_Resume` must carry; opaque.
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub token: String,
    /// How long after a drop the session waits for the client, in seconds.
    #[prost(uint32, tag = "2")]
    #[serde(default)]
    pub window_s: u32,
}

/// Client → server, first on a new connection: resume the session of `token`.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
pub struct LlResume {
    /// The latest token the server gave.
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub token: String,
    /// The number of the last server application message received.
    #[prost(uint64, tag = "2")]
    #[serde(default)]
    pub last_seq: u64,
}

/// Server → client: resumed.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
pub struct LlResumed {
    /// The new token; the old one is dead.
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub token: String,
    /// The number of the last client application message the server handled.
    #[prost(uint64, tag = "2")]
    #[serde(default)]
    pub last_seq: u64,
}

/// Server → client: no session to resume (or no longer one); the connection is a fresh one.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
pub struct LlResumeRefused {
    /// `"unknown"`, `"expired"`, `"replaced"` or `"overflow"` ([`RefuseReason`]).
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub reason: String,
}

/// Both ways, cumulative: everything up to `seq` arrived.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
pub struct LlAck {
    /// The number of the last application message received.
    #[prost(uint64, tag = "1")]
    #[serde(default)]
    pub seq: u64,
}

/// Server → client: this gate is stopping; after `after_ms` milliseconds, reconnect (to any
/// gate of the cluster) and resume the session there (`LL_Resume`). Until then the
/// connection goes on as before, and the gate keeps serving the session until another gate
/// takes it over.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
pub struct LlMove {
    /// How long to wait before reconnecting, in milliseconds: the gate spreads its clients'
    /// reconnections over its `drain_spread`.
    #[prost(uint32, tag = "1")]
    #[serde(default)]
    pub after_ms: u32,
}

/// The protocol's messages as a server registers them: `(name, id, server → client only)`,
/// in registration order (`LL_Move`, the newest, last).
pub const MESSAGES: [(&str, u16, bool); 7] = [
    ("LL_SessionStart", SESSION_START_ID, false),
    ("LL_Session", SESSION_ID, true),
    ("LL_Resume", RESUME_ID, false),
    ("LL_Resumed", RESUMED_ID, true),
    ("LL_ResumeRefused", RESUME_REFUSED_ID, true),
    ("LL_Ack", ACK_ID, false),
    ("LL_Move", MOVE_ID, true),
];

/// Registers the seven messages, in both encodings, with their names and ids; the
/// server-to-client ones as outgoing (a client that sends one breaks the protocol).
pub fn register(registry: &mut Registry) -> Result<(), RegistryError> {
    fn opts(i: usize) -> MessageOptions {
        let (name, id, outgoing) = MESSAGES[i];
        let opts = MessageOptions::new().name(name).id(id);
        if outgoing { opts.outgoing() } else { opts }
    }
    registry.register::<LlSessionStart>(opts(0))?;
    registry.register::<LlSession>(opts(1))?;
    registry.register::<LlResume>(opts(2))?;
    registry.register::<LlResumed>(opts(3))?;
    registry.register::<LlResumeRefused>(opts(4))?;
    registry.register::<LlAck>(opts(5))?;
    registry.register::<LlMove>(opts(6))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips_in_both_encodings_with_its_id() {
        let mut r = Registry::new();
        register(&mut r).unwrap();
        for (name, id, _) in MESSAGES {
            let index = r.index_of_name(name).unwrap();
            assert_eq!(r.info(index).id, id);
        }
        let resumed = LlResumed {
            token: "abc".into(),
            last_seq: 7,
        };
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            let mut out = Vec::new();
            r.encode(&resumed, encoding, false, &mut out).unwrap();
            let (index, value) = r.decode(&out, encoding, false).unwrap();
            assert_eq!(r.info(index).name, "LL_Resumed");
            assert_eq!(*value.downcast::<LlResumed>().unwrap(), resumed);
        }
        let mut out = Vec::new();
        r.encode(&resumed, Encoding::Protobuf, false, &mut out)
            .unwrap();
        assert_eq!(out, [0xff, 0xfd, 0x0a, 3, b'a', b'b', b'c', 0x10, 7]);
        let (index, _) = r
            .decode(br#"{"LL_SessionStart":{}}"#, Encoding::Json, false)
            .unwrap();
        assert_eq!(r.info(index).id, SESSION_START_ID);
        let (index, value) = r
            .decode(br#"{"LL_Move":{"after_ms":1200}}"#, Encoding::Json, false)
            .unwrap();
        assert_eq!(r.info(index).id, MOVE_ID);
        assert_eq!(
            *value.downcast::<LlMove>().unwrap(),
            LlMove { after_ms: 1200 }
        );
        let (_, value) = r
            .decode(&[0xff, 0xf9, 0x08, 0xb0, 0x09], Encoding::Protobuf, false)
            .unwrap();
        assert_eq!(
            *value.downcast::<LlMove>().unwrap(),
            LlMove { after_ms: 1200 }
        );
    }

    #[test]
    fn an_application_id_in_the_reserved_range_is_refused_when_resume_registers() {
        #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
        struct Mine {}
        let mut r = Registry::new();
        r.register::<Mine>(MessageOptions::new().id(ACK_ID))
            .unwrap();
        assert!(matches!(
            register(&mut r),
            Err(RegistryError::DuplicateId { id: ACK_ID, .. })
        ));
    }

    #[test]
    fn reasons_have_their_wire_names() {
        for r in RefuseReason::ALL {
            assert_eq!(RefuseReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(RefuseReason::parse("nope"), None);
    }
}
