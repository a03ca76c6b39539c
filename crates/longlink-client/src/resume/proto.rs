//! The `LL_` messages of the resume protocol ([`longlink_wire::resume`]) as the resumable
//! client sends and reads them, with a registry of their own: the application's
//! [`Messages`](crate::Messages) is not touched (it may be shared), and no `LL_` message
//! ever reaches the application.

use bytes::Bytes;
use longlink_wire::resume::{
    self, LlAck, LlMove, LlResume, LlResumeRefused, LlResumed, LlSession, LlSessionStart,
};
use longlink_wire::{Encoding, Registry};

use crate::error::{Error, Result};

/// A protocol message from the server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ll {
    Session {
        token: String,
        window_s: u32,
    },
    Resumed {
        token: String,
        last_seq: u64,
    },
    Refused(String),
    Ack(u64),
    /// `LL_Move{after_ms}`: the gate is stopping; reconnect elsewhere after this long.
    Move(u32),
    /// `LL_SessionStart` or `LL_Resume`, which only clients send.
    Other,
}

/// The `LL_` messages in one encoding.
pub(crate) struct Proto {
    registry: Registry,
    encoding: Encoding,
    id_little_endian: bool,
}

impl Proto {
    pub(crate) fn new(encoding: Encoding, id_little_endian: bool) -> Proto {
        let mut registry = Registry::new();
        resume::register(&mut registry).expect("the LL_ messages register in an empty registry");
        Proto {
            registry,
            encoding,
            id_little_endian,
        }
    }

    fn encode<T: 'static>(&self, msg: &T) -> Bytes {
        let mut out = Vec::with_capacity(64);
        self.registry
            .encode(msg, self.encoding, self.id_little_endian, &mut out)
            .expect("the LL_ messages encode in both encodings");
        Bytes::from(out)
    }

    pub(crate) fn session_start(&self) -> Bytes {
        self.encode(&LlSessionStart {})
    }

    pub(crate) fn resume(&self, token: &str, last_seq: u64) -> Bytes {
        self.encode(&LlResume {
            token: token.to_owned(),
            last_seq,
        })
    }

    pub(crate) fn ack(&self, seq: u64) -> Bytes {
        self.encode(&LlAck { seq })
    }

    /// Whether a payload is one of the protocol's ([`resume::is_protocol_payload`]). Cheap:
    /// the body is not looked at.
    pub(crate) fn is_protocol(&self, payload: &[u8]) -> bool {
        resume::is_protocol_payload(payload, self.encoding, self.id_little_endian)
    }

    /// Decodes a payload [`is_protocol`](Self::is_protocol) said is one of the protocol's.
    pub(crate) fn decode(&self, payload: &[u8]) -> Result<Ll> {
        let (index, value) = self
            .registry
            .decode(payload, self.encoding, self.id_little_endian)
            .map_err(Error::Decode)?;
        let ll = match self.registry.info(index).id {
            resume::SESSION_ID => value
                .downcast::<LlSession>()
                .map(|m| Ll::Session {
                    token: m.token,
                    window_s: m.window_s,
                })
                .ok(),
            resume::RESUMED_ID => value
                .downcast::<LlResumed>()
                .map(|m| Ll::Resumed {
                    token: m.token,
                    last_seq: m.last_seq,
                })
                .ok(),
            resume::RESUME_REFUSED_ID => value
                .downcast::<LlResumeRefused>()
                .map(|m| Ll::Refused(m.reason))
                .ok(),
            resume::ACK_ID => value.downcast::<LlAck>().map(|m| Ll::Ack(m.seq)).ok(),
            resume::MOVE_ID => value
                .downcast::<LlMove>()
                .map(|m| Ll::Move(m.after_ms))
                .ok(),
            _ => Some(Ll::Other),
        };
        Ok(ll.unwrap_or(Ll::Other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_payloads_are_told_apart_and_decoded() {
        for (encoding, le) in [
            (Encoding::Json, false),
            (Encoding::Protobuf, false),
            (Encoding::Protobuf, true),
        ] {
            let p = Proto::new(encoding, le);
            for payload in [p.session_start(), p.resume("t", 3), p.ack(9)] {
                assert!(p.is_protocol(&payload), "{encoding}: {payload:?}");
            }
            assert_eq!(p.decode(&p.ack(9)).unwrap(), Ll::Ack(9));
            assert_eq!(p.decode(&p.resume("t", 3)).unwrap(), Ll::Other);
            let mut out = Vec::new();
            let session = LlSession {
                token: "tok".into(),
                window_s: 30,
            };
            p.registry.encode(&session, encoding, le, &mut out).unwrap();
            assert_eq!(
                p.decode(&out).unwrap(),
                Ll::Session {
                    token: "tok".into(),
                    window_s: 30
                }
            );
        }
        let json = Proto::new(Encoding::Json, false);
        assert!(json.is_protocol(br#" { "LL_Ack" : {"seq":1}}"#));
        assert!(!json.is_protocol(br#"{"S2C_Message":{"text":"LL_"}}"#));
        assert!(!json.is_protocol(b""));
        let pb = Proto::new(Encoding::Protobuf, false);
        assert!(!pb.is_protocol(&[0x00, 0x06, 0x08]));
        assert!(!pb.is_protocol(&[0xff]));
        assert!(pb.is_protocol(&[0xff, 0xfe]));
        assert_eq!(
            pb.decode(&[0xff, 0xf9, 0x08, 0xb0, 0x09]).unwrap(),
            Ll::Move(1200)
        );
        assert_eq!(
            json.decode(br#"{"LL_Move":{"after_ms":1200}}"#).unwrap(),
            Ll::Move(1200)
        );
        assert_eq!(
            pb.decode(&[0xff, 0xfe]).unwrap(),
            Ll::Refused(String::new())
        );
    }
}
