//! [`Items`]: the queue's payloads and their total size, kept together so that every change
//! to one is a change to the other (`pending_write_bytes` is checked against the size).

use std::collections::VecDeque;

use bytes::Bytes;

/// Payloads, oldest first, and the sum of their lengths.
#[derive(Default)]
pub(super) struct Items {
    deque: VecDeque<Bytes>,
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

    pub(super) fn get(&self, i: usize) -> Option<&Bytes> {
        self.deque.get(i)
    }

    pub(super) fn front(&self) -> Option<&Bytes> {
        self.deque.front()
    }

    pub(super) fn push_back(&mut self, item: Bytes) {
        self.bytes += item.len();
        self.deque.push_back(item);
    }

    pub(super) fn push_front(&mut self, item: Bytes) {
        self.bytes += item.len();
        self.deque.push_front(item);
    }

    pub(super) fn pop_front(&mut self) -> Option<Bytes> {
        let item = self.deque.pop_front()?;
        self.bytes -= item.len();
        Some(item)
    }

    /// Drops the oldest `n` (all, if fewer).
    pub(super) fn drop_front(&mut self, n: usize) {
        let n = n.min(self.deque.len());
        for item in self.deque.drain(..n) {
            self.bytes -= item.len();
        }
    }

    /// Empties the queue and gives its memory back.
    pub(super) fn clear(&mut self) {
        *self = Items::default();
    }

    /// Takes every payload out, leaving the queue empty with no memory.
    pub(super) fn take(&mut self) -> VecDeque<Bytes> {
        self.bytes = 0;
        std::mem::take(&mut self.deque)
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
        assert_eq!(items.pop_front().as_deref(), Some(&b"f"[..]));
        assert_eq!(items.bytes(), 5);
        items.drop_front(1);
        assert_eq!((items.len(), items.bytes()), (1, 2));
        items.drop_front(5);
        assert_eq!((items.len(), items.bytes()), (0, 0));
        items.push_back(Bytes::from_static(b"xyz"));
        assert_eq!(items.take().len(), 1);
        assert_eq!(items.bytes(), 0);
    }
}
