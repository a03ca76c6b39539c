//! The delivery classes in one queue: what is written, in which order, and what a session
//! numbers and replays.

use bytes::Bytes;

use super::{Outbox, Pushed, QueueFullPolicy, next_socket};
use crate::codec::Tag;

const ROOM_7: Tag = Tag::Latest { index: 11, key: 7 };
const ROOM_8: Tag = Tag::Latest { index: 11, key: 8 };

/// The default `volatile_queue`.
const VOLATILE_QUEUE: usize = 16;

fn outbox(capacity: usize) -> Outbox {
    Outbox::new(
        (capacity, 0),
        QueueFullPolicy::Disconnect,
        VOLATILE_QUEUE,
        1 << 20,
    )
}

fn push(o: &Outbox, text: &'static str, tag: Tag) -> Pushed {
    o.push(Bytes::from_static(text.as_bytes()), tag, 1)
        .expect("queued")
}

/// Everything queued, oldest first, as the connection's task takes it.
fn written(o: &Outbox) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let (_, all) = o
            .take_batch(usize::MAX, |b| {
                out.push(String::from_utf8_lossy(&b).into_owned())
            })
            .expect("open");
        if all {
            return out;
        }
    }
}

#[test]
fn a_latest_replaces_its_waiting_one_in_place_when_nothing_reliable_follows() {
    let o = outbox(100);
    push(&o, "r1", Tag::Reliable);
    push(&o, "room7=1", ROOM_7);
    push(&o, "room8=1", ROOM_8);
    assert_eq!(push(&o, "room7=2", ROOM_7), Pushed::Replaced);
    assert_eq!(written(&o), ["r1", "room7=2", "room8=1"]);
}

#[test]
fn a_latest_never_overtakes_a_reliable_message_queued_before_it() {
    let o = outbox(100);
    push(&o, "room7=1", ROOM_7);
    push(&o, "r1", Tag::Reliable);
    assert_eq!(push(&o, "room7=2", ROOM_7), Pushed::Replaced);
    push(&o, "r2", Tag::Reliable);
    assert_eq!(written(&o), ["r1", "room7=2", "r2"]);
    // Written: the next one waits again, alone.
    push(&o, "room7=3", ROOM_7);
    assert_eq!(written(&o), ["room7=3"]);
}

#[test]
fn volatile_messages_keep_their_place_and_are_dropped_past_the_bound() {
    let o = outbox(1000);
    push(&o, "r1", Tag::Reliable);
    assert_eq!(push(&o, "v1", Tag::Volatile), Pushed::Queued);
    push(&o, "r2", Tag::Reliable);
    assert_eq!(written(&o), ["r1", "v1", "r2"]);
    for _ in 0..VOLATILE_QUEUE {
        push(&o, "r", Tag::Reliable);
    }
    assert_eq!(push(&o, "late", Tag::Volatile), Pushed::Dropped);
    assert!(o.is_open_for_test(), "a dropped volatile never disconnects");
    assert!(!written(&o).contains(&"late".to_owned()));
}

#[test]
fn a_full_queue_drops_volatile_messages_and_keeps_the_connection() {
    let o = outbox(2);
    push(&o, "r1", Tag::Reliable);
    push(&o, "r2", Tag::Reliable);
    assert_eq!(push(&o, "v", Tag::Volatile), Pushed::Dropped);
    assert!(o.is_open_for_test());
    // A latest of a waiting key takes no room either.
    let o = outbox(2);
    push(&o, "room7=1", ROOM_7);
    push(&o, "r1", Tag::Reliable);
    assert_eq!(push(&o, "room7=2", ROOM_7), Pushed::Replaced);
    assert!(o.is_open_for_test());
    assert_eq!(written(&o), ["r1", "room7=2"]);
}

