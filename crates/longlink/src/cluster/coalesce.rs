//! Coalescing in the publisher: what a node has queued, one after the other, for one gate or
//! backend node goes out as one NATS message (a batch, `wire::batch`), in order. Only what
//! is already queued is put together (the publisher yields once first, so that what the
//! other ready tasks queue in the same turn of the runtime joins): the publisher never waits
//! on a timer to fill a batch, so a message alone goes out alone, as before, and at once.
//!
//! Only [`Out`]s marked `batch` are put together: those for subjects whose listeners read
//! batches (`P.gate.<id>`, `P.node.<id>`). A batch of commands to a gate is numbered as one
//! message when it is published (`publish`): the gate orders, and asks again for, whole
//! NATS messages. Their reply subject, if any, is an
//! acknowledgement subject `<prefix>.<n>` (a forwarded message's, whose "no responders"
//! fails it); a batch's reply lists the numbers of its items, `<prefix>.<n1>_<n2>_…`, so
//! that NATS's "no responders" fails each of them.

use tokio::sync::mpsc::UnboundedReceiver;

use super::outgoing::{Out, Outgoing};
use super::wire::BatchWriter;

/// The most bytes one batch carries (what comes after starts the next): far below NATS's
/// default 1 MiB payload limit, and any item alone may be as large as it may today.
const MAX_BYTES: usize = 64 * 1024;

/// The longest reply subject a batch carries (far below nats-server's 4 KiB control line).
const MAX_REPLY: usize = 512;

/// Takes `first`, and whatever is queued right behind it that can go in the same NATS
/// message: what to publish, and the next item if one was taken that could not.
pub(super) fn gather(first: Out, rx: &mut UnboundedReceiver<Outgoing>) -> (Out, Option<Outgoing>) {
    if !first.batch {
        return (first, None);
    }
    let mut run = Run {
        first,
        writer: None,
    };
    while let Ok(next) = rx.try_recv() {
        match next {
            Outgoing::Publish(out) if run.takes(&out) => run.add(out),
            Outgoing::Publish(out) => return (run.finish(), Some(Outgoing::Publish(out))),
            other => return (run.finish(), Some(other)),
        }
    }
    (run.finish(), None)
}

/// Consecutive messages for one subject, on their way into one batch.
struct Run {
    /// The first message: its subject and headers are the batch's; its payload the first
    /// item; its reply grows with each item's number.
    first: Out,
    /// The batch, from the second message on.
    writer: Option<BatchWriter>,
}

impl Run {
    /// Whether `out` can join the batch: not if it goes to another subject, has headers or
    /// another numbering, a reply that cannot be merged, or the batch is full.
    fn takes(&self, out: &Out) -> bool {
        out.batch
            && out.headers.is_none()
            && self.first.headers.is_none()
            && out.numbered == self.first.numbered
            && out.subject == self.first.subject
            && self.size() + out.payload.len() + 4 <= MAX_BYTES
            && replies_merge(self.first.reply.as_deref(), out.reply.as_deref())
    }

    fn size(&self) -> usize {
        self.writer
            .as_ref()
            .map_or(self.first.payload.len() + 6, BatchWriter::len)
    }

    /// `out` joins the batch (once [`takes`](Self::takes) said it can); its reply's number
    /// is added to the batch's.
    fn add(&mut self, out: Out) {
        let size = self.size();
        let writer = self.writer.get_or_insert_with(|| {
            let mut w = BatchWriter::new(size * 2);
            w.push(&self.first.payload);
            w
        });
        writer.push(&out.payload);
        merge_reply(&mut self.first.reply, out.reply);
    }

    fn finish(self) -> Out {
        let mut out = self.first;
        if let Some(writer) = self.writer {
            metrics::histogram!("longlink_cluster_batch_items").record(writer.items() as f64);
            out.payload = writer.finish();
        }
        out
    }
}

/// Whether a batch with reply `have` can take an item with reply `add`: either has none, or
/// both are acknowledgement subjects under one prefix and the merged one is not too long.
fn replies_merge(have: Option<&str>, add: Option<&str>) -> bool {
    let (Some(have), Some(add)) = (have, add) else {
        return true;
    };
    match (add.rsplit_once('.'), have.rsplit_once('.')) {
        (Some((prefix, n)), Some((have_prefix, _))) => {
            have_prefix == prefix && have.len() + 1 + n.len() <= MAX_REPLY
        }
        _ => false,
    }
}

