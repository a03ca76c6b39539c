//! The steps of a session's hand-over between gates, on `P.handover.<holder>`: every one a
//! NATS request from the new gate, each answer at most one chunk long.
//!
//! A session may hold far more than NATS carries in one message (`max_payload`, 1 MiB by
//! default): the holder encodes it once (a [`HandoverAnswer::Taken`](super::HandoverAnswer))
//! and the new gate fetches it in chunks, one request each, in order. Requests rather than a
//! stream the holder pushes: each chunk is answered or its request times out, so a lost
//! chunk is never mistaken for a whole session, and the new gate reads at its own pace (no
//! slow-consumer drops). Core NATS rather than a JetStream object: nothing is stored, so
//! nothing is left behind when a gate dies mid-way, and no stream needs configuring.
//!
//! 1. [`HandoverStep::Ask`]: the holder claims the session and answers
//!    [`HandoverReply::Offer`] (a transfer id and the length of the encoded session), or
//!    [`HandoverReply::Refused`].
//! 2. [`HandoverStep::Fetch`] for each chunk: [`HandoverReply::Chunk`].
//! 3. [`HandoverStep::Commit`]: if messages reached the session at the holder meanwhile, a
//!    new `Offer` of just those (an encoded list of payloads: fetch it, commit again);
//!    else the holder lets the session go and answers [`HandoverReply::Done`] (with the
//!    session's uid and groups as they are then).
//! 4. [`HandoverStep::Abort`], or no step within the holder's deadline: the session stays
//!    at the holder. An abort sent as a request is answered (after any step being served):
//!    the transfer's `Done` again if the holder had let the session go before it came (the
//!    new gate's wait ran out, or NATS lost the answer), else `Refused("retry")`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{HandoverRequest, Reader, WireError, put_str};

/// One request of the new gate to the holder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HandoverStep {
    /// The session of the request's token, please.
    Ask(HandoverRequest),
    /// Chunk `index` (from 0) of the transfer's current offer.
    Fetch { transfer: u64, index: u64 },
    /// The whole offer is here: let the session go, or offer what came meanwhile.
    Commit { transfer: u64 },
    /// The new gate gives up: the session stays at the holder.
    Abort { transfer: u64 },
}

/// The holder's answer to one step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HandoverReply {
    /// No (no longer a) session or transfer here: a resume's refusal reason.
    Refused(String),
    /// `len` bytes to fetch, in chunks of `chunk` bytes (the last one shorter).
    Offer { transfer: u64, len: u64, chunk: u64 },
    /// One chunk's bytes.
    Chunk(Bytes),
    /// The session is the new gate's; its uid (0: none), when it logged in, and its groups
    /// (as tokens), as they were when the holder let it go (they may have changed since the
    /// first offer), and where its group broadcasts stood when the holder cut it off them:
    /// `(publisher, last number delivered)`.
    Done {
        uid: u64,
        at: u64,
        groups: Vec<String>,
        marks: Vec<(u64, u64)>,
    },
}

const ASK: u8 = 1;
const FETCH: u8 = 2;
const COMMIT: u8 = 3;
const ABORT: u8 = 4;

const REFUSED: u8 = 1;
const OFFER: u8 = 2;
const CHUNK: u8 = 3;
const DONE: u8 = 4;

impl HandoverStep {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(32);
        match self {
            HandoverStep::Ask(request) => {
                out.put_u8(ASK);
                out.put_slice(&request.encode());
            }
            HandoverStep::Fetch { transfer, index } => {
                out.put_u8(FETCH);
                out.put_u64_le(*transfer);
                out.put_u64_le(*index);
            }
            HandoverStep::Commit { transfer } => {
                out.put_u8(COMMIT);
                out.put_u64_le(*transfer);
            }
            HandoverStep::Abort { transfer } => {
                out.put_u8(ABORT);
                out.put_u64_le(*transfer);
            }
        }
        out.freeze()
    }

    pub(crate) fn decode(bytes: Bytes) -> Result<HandoverStep, WireError> {
        let mut r = Reader(bytes);
        match r.u8()? {
            ASK => Ok(HandoverStep::Ask(HandoverRequest::decode(r.rest())?)),
            FETCH => Ok(HandoverStep::Fetch {
                transfer: r.u64()?,
                index: r.u64()?,
            }),
            COMMIT => Ok(HandoverStep::Commit { transfer: r.u64()? }),
            ABORT => Ok(HandoverStep::Abort { transfer: r.u64()? }),
            _ => Err(WireError("unknown hand-over step")),
        }
    }
}

