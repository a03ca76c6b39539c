//! A session's hand-over between gates (a client resumed on another gate than the one that
//! held its session): the new gate's request on `P.handover.<holder>`, the holder's answer.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Reader, WireError, put_str};

/// The new gate asks the holder for the session of `token`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HandoverRequest {
    pub(crate) token: String,
    /// The last server message the client has.
    pub(crate) last_seq: u64,
    /// Where the session goes: the new gate and its connection there.
    pub(crate) to_gate: String,
    pub(crate) to_conn: u64,
    pub(crate) transport: u8,
    pub(crate) local: String,
    pub(crate) remote: String,
    /// Where the new gate's numbered group broadcasts stood when it began to hold them for
    /// the session: `(publisher, last number)` ([`crate::cluster::groupseq`]). The holder
    /// delivers at least this far before it cuts the session off its groups. Empty from a
    /// gate that does not number.
    pub(crate) after: Vec<(u64, u64)>,
}

/// The holder's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HandoverAnswer {
    /// No such session here (or no longer): the resume's refusal reason.
    Refused(String),
    /// The session, now the new gate's.
    Taken {
        /// Client messages handled.
        in_seq: u64,
        /// Its uid (0: none) and when it logged in.
        uid: u64,
        at: u64,
        /// Its groups, as tokens.
        groups: Vec<String>,
        /// Its backends: node type, node id.
        bindings: Vec<(String, String)>,
        /// The messages after the client's `last_seq`, oldest first.
        kept: Vec<Bytes>,
        /// The user data the holder's modules gave the session, serialized; absent (none)
        /// from a gate that does not carry it.
        user_data: Option<Bytes>,
    },
}

const REFUSED: u8 = 1;
const TAKEN: u8 = 2;

impl HandoverRequest {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(128);
        put_str(&mut out, &self.token);
        out.put_u64_le(self.last_seq);
        put_str(&mut out, &self.to_gate);
        out.put_u64_le(self.to_conn);
        out.put_u8(self.transport);
        put_str(&mut out, &self.local);
        put_str(&mut out, &self.remote);
        put_marks(&mut out, &self.after);
        out.freeze()
    }

    pub(crate) fn decode(bytes: Bytes) -> Result<HandoverRequest, WireError> {
        let mut r = Reader(bytes);
        Ok(HandoverRequest {
            token: r.str()?,
            last_seq: r.u64()?,
            to_gate: r.str()?,
            to_conn: r.u64()?,
            transport: r.u8()?,
            local: r.str()?,
            remote: r.str()?,
            after: r.marks()?,
        })
    }
}

impl HandoverAnswer {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64);
        match self {
            HandoverAnswer::Refused(reason) => {
                out.put_u8(REFUSED);
                put_str(&mut out, reason);
            }
            HandoverAnswer::Taken {
                in_seq,
                uid,
                at,
                groups,
                bindings,
                kept,
                user_data,
            } => {
                out.put_u8(TAKEN);
                out.put_u64_le(*in_seq);
                out.put_u64_le(*uid);
                out.put_u64_le(*at);
                out.put_u64_le(groups.len() as u64);
                for g in groups {
                    put_str(&mut out, g);
                }
                out.put_u64_le(bindings.len() as u64);
                for (ty, node) in bindings {
                    put_str(&mut out, ty);
                    put_str(&mut out, node);
                }
                out.put_u64_le(kept.len() as u64);
                for item in kept {
                    out.put_u64_le(item.len() as u64);
                    out.put_slice(item);
                }
                if let Some(data) = user_data {
                    out.put_u64_le(data.len() as u64);
                    out.put_slice(data);
                }
            }
        }
        out.freeze()
    }

    pub(crate) fn decode(bytes: Bytes) -> Result<HandoverAnswer, WireError> {
        let mut r = Reader(bytes);
        match r.u8()? {
            REFUSED => Ok(HandoverAnswer::Refused(r.str()?)),
            TAKEN => {
                let (in_seq, uid, at) = (r.u64()?, r.u64()?, r.u64()?);
                let groups = (0..r.count()?).map(|_| r.str()).collect::<Result<_, _>>()?;
                let bindings = (0..r.count()?)
                    .map(|_| Ok((r.str()?, r.str()?)))
                    .collect::<Result<_, WireError>>()?;
                let kept = (0..r.count()?)
                    .map(|_| r.bytes())
                    .collect::<Result<_, _>>()?;
                let user_data = match r.0.remaining() {
                    0 => None,
                    _ => Some(r.bytes()?),
                };
                Ok(HandoverAnswer::Taken {
                    in_seq,
                    uid,
                    at,
                    groups,
                    bindings,
                    kept,
                    user_data,
                })
            }
            _ => Err(WireError("unknown kind")),
        }
    }
}

