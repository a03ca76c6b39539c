//! The batch envelope: several envelopes for one subject in one NATS message, in order.
//!
//! A node's publisher puts what it has queued for one gate or backend node, one after the
//! other, into one batch (`cluster::coalesce`); a receiver reads the items in order and
//! handles each as if it had come alone. A payload that does not start with the batch kind
//! is one item (what a single envelope, or an older node, sends).
//!
//! Layout: the kind byte [`BATCH`], a version byte ([`VERSION`]), then each item as a
//! little-endian `u32` length and its bytes. A batch of another version is refused with an
//! error that names it (a newer node's), never read as something else.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Body, WireError};

/// The first byte of a batch: no single envelope starts with it.
pub(crate) const BATCH: u8 = 64;

/// The batch layout this node writes and reads.
pub(crate) const VERSION: u8 = 1;

/// Builds one batch.
pub(crate) struct BatchWriter {
    out: BytesMut,
    items: usize,
}

impl BatchWriter {
    /// An empty batch, with room for about `capacity` bytes of items.
    pub(crate) fn new(capacity: usize) -> BatchWriter {
        let mut out = BytesMut::with_capacity(capacity + 2);
        out.put_u8(BATCH);
        out.put_u8(VERSION);
        BatchWriter { out, items: 0 }
    }

    /// Appends one envelope (at most `u32::MAX` bytes: far above NATS's payload limit).
    #[cfg(test)]
    pub(crate) fn push(&mut self, item: &[u8]) {
        let len = u32::try_from(item.len()).unwrap_or(u32::MAX);
        self.out.put_u32_le(len);
        self.out.put_slice(&item[..len as usize]);
        self.items += 1;
    }

    /// Appends one envelope encoded in place (`node`: this node's id, for those that name
    /// it): no buffer of its own, no copy.
    pub(crate) fn push_body(&mut self, body: &Body, node: &str) {
        let len = body.len(node);
        self.out.reserve(4 + len);
        self.out.put_u32_le(u32::try_from(len).unwrap_or(u32::MAX));
        let at = self.out.len();
        body.write(node, &mut self.out);
        debug_assert_eq!(self.out.len() - at, len, "a body's length as written");
        self.items += 1;
    }

    /// How many envelopes it holds.
    pub(crate) fn items(&self) -> usize {
        self.items
    }

    /// Its size in bytes so far.
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// The batch, holding no more memory than its bytes: a node keeps the NATS messages of
    /// commands it sent to each gate (`groupseq`, bounded by their length), and a buffer
    /// grown item by item has up to twice the room it uses.
    pub(crate) fn finish(self) -> Bytes {
        let mut out = Vec::from(self.out);
        out.shrink_to_fit();
        Bytes::from(out)
    }
}

/// The envelopes of one NATS message, in order: the items of a batch, or the payload itself.
pub(crate) fn items(payload: Bytes) -> Result<Items, WireError> {
    if payload.first() != Some(&BATCH) {
        return Ok(Items {
            rest: payload,
            single: true,
        });
    }
    match payload.get(1) {
        Some(&VERSION) => Ok(Items {
            rest: payload.slice(2..),
            single: false,
        }),
        Some(_) => Err(WireError(
            "batch of an unknown version (sent by a newer node?)",
        )),
        None => Err(WireError("truncated batch")),
    }
}

/// The envelopes of one NATS message ([`items`]); a truncated item ends it with an error.
pub(crate) struct Items {
    rest: Bytes,
    single: bool,
}

