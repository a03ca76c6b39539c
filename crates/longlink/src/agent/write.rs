//! Writing to a connection: encode (or take an [`Encoded`] made once for many), queue as the
//! type's delivery class says, count what became of it.

use std::sync::atomic::Ordering;

use super::link::LinkEvent;
use super::outbox::Pushed;
use super::{Agent, Whereabouts, WriteError};
use crate::codec::{Class, Encoded};
use crate::metrics::Delivered;

impl Agent {
    /// Encodes `msg` and queues it as its type's delivery class says (see
    /// [`MessageOptions`](crate::processor::MessageOptions)): a volatile message the queue
    /// cannot take soon is dropped and counted, and that is no error; a latest-per-key one
    /// replaces the one of its key that waits. Errors are returned, never panicked; see
    /// [`WriteError`].
    pub fn write<T: 'static>(&self, msg: &T) -> Result<(), WriteError> {
        let codec = &self.inner.codec;
        match &self.inner.whereabouts {
            // The payload moves into the queue and is counted through the codec: neither
            // its handle nor the counter's is cloned, as an `Encoded` for many would be.
            Whereabouts::Local(local) => {
                let (payload, index) = codec.encode_indexed(msg)?;
                let class = codec.classify(index, msg);
                let pushed = local.outbox.push(payload, class.tag, self.inner.id)?;
                self.count(class, pushed, || codec.count_sent(index));
                Ok(())
            }
            Whereabouts::Remote(_) => self.write_encoded(&codec.encode(msg)?),
        }
    }

    /// Counts what the queue did with a payload of `class`: `sent` if it is queued.
    #[inline]
    fn count(&self, class: Class, pushed: Pushed, sent: impl FnOnce()) {
        let what = match pushed {
            Pushed::Queued => return sent(),
            Pushed::Replaced => {
                sent();
                Delivered::Replaced
            }
            Pushed::Dropped => Delivered::Dropped,
        };
        if let Some(index) = class.index {
            self.inner.codec.count_delivered(index, what);
        }
    }

    /// Queues a payload encoded once (e.g. for a broadcast), as its type's delivery class
    /// says (see [`write`](Self::write)); the bytes are shared, not copied.
    pub fn write_encoded(&self, msg: &Encoded) -> Result<(), WriteError> {
        match &self.inner.whereabouts {
            Whereabouts::Local(local) => {
                let class = msg.class(&self.inner.codec);
                let pushed = local
                    .outbox
                    .push(msg.bytes().clone(), class.tag, self.inner.id)?;
                self.count(class, pushed, || msg.count_sent());
            }
            Whereabouts::Remote(open) => {
                if !open.load(Ordering::Acquire) {
                    return Err(WriteError::Closed);
                }
                self.tell(LinkEvent::Push(msg));
            }
        }
        Ok(())
    }

    /// Writes `msg`, then closes: the usual way to kick a client with a reason.
    pub fn kick<T: 'static>(&self, msg: &T) -> Result<(), WriteError> {
        let result = self.write(msg);
        self.close();
        result
    }
}