/// Group broadcast marks, `(publisher, number)` pairs, after a count.
pub(super) fn put_marks(out: &mut BytesMut, marks: &[(u64, u64)]) {
    out.put_u64_le(marks.len() as u64);
    for (src, seq) in marks {
        out.put_u64_le(*src);
        out.put_u64_le(*seq);
    }
}

impl Reader {
    /// Marks ([`put_marks`]), or none when the envelope ends here (from a gate that does not
    /// number its group broadcasts).
    pub(super) fn marks(&mut self) -> Result<Vec<(u64, u64)>, WireError> {
        if self.0.remaining() == 0 {
            return Ok(Vec::new());
        }
        let n = self.count()?;
        (0..n).map(|_| Ok((self.u64()?, self.u64()?))).collect()
    }

    /// A count of items that follow; each takes at least one byte, so a count larger than
    /// what is left is malformed (and never allocates).
    pub(super) fn count(&mut self) -> Result<u64, WireError> {
        let n = self.u64()?;
        if n > self.0.remaining() as u64 {
            return Err(WireError("count larger than the envelope"));
        }
        Ok(n)
    }

    pub(super) fn bytes(&mut self) -> Result<Bytes, WireError> {
        let n = self.count()? as usize;
        Ok(self.0.split_to(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let req = HandoverRequest {
            token: "g1.abc".into(),
            last_seq: 7,
            to_gate: "g2".into(),
            to_conn: 9,
            transport: 1,
            local: "127.0.0.1:1".into(),
            remote: "127.0.0.1:2".into(),
            after: vec![(1, 2), (u64::MAX, 0)],
        };
        assert_eq!(HandoverRequest::decode(req.encode()).unwrap(), req);
        let taken = HandoverAnswer::Taken {
            in_seq: 3,
            uid: 42,
            at: 1,
            groups: vec!["room_1".into()],
            bindings: vec![("chat".into(), "chat-1".into())],
            kept: vec![
                Bytes::from_static(b"a"),
                Bytes::new(),
                Bytes::from_static(b"bc"),
            ],
            user_data: None,
        };
        assert_eq!(HandoverAnswer::decode(taken.encode()).unwrap(), taken);
        let HandoverAnswer::Taken { kept, .. } = taken.clone() else {
            unreachable!()
        };
        let carrying = HandoverAnswer::Taken {
            in_seq: 3,
            uid: 42,
            at: 1,
            groups: Vec::new(),
            bindings: Vec::new(),
            kept,
            user_data: Some(Bytes::from_static(br#"{"room":5}"#)),
        };
        assert_eq!(HandoverAnswer::decode(carrying.encode()).unwrap(), carrying);
        let refused = HandoverAnswer::Refused("expired".into());
        assert_eq!(HandoverAnswer::decode(refused.encode()).unwrap(), refused);
        let encoded = taken.encode();
        for cut in 0..encoded.len() {
            assert!(
                HandoverAnswer::decode(encoded.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
        let mut huge = BytesMut::new();
        huge.put_u8(TAKEN);
        huge.put_slice(&[0; 24]);
        huge.put_u64_le(u64::MAX);
        assert!(HandoverAnswer::decode(huge.freeze()).is_err());
    }
}
