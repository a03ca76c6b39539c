//! [`Items`]: the queue's payloads, each with its delivery [`Tag`], and their total size,
//! kept together so that every change to one is a change to the other (`pending_write_bytes`
//! is checked against the size).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::codec::Tag;

/// One queued payload and how it travels.
#[derive(Clone)]
pub(super) struct Item {
    pub(super) payload: Bytes,
    pub(super) tag: Tag,
}

/// Payloads, oldest first, and the sum of their lengths.
#[derive(Default)]
pub(super) struct Items {
    deque: VecDeque<Item>,
    bytes: usize,
}

impl Items {
    pub(super) fn len(&self) -> usize {
        self.deque.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.deque.is_empty()
    }

    /// The sum of the payloads' lengths.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn get(&self, i: usize) -> Option<&Item> {
        self.deque.get(i)
    }

    pub(super) fn front(&self) -> Option<&Item> {
        self.deque.front()
    }

    /// Queues a reliable payload (a protocol message, or one kept for a replay).
    pub(super) fn push_back(&mut self, payload: Bytes) {
        self.push_tagged(payload, Tag::Reliable);
    }

    pub(super) fn push_tagged(&mut self, payload: Bytes, tag: Tag) {
        self.bytes += payload.len();
        self.deque.push_back(Item { payload, tag });
    }

    /// Puts a reliable payload first.
    pub(super) fn push_front(&mut self, payload: Bytes) {
        self.push_front_tagged(payload, Tag::Reliable);
    }

    pub(super) fn push_front_tagged(&mut self, payload: Bytes, tag: Tag) {
        self.bytes += payload.len();
        self.deque.push_front(Item { payload, tag });
    }

    pub(super) fn pop_front(&mut self) -> Option<Item> {
        let item = self.deque.pop_front()?;
        self.bytes -= item.payload.len();
        Some(item)
    }

    /// Takes the payload at `i` out of the queue.
    pub(super) fn remove(&mut self, i: usize) -> Option<Item> {
        let item = self.deque.remove(i)?;
        self.bytes -= item.payload.len();
        Some(item)
    }

    /// Puts `payload` in the place of the one at `i` (same tag).
    pub(super) fn replace(&mut self, i: usize, payload: Bytes) {
        if let Some(item) = self.deque.get_mut(i) {
            self.bytes = self.bytes - item.payload.len() + payload.len();
            item.payload = payload;
        }
    }

    /// Where a payload tagged `tag` waits at or after `from` (the first unwritten), if one
    /// does, and whether a reliable payload was queued after it.
    pub(super) fn waiting(&self, from: usize, tag: Tag) -> Option<(usize, bool)> {
        let mut reliable_after = false;
        for i in (from..self.deque.len()).rev() {
            let t = self.deque[i].tag;
            if t == tag {
                return Some((i, reliable_after));
            }
            reliable_after |= t == Tag::Reliable;
        }
        None
    }

    /// Drops the volatile payloads at or after `from` (they are never kept for a replay).
    pub(super) fn drop_volatile(&mut self, from: usize) {
        let mut i = from;
        while i < self.deque.len() {
            if self.deque[i].tag == Tag::Volatile {
                self.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Keeps, of the latest-per-key payloads at or after `from`, the last one of each type
    /// and key, and takes the earlier ones out (what is left keeps its order; none of them
    /// overtakes a payload queued before it). Returns how many it took out. For a queue none
    /// of whose payloads from `from` on the client has: a session just claimed by a new
    /// socket, or handed over from another gate.
    pub(super) fn keep_last_per_key(&mut self, from: usize) -> usize {
        let mut seen: Vec<Tag> = Vec::new();
        let mut earlier = vec![false; self.deque.len()];
        for i in (from..self.deque.len()).rev() {
            let tag = self.deque[i].tag;
            if matches!(tag, Tag::Latest { .. }) {
                earlier[i] = seen.contains(&tag);
                if !earlier[i] {
                    seen.push(tag);
                }
            }
        }
        let before = self.deque.len();
        let mut i = 0;
        self.deque.retain(|_| {
            i += 1;
            !earlier[i - 1]
        });
        self.bytes = self.deque.iter().map(|item| item.payload.len()).sum();
        before - self.deque.len()
    }

    /// Drops the oldest `n` (all, if fewer).
    pub(super) fn drop_front(&mut self, n: usize) {
        let n = n.min(self.deque.len());
        for item in self.deque.drain(..n) {
            self.bytes -= item.payload.len();
        }
    }

    /// Empties the queue and gives its memory back.
    pub(super) fn clear(&mut self) {
        *self = Items::default();
    }

    /// The payloads from `from` on, copied (shared, not duplicated).
    pub(super) fn payloads_from(&self, from: usize) -> Vec<Bytes> {
        self.deque
            .iter()
            .skip(from)
            .map(|item| item.payload.clone())
            .collect()
    }

    /// Gives the memory back once empty (an idle connection holds no queue).
    pub(super) fn shrink_if_empty(&mut self) {
        if self.deque.is_empty() && self.deque.capacity() > 0 {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_follows_every_change() {
        let mut items = Items::default();
        items.push_back(Bytes::from_static(b"abc"));
        items.push_back(Bytes::from_static(b"de"));
        items.push_front(Bytes::from_static(b"f"));
        assert_eq!((items.len(), items.bytes()), (3, 6));
        assert_eq!(
            items.pop_front().map(|i| i.payload).as_deref(),
            Some(&b"f"[..])
        );
        assert_eq!(items.bytes(), 5);
        items.drop_front(1);
        assert_eq!((items.len(), items.bytes()), (1, 2));
        items.replace(0, Bytes::from_static(b"wxyz"));
        assert_eq!((items.len(), items.bytes()), (1, 4));
        items.drop_front(5);
        assert_eq!((items.len(), items.bytes()), (0, 0));
        items.push_tagged(Bytes::from_static(b"v"), Tag::Volatile);
        items.push_back(Bytes::from_static(b"xyz"));
        items.push_tagged(Bytes::from_static(b"vv"), Tag::Volatile);
        items.drop_volatile(0);
        assert_eq!((items.len(), items.bytes()), (1, 3));
        assert_eq!(items.payloads_from(0).len(), 1);
    }

    #[test]
    fn a_waiting_latest_is_found_with_what_follows_it() {
        let key = Tag::Latest { index: 3, key: 7 };
        let mut items = Items::default();
        items.push_tagged(Bytes::from_static(b"a"), key);
        items.push_tagged(Bytes::from_static(b"v"), Tag::Volatile);
        assert_eq!(items.waiting(0, key), Some((0, false)));
        assert_eq!(items.waiting(1, key), None, "written ones are not waiting");
        items.push_back(Bytes::from_static(b"r"));
        assert_eq!(items.waiting(0, key), Some((0, true)));
        assert_eq!(items.waiting(0, Tag::Latest { index: 3, key: 8 }), None);
    }

    #[test]
    fn only_the_last_of_each_key_is_kept_in_place() {
        let (a, b) = (
            Tag::Latest { index: 3, key: 7 },
            Tag::Latest { index: 3, key: 8 },
        );
        let mut items = Items::default();
        for (payload, tag) in [
            (&b"a1"[..], a),
            (b"r1", Tag::Reliable),
            (b"b1", b),
            (b"v", Tag::Volatile),
            (b"a22", a),
            (b"r2", Tag::Reliable),
            (b"b2", b),
            (b"a3", a),
        ] {
            items.push_tagged(Bytes::copy_from_slice(payload), tag);
        }
        assert_eq!(
            items.keep_last_per_key(2),
            2,
            "b1 and a22; a1 is before `from`"
        );
        let left: Vec<_> = items.payloads_from(0);
        assert_eq!(left, ["a1", "r1", "v", "r2", "b2", "a3"].map(Bytes::from));
        assert_eq!(items.bytes(), 11);
        assert_eq!(items.keep_last_per_key(0), 1, "a1 now");
        assert_eq!(items.len(), 5);
    }
}
