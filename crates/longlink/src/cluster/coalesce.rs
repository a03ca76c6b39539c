//! Coalescing in the publisher: what a node has queued, one after the other, for one gate or
//! backend node goes out as one NATS message (a batch, `wire::batch`), in order. Only what
//! is already queued is put together (the publisher yields once first, so that what the
//! other ready tasks queue in the same turn of the runtime joins): the publisher never waits
//! on a timer to fill a batch, so a message alone goes out alone, as before, and at once.
//!
//! Only [`Out`]s marked `batch` are put together: those for subjects whose listeners read
//! batches (`P.gate.<id>`, `P.node.<id>`). A batch of commands to a gate is numbered as one
//! message when it is published (`publish`): the gate orders, and asks again for, whole
//! NATS messages. A forwarded message carries its number (`acked`), not a reply subject:
//! the publisher makes the reply, this node's acknowledgement subject `<prefix><n>` (whose
//! "no responders" fails it), once per NATS message; a batch's lists the numbers of its
//! items, `<prefix><n1>_<n2>_…`, so that NATS's "no responders" fails each of them.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedReceiver;

use super::outgoing::{Out, Outgoing, To};
use super::subjects::{Subjects, push_u64};
use super::wire::BatchWriter;

/// The most bytes one batch carries (what comes after starts the next): far below NATS's
/// default 1 MiB payload limit, and any item alone may be as large as it may today.
const MAX_BYTES: usize = 64 * 1024;

/// The longest reply subject a batch carries (far below nats-server's 4 KiB control line).
const MAX_REPLY: usize = 512;

/// What the publisher writes in the name of its node: its id (in the forwarded messages it
/// encodes), its acknowledgement prefix (`P.ack.<node>.`), and the subjects of nodes.
pub(super) struct Own {
    node: String,
    acks: String,
    subjects: Subjects,
}

impl Own {
    pub(super) fn new(subjects: &Subjects, node: &str) -> Own {
        Own {
            node: node.to_owned(),
            acks: subjects.ack_prefix(node),
            subjects: subjects.clone(),
        }
    }
}

/// One NATS message, ready to publish.
pub(super) struct Ready {
    pub(super) subject: String,
    pub(super) reply: Option<String>,
    pub(super) payload: Bytes,
    pub(super) headers: Option<async_nats::HeaderMap>,
    /// The gate whose count numbers it (commands to a gate: [`To::Gate`]).
    pub(super) numbered: Option<Arc<str>>,
}

/// Takes `first`, and whatever is queued right behind it that can go in the same NATS
/// message: what to publish (each envelope encoded once, straight into the batch; its reply
/// made from this node's acknowledgement prefix when it carries forwarded messages), and
/// the next item if one was taken that could not.
pub(super) fn gather(
    first: Out,
    rx: &mut UnboundedReceiver<Outgoing>,
    own: &Own,
) -> (Ready, Option<Outgoing>) {
    let mut run = Run::new(first, own);
    if !run.first.batch {
        return (run.finish(), None);
    }
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
struct Run<'a> {
    /// The first message: its subject and headers are the batch's; its payload the first
    /// item.
    first: Out,
    /// The batch, from the second message on.
    writer: Option<BatchWriter>,
    /// The acknowledgement subject of the forwarded messages in it, if any: the prefix and
    /// their numbers.
    acks: Option<String>,
    own: &'a Own,
}

