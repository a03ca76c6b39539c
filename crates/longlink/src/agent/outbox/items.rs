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
        self.bytes += payload.len();
        self.deque.push_front(Item {
            payload,
            tag: Tag::Reliable,
        });
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
}
