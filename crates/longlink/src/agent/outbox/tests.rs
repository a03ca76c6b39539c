//! The delivery classes in one queue: what is written, in which order, and what a session
//! numbers and replays.

use bytes::Bytes;

use super::classes::VOLATILE_QUEUE_MAX;
use super::{Outbox, Pushed, QueueFullPolicy, next_socket};
use crate::codec::Tag;

const ROOM_7: Tag = Tag::Latest { index: 11, key: 7 };
const ROOM_8: Tag = Tag::Latest { index: 11, key: 8 };

fn outbox(capacity: usize) -> Outbox {
    Outbox::new((capacity, 0), QueueFullPolicy::Disconnect, 1 << 20)
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
    for _ in 0..VOLATILE_QUEUE_MAX {
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