impl Iterator for Items {
    type Item = Result<Bytes, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.single {
            self.single = false;
            return Some(Ok(std::mem::take(&mut self.rest)));
        }
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.remaining() < 4 {
            self.rest.clear();
            return Some(Err(WireError("truncated batch item length")));
        }
        let len = self.rest.get_u32_le() as usize;
        if self.rest.remaining() < len {
            self.rest.clear();
            return Some(Err(WireError("truncated batch item")));
        }
        Some(Ok(self.rest.split_to(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::wire::body::tests as body_tests;
    use proptest::prelude::*;

    #[test]
    fn a_batch_gives_back_its_items_in_order() {
        let mut w = BatchWriter::new(64);
        for item in [&b"\x0aone"[..], b"", b"\x02three"] {
            w.push(item);
        }
        assert_eq!(w.items(), 3);
        let got: Vec<Bytes> = items(w.finish()).unwrap().map(Result::unwrap).collect();
        assert_eq!(got, vec![&b"\x0aone"[..], b"", b"\x02three"]);
    }

    #[test]
    fn numbered_forwards_and_their_acknowledgements_round_trip_in_a_batch() {
        let forward = crate::cluster::wire::ToBackend::Forward {
            gate: "g1".into(),
            conn: 7,
            seq: u64::MAX,
            payload: Bytes::from_static(b"{\"A\":{}}"),
        };
        let handled = crate::cluster::wire::ToGate::Handled { seq: 42 };
        let mut w = BatchWriter::new(64);
        w.push(&forward.encode());
        w.push(&handled.encode());
        let mut it = items(w.finish()).unwrap().map(Result::unwrap);
        let back = crate::cluster::wire::ToBackend::decode(it.next().unwrap()).unwrap();
        assert_eq!(back, forward);
        let back = crate::cluster::wire::ToGate::decode(it.next().unwrap()).unwrap();
        assert_eq!(back, handled);
        assert!(it.next().is_none());
    }

    #[test]
    fn a_finished_batch_holds_no_more_memory_than_its_bytes() {
        // A node keeps what it sent each gate, bounded by length: a grown buffer's spare
        // room would be kept with it.
        let mut w = BatchWriter::new(16);
        for _ in 0..100 {
            w.push(&[7u8; 100]);
        }
        let len = w.len();
        let kept = w.finish().try_into_mut().expect("the only reference");
        assert_eq!(kept.len(), len);
        assert_eq!(kept.capacity(), len, "spare room kept with the batch");
    }

    #[test]
    fn a_single_envelope_is_one_item() {
        let got: Vec<Bytes> = items(Bytes::from_static(b"\x0a1234"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, vec![&b"\x0a1234"[..]]);
    }

    #[test]
    fn a_batch_of_another_version_is_refused_by_name() {
        let e = items(Bytes::from_static(&[BATCH, VERSION + 1, 0, 0, 0, 0]))
            .err()
            .unwrap();
        assert!(e.to_string().contains("unknown version"), "{e}");
    }

    #[test]
    fn a_truncated_item_is_an_error() {
        let mut w = BatchWriter::new(8);
        w.push(b"abcdef");
        let whole = w.finish();
        let cut = whole.slice(..whole.len() - 2);
        let got: Vec<_> = items(cut).unwrap().collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
    }

    #[test]
    fn bodies_written_into_a_batch_read_back_as_their_envelopes() {
        let mut w = BatchWriter::new(16);
        for (body, _) in body_tests::bodies() {
            w.push_body(&body, "gate-1");
        }
        let got: Vec<Bytes> = items(w.finish()).unwrap().map(Result::unwrap).collect();
        let want: Vec<Bytes> = body_tests::bodies().into_iter().map(|(_, b)| b).collect();
        assert_eq!(got, want);
        assert_eq!(
            crate::cluster::wire::ToBackend::decode(got[0].clone()).unwrap(),
            crate::cluster::wire::ToBackend::Forward {
                gate: "gate-1".into(),
                conn: 7,
                seq: u64::MAX,
                payload: Bytes::from_static(b"{\"C2S_Hi\":{}}"),
            }
        );
        assert_eq!(
            crate::cluster::wire::ToGate::decode(got[2].clone()).unwrap(),
            crate::cluster::wire::ToGate::Handled { seq: 42 }
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(it) = items(Bytes::from(bytes)) {
                for item in it.take(100) {
                    let _ = item;
                }
            }
        }
    }
}