impl<'a> Run<'a> {
    fn new(first: Out, own: &'a Own) -> Run<'a> {
        let acks = first.acked.map(|n| {
            let mut s = String::with_capacity(own.acks.len() + 64);
            s.push_str(&own.acks);
            push_u64(&mut s, n);
            s
        });
        Run {
            first,
            writer: None,
            acks,
            own,
        }
    }

    /// Whether `out` can join the batch: not if it goes elsewhere, has headers or a reply of
    /// its own, is a forwarded message while the batch has
    /// a reply of its own or a full acknowledgement subject, or the batch is full.
    fn takes(&self, out: &Out) -> bool {
        out.batch
            && out.headers.is_none()
            && self.first.headers.is_none()
            && out.reply.is_none()
            && out.to == self.first.to
            && self.size() + out.payload.len(&self.own.node) + 4 <= MAX_BYTES
            && (out.acked.is_none()
                || (self.first.reply.is_none()
                    && self.acks.as_ref().map_or(0, String::len) + 21 <= MAX_REPLY))
    }

    fn size(&self) -> usize {
        self.writer.as_ref().map_or_else(
            || self.first.payload.len(&self.own.node) + 6,
            BatchWriter::len,
        )
    }

    /// `out` joins the batch (once [`takes`](Self::takes) said it can); its number, if it
    /// has one, is added to the batch's acknowledgement subject.
    fn add(&mut self, out: Out) {
        let size = self.size();
        let node = &self.own.node;
        let writer = self.writer.get_or_insert_with(|| {
            let mut w = BatchWriter::new(size * 2);
            w.push_body(&self.first.payload, node);
            w
        });
        writer.push_body(&out.payload, node);
        if let Some(n) = out.acked {
            match &mut self.acks {
                Some(acks) => acks.push('_'),
                None => self.acks = Some(self.own.acks.clone()),
            }
            push_u64(self.acks.as_mut().expect("set above"), n);
        }
    }

    fn finish(self) -> Ready {
        let first = self.first;
        let payload = match self.writer {
            Some(writer) => {
                metrics::histogram!("longlink_cluster_batch_items").record(writer.items() as f64);
                writer.finish()
            }
            None => first.payload.into_bytes(&self.own.node),
        };
        let subjects = &self.own.subjects;
        let (subject, numbered) = match first.to {
            To::Subject(subject) => (subject, None),
            To::Gate(gate) => (subjects.gate(&gate), Some(gate)),
            To::Node(node) => (subjects.node(&node), None),
        };
        Ready {
            subject,
            reply: self.acks.or(first.reply),
            payload,
            headers: first.headers,
            numbered,
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
    use crate::cluster::wire::{Body, batch};

    fn own() -> Own {
        Own {
            node: "g".into(),
            acks: "ack.g.".into(),
            subjects: Subjects::new("p"),
        }
    }

    /// A message to `subject`: forwarded message `acked` if any, with a reply of its own
    /// (`reply`) if any.
    fn msg(
        subject: &str,
        acked: Option<u64>,
        reply: Option<&str>,
        payload: &'static [u8],
        batch: bool,
    ) -> Outgoing {
        Outgoing::Publish(Out {
            to: To::Subject(subject.into()),
            reply: reply.map(Into::into),
            payload: Body::Bytes(Bytes::from_static(payload)),
            headers: None,
            batch,
            acked,
        })
    }

    fn out(subject: &str, acked: Option<u64>, payload: &'static [u8], batch: bool) -> Outgoing {
        msg(subject, acked, None, payload, batch)
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
            out("n.a", Some(2), b"\x08two", true),
            out("n.a", None, b"\x03three", true),
            out("n.b", Some(4), b"\x08four", true),
        ] {
            tx.send(o).unwrap();
        }
        let head = first(out("n.a", Some(1), b"\x08one", true));
        let (sent, next) = gather(head, &mut rx, &own());
        assert_eq!(sent.subject, "n.a");
        assert_eq!(sent.reply.as_deref(), Some("ack.g.1_2"));
        let items: Vec<Bytes> = batch::items(sent.payload)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(items, vec![&b"\x08one"[..], b"\x08two", b"\x03three"]);
        let next = first(next.expect("the other subject's message is kept"));
        assert_eq!(next.to, To::Subject("n.b".into()));
        assert_eq!(reply_numbers("ack.g.1_2").collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(reply_numbers("ack.g.9").collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn a_message_alone_goes_unchanged() {
        let (_tx, mut rx) = mpsc::unbounded_channel();
        let head = first(out("n.a", Some(1), b"\x08one", true));
        let (sent, next) = gather(head, &mut rx, &own());
        assert!(next.is_none());
        assert_eq!(sent.reply.as_deref(), Some("ack.g.1"));
        assert_eq!(sent.payload, Bytes::from_static(b"\x08one"));
    }

    #[test]
    fn a_batch_gets_the_numbers_of_the_forwarded_messages_it_carries() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(out("n.a", Some(7), b"\x08seven", true)).unwrap();
        tx.send(out("n.a", Some(u64::MAX), b"\x08max", true))
            .unwrap();
        let head = first(out("n.a", None, b"\x03close", true));
        let (sent, next) = gather(head, &mut rx, &own());
        assert!(next.is_none());
        let reply = sent.reply.expect("the forwarded messages' reply");
        assert_eq!(reply, format!("ack.g.7_{}", u64::MAX));
        assert_eq!(reply_numbers(&reply).collect::<Vec<_>>(), vec![7, u64::MAX]);
    }

    #[test]
    fn a_batch_reply_stays_short_and_what_does_not_fit_goes_next() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let n = 100u64;
        for seq in 2..=n {
            tx.send(out("n.a", Some(u64::MAX - seq), b"\x08x", true))
                .unwrap();
        }
        let mut numbers = Vec::new();
        let mut next = Some(out("n.a", Some(u64::MAX - 1), b"\x08x", true));
        while let Some(head) = next {
            let (sent, after) = gather(first(head), &mut rx, &own());
            let reply = sent.reply.expect("a reply");
            assert!(reply.len() <= MAX_REPLY, "{} bytes", reply.len());
            let items = batch::items(sent.payload).unwrap().count();
            let heard: Vec<u64> = reply_numbers(&reply).collect();
            assert_eq!(heard.len(), items, "one number per item");
            numbers.extend(heard);
            next = after;
        }
        let sent: Vec<u64> = (1..=n).map(|seq| u64::MAX - seq).collect();
        assert_eq!(numbers, sent, "every number once, in order");
    }

    #[test]
    fn commands_to_a_gate_go_as_one_batch_numbered_once_and_replayed_whole() {
        let command = |payload: &'static [u8], numbered: bool| {
            Outgoing::Publish(Out {
                // A command to gate g1 is numbered; the same subject given as is, not.
                to: match numbered {
                    true => To::Gate("g1".into()),
                    false => To::Subject("p.gate.g1".into()),
                },
                reply: None,
                payload: Body::Bytes(Bytes::from_static(payload)),
                headers: None,
                batch: true,
                acked: None,
            })
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(command(b"\x0atwo", true)).unwrap();
        tx.send(command(b"\x0athree", true)).unwrap();
        tx.send(command(b"\x0bnot numbered", false)).unwrap();
        let head = first(command(b"\x0aone", true));
        let (sent, next) = gather(head, &mut rx, &own());
        assert!(next.is_some(), "what is numbered otherwise goes on its own");
        assert!(sent.reply.is_none());
        assert_eq!(sent.subject, "p.gate.g1");
        assert_eq!(sent.numbered.as_deref(), Some("g1"));
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
        tx.send(msg("n.a", None, Some("_INBOX.x.1"), b"\x05", false))
            .unwrap();
        tx.send(msg("n.a", None, Some("_INBOX.x.2"), b"\x06", true))
            .unwrap();
        let head = first(out("n.a", None, b"\x03", true));
        let (sent, next) = gather(head, &mut rx, &own());
        assert_eq!(sent.payload, Bytes::from_static(b"\x03"));
        assert!(sent.reply.is_none());
        assert!(next.is_some());
        // A message with a reply of its own keeps it, and takes no forwarded message.
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(out("n.a", Some(3), b"\x08three", true)).unwrap();
        let head = first(msg("n.a", None, Some("_INBOX.x.3"), b"\x07", true));
        let (sent, next) = gather(head, &mut rx, &own());
        assert_eq!(sent.reply.as_deref(), Some("_INBOX.x.3"));
        assert_eq!(sent.payload, Bytes::from_static(b"\x07"));
        assert!(next.is_some());
    }
}