/// A session numbers reliable and latest messages only: a volatile one written in between
/// is not kept, so an acknowledgement by number drops exactly the numbered ones; a latest
/// replaced while the session waits for its client keeps one number; the replay has no
/// volatile message.
#[test]
fn a_session_numbers_reliable_and_latest_messages_only() {
    let o = outbox(100);
    let socket = next_socket();
    assert!(o.start_session(100, socket, None));
    push(&o, "m1", Tag::Reliable); // 1
    push(&o, "v", Tag::Volatile); // not numbered
    push(&o, "room7=1", ROOM_7); // 2
    assert_eq!(written(&o), ["m1", "v", "room7=1"]);
    o.ack(1);
    // Away from its socket: volatile messages are dropped, latest ones replace in place.
    assert!(o.detach(socket));
    assert_eq!(push(&o, "v2", Tag::Volatile), Pushed::Dropped);
    push(&o, "m3", Tag::Reliable); // 3
    push(&o, "room8=1", ROOM_8); // 4
    assert_eq!(push(&o, "room8=2", ROOM_8), Pushed::Replaced);
    assert_eq!(
        push(&o, "room7=2", ROOM_7),
        Pushed::Queued,
        "room7=1 was written"
    );
    let again = next_socket();
    o.claim(again).expect("claimed");
    // The client has everything up to 2 (m1, room7=1).
    let (_, replayed) = o.resume(again, 2, |_| None).expect("resumed");
    assert_eq!(replayed, 3);
    assert_eq!(written(&o), ["m3", "room8=2", "room7=2"]);
}

/// A latest message written to a socket the client lost (it says so with its `last_seq`) is
/// no longer counted by anyone: the resume replays only the newest of its key.
#[test]
fn a_resume_replays_one_message_per_latest_key_even_when_one_was_written() {
    let o = outbox(100);
    let socket = next_socket();
    assert!(o.start_session(100, socket, None));
    push(&o, "m1", Tag::Reliable); // 1
    push(&o, "room7=1", ROOM_7); // 2, written, lost in flight
    assert_eq!(written(&o), ["m1", "room7=1"]);
    assert!(o.detach(socket));
    push(&o, "m2", Tag::Reliable);
    assert_eq!(push(&o, "room7=2", ROOM_7), Pushed::Queued);
    let again = next_socket();
    o.claim(again).expect("claimed");
    let (_, replayed) = o.resume(again, 1, |_| None).expect("resumed");
    assert_eq!(replayed, 2);
    assert_eq!(written(&o), ["m2", "room7=2"]);
    // Numbered 2 and 3: an acknowledgement of 3 leaves nothing to replay.
    o.ack(3);
    assert!(o.detach(again));
    let third = next_socket();
    o.claim(third).expect("claimed");
    assert_eq!(o.resume(third, 3, |_| None).expect("resumed").1, 0);
}

/// A session handed over to another gate: a latest message queued at the holder during the
/// hand-over never takes the place of one already copied (the other gate would never get
/// it), it is offered; the other gate's queue, given each kept message's tag, keeps one per
/// key, the newest, and replaces it as any queue does.
#[test]
fn a_hand_over_keeps_one_message_per_latest_key_on_both_gates() {
    let holder = outbox(100);
    let socket = next_socket();
    assert!(holder.start_session(100, socket, None));
    assert!(holder.detach(socket));
    push(&holder, "m1", Tag::Reliable);
    push(&holder, "room7=1", ROOM_7);
    let claim = next_socket();
    holder.claim(claim).expect("claimed");
    let (_, copied) = holder.hand_over_copy(claim, 0).expect("copied");
    assert_eq!(copied.len(), 2);
    assert_eq!(push(&holder, "room7=2", ROOM_7), Pushed::Queued);
    let rest = holder
        .hand_over_rest(claim, copied.len())
        .expect("open")
        .expect_err("room7=2 is offered");
    assert_eq!(rest, [Bytes::from_static(b"room7=2")]);
    assert_eq!(push(&holder, "room7=3", ROOM_7), Pushed::Queued);
    let rest_2 = holder.hand_over_rest(claim, 3).expect("open");
    let rest_2 = rest_2.expect_err("room7=3 is offered");
    assert!(holder.hand_over_rest(claim, 4).expect("open").is_ok());

    // The new gate: a latest message of the same key reached it before the install.
    let fresh = outbox(100);
    let served = next_socket();
    assert!(fresh.start_session(100, served, None));
    push(&fresh, "room8=1", ROOM_8);
    let tag = |b: &Bytes| {
        if b.starts_with(b"room7") {
            ROOM_7
        } else {
            Tag::Reliable
        }
    };
    let kept: Vec<_> = (copied.into_iter().chain(rest).chain(rest_2))
        .map(|b| {
            let t = tag(&b);
            (b, t)
        })
        .collect();
    assert!(fresh.install(served, 0, 0, kept, None));
    assert_eq!(push(&fresh, "room8=2", ROOM_8), Pushed::Replaced);
    assert_eq!(written(&fresh), ["m1", "room7=3", "room8=2"]);
}