/// A batch with reply `have` takes an item with reply `add` ([`replies_merge`] said it can):
/// `<prefix>.<n1>` and `<prefix>.<n2>` make `<prefix>.<n1>_<n2>`, appended in place.
fn merge_reply(have: &mut Option<String>, add: Option<String>) {
    match (have.as_mut(), add) {
        (_, None) => {}
        (None, add) => *have = add,
        (Some(have), Some(add)) => {
            let n = add.rsplit_once('.').map_or("", |(_, n)| n);
            have.push('_');
            have.push_str(n);
        }
    }
}

/// The numbers an acknowledgement subject's last token lists (`7`, or `7_8_12` for a batch).
pub(crate) fn reply_numbers(subject: &str) -> impl Iterator<Item = u64> + '_ {
    subject
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .split('_')
        .filter_map(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio::sync::mpsc;

    use super::*;
    use crate::cluster::wire::batch;

    fn out(subject: &str, reply: Option<&str>, payload: &'static [u8], batch: bool) -> Outgoing {
        Outgoing::Publish(Out {
            subject: subject.into(),
            reply: reply.map(Into::into),
            payload: Bytes::from_static(payload),
            headers: None,
            batch,
            numbered: None,
        })
    }

    fn first(o: Outgoing) -> Out {
        match o {
            Outgoing::Publish(o) => o,
            Outgoing::Barrier(_) => unreachable!(),
        }
    }

    #[test]
    fn what_is_queued_for_one_subject_goes_as_one_batch_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for o in [
            out("n.a", Some("ack.g.2"), b"\x08two", true),
            out("n.a", None, b"\x03three", true),
            out("n.b", Some("ack.g.4"), b"\x08four", true),
        ] {
            tx.send(o).unwrap();
        }
        let head = first(out("n.a", Some("ack.g.1"), b"\x08one", true));
        let (sent, next) = gather(head, &mut rx);
        assert_eq!(sent.subject, "n.a");
        assert_eq!(sent.reply.as_deref(), Some("ack.g.1_2"));
        let items: Vec<Bytes> = batch::items(sent.payload)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(items, vec![&b"\x08one"[..], b"\x08two", b"\x03three"]);
        let next = first(next.expect("the other subject's message is kept"));
        assert_eq!(next.subject, "n.b");
        assert_eq!(reply_numbers("ack.g.1_2").collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(reply_numbers("ack.g.9").collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn a_message_alone_goes_unchanged() {
        let (_tx, mut rx) = mpsc::unbounded_channel();
        let head = first(out("n.a", Some("ack.g.1"), b"\x08one", true));
        let (sent, next) = gather(head, &mut rx);
        assert!(next.is_none());
        assert_eq!(sent.reply.as_deref(), Some("ack.g.1"));
        assert_eq!(sent.payload, Bytes::from_static(b"\x08one"));
    }

    #[test]
    fn commands_to_a_gate_go_as_one_batch_numbered_once_and_replayed_whole() {
        let command = |payload: &'static [u8], numbered: Option<&str>| {
            Outgoing::Publish(Out {
                subject: "p.gate.g1".into(),
                reply: None,
                payload: Bytes::from_static(payload),
                headers: None,
                batch: true,
                numbered: numbered.map(Into::into),
            })
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(command(b"\x0atwo", Some("g1"))).unwrap();
        tx.send(command(b"\x0athree", Some("g1"))).unwrap();
        tx.send(command(b"\x0bnot numbered", None)).unwrap();
        let (sent, next) = gather(first(command(b"\x0aone", Some("g1"))), &mut rx);
        assert!(next.is_some(), "what is numbered otherwise goes on its own");
        let numbering = crate::cluster::groupseq::GroupSeq::new("n1");
        let headers = numbering.number_command("g1", &sent.payload);
        let num = crate::cluster::groupseq::read(Some(&headers)).unwrap();
        assert_eq!(num.seq, 1, "one number for the whole batch");
        let again = numbering.replay(&crate::cluster::wire::ReplayRequest {
            src: num.src,
            after: 0,
            gate: "g1".into(),
        });
        assert_eq!(again.entries.len(), 1);
        let items: Vec<Bytes> = batch::items(again.entries[0].payload.clone())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(items, vec![&b"\x0aone"[..], b"\x0atwo", b"\x0athree"]);
    }

    #[test]
    fn requests_and_other_replies_are_never_merged() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(out("n.a", Some("_INBOX.x.1"), b"\x05", false))
            .unwrap();
        let head = first(out("n.a", None, b"\x03", true));
        let (sent, next) = gather(head, &mut rx);
        assert_eq!(sent.payload, Bytes::from_static(b"\x03"));
        assert!(next.is_some());
    }
}