impl HandoverReply {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(32);
        match self {
            HandoverReply::Refused(reason) => {
                out.put_u8(REFUSED);
                put_str(&mut out, reason);
            }
            HandoverReply::Offer {
                transfer,
                len,
                chunk,
            } => {
                out.put_u8(OFFER);
                out.put_u64_le(*transfer);
                out.put_u64_le(*len);
                out.put_u64_le(*chunk);
            }
            HandoverReply::Chunk(bytes) => {
                out.reserve(bytes.len());
                out.put_u8(CHUNK);
                out.put_slice(bytes);
            }
            HandoverReply::Done {
                uid,
                at,
                groups,
                marks,
            } => {
                out.put_u8(DONE);
                out.put_u64_le(*uid);
                out.put_u64_le(*at);
                out.put_u64_le(groups.len() as u64);
                for g in groups {
                    put_str(&mut out, g);
                }
                super::handover::put_marks(&mut out, marks);
            }
        }
        out.freeze()
    }

    pub(crate) fn decode(bytes: Bytes) -> Result<HandoverReply, WireError> {
        let mut r = Reader(bytes);
        match r.u8()? {
            REFUSED => Ok(HandoverReply::Refused(r.str()?)),
            OFFER => Ok(HandoverReply::Offer {
                transfer: r.u64()?,
                len: r.u64()?,
                chunk: r.u64()?,
            }),
            CHUNK => Ok(HandoverReply::Chunk(r.rest())),
            DONE => {
                let (uid, at) = (r.u64()?, r.u64()?);
                let groups = (0..r.count()?).map(|_| r.str()).collect::<Result<_, _>>()?;
                let marks = r.marks()?;
                Ok(HandoverReply::Done {
                    uid,
                    at,
                    groups,
                    marks,
                })
            }
            _ => Err(WireError("unknown hand-over reply")),
        }
    }
}

/// Payloads as one offer (what reached a session at its holder during a transfer): a count,
/// then each one's length and bytes.
pub(crate) fn encode_items(items: &[Bytes]) -> Bytes {
    let total: usize = items.iter().map(|i| i.len() + 8).sum();
    let mut out = BytesMut::with_capacity(total + 8);
    out.put_u64_le(items.len() as u64);
    for item in items {
        out.put_u64_le(item.len() as u64);
        out.put_slice(item);
    }
    out.freeze()
}

/// The payloads of [`encode_items`].
pub(crate) fn decode_items(bytes: Bytes) -> Result<Vec<Bytes>, WireError> {
    let mut r = Reader(bytes);
    let items = (0..r.count()?)
        .map(|_| r.bytes())
        .collect::<Result<_, _>>()?;
    if r.0.has_remaining() {
        return Err(WireError("bytes after the payloads"));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_replies_round_trip_and_refuse_garbage() {
        let steps = [
            HandoverStep::Ask(HandoverRequest {
                token: "g1.abc".into(),
                last_seq: 7,
                to_gate: "g2".into(),
                to_conn: 9,
                transport: 1,
                local: "127.0.0.1:1".into(),
                remote: "127.0.0.1:2".into(),
                after: vec![(11, 12)],
            }),
            HandoverStep::Fetch {
                transfer: 3,
                index: 4,
            },
            HandoverStep::Commit { transfer: 3 },
            HandoverStep::Abort { transfer: 3 },
        ];
        for step in steps {
            assert_eq!(HandoverStep::decode(step.encode()).unwrap(), step);
        }
        let replies = [
            HandoverReply::Refused("retry".into()),
            HandoverReply::Offer {
                transfer: 3,
                len: 5_000_000,
                chunk: 262_144,
            },
            HandoverReply::Chunk(Bytes::from_static(b"abc")),
            HandoverReply::Chunk(Bytes::new()),
            HandoverReply::Done {
                uid: 7,
                at: 9,
                groups: vec!["room_1".into(), "~ab".into()],
                marks: vec![(5, 6)],
            },
        ];
        for reply in replies {
            assert_eq!(HandoverReply::decode(reply.encode()).unwrap(), reply);
        }
        for bad in [&b""[..], &[0], &[9], &[FETCH, 1, 2], &[OFFER, 0, 0]] {
            assert!(HandoverStep::decode(Bytes::copy_from_slice(bad)).is_err());
            assert!(HandoverReply::decode(Bytes::copy_from_slice(bad)).is_err());
        }
    }

    #[test]
    fn item_lists_round_trip_and_refuse_garbage() {
        let items = vec![
            Bytes::from_static(b"a"),
            Bytes::new(),
            Bytes::from(vec![7; 5000]),
        ];
        let encoded = encode_items(&items);
        assert_eq!(decode_items(encoded.clone()).unwrap(), items);
        for cut in 0..encoded.len() {
            assert!(decode_items(encoded.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut longer = BytesMut::from(&encoded[..]);
        longer.put_u8(0);
        assert!(decode_items(longer.freeze()).is_err());
        assert_eq!(
            decode_items(encode_items(&[])).unwrap(),
            Vec::<Bytes>::new()
        );
    }
}
