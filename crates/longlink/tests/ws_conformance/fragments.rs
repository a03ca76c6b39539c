//! Autobahn's section 5: fragmentation.

use super::cases::{Case, Frames, case, msg};

/// 5: fragmentation: continuations, control frames between fragments, fragmented control
/// frames, continuations without a start, a new message inside one.
pub(crate) fn fragmentation() -> Vec<Case> {
    let f = Frames::default;
    let first = msg(b"fragment1");
    let (first, second): (&[u8], &[u8]) = (&first, b"fragment2");
    let mut twice_c = f();
    let mut twice_f = f();
    for _ in 0..2 {
        twice_c = twice_c
            .frame(0x00, b"fragment1")
            .frame(0x01, &msg(b"fragment2"))
            .frame(0x80, b"fragment3");
        twice_f = twice_f
            .frame(0x80, b"fragment1")
            .frame(0x01, &msg(b"fragment2"))
            .frame(0x80, b"fragment3");
    }
    vec![
        case(
            "5.1",
            "ping in 2 fragments",
            f().fragments(0x9, &[b"fragment1", second]).end(),
            None,
        ),
        case(
            "5.2",
            "pong in 2 fragments",
            f().fragments(0xA, &[b"fragment1", second]).end(),
            None,
        ),
        case(
            "5.3",
            "text in 2 fragments",
            f().fragments(0x1, &[first, second]).end(),
            None,
        ),
        case(
            "5.6",
            "text in 2 fragments, a ping between",
            f().frame(0x01, first)
                .ping(b"ping payload")
                .frame(0x80, second)
                .end(),
            None,
        ),
        case(
            "5.9",
            "continuation (FIN) without a start, then text",
            f().frame(0x80, b"non-continuation payload")
                .text(b"Hello, world!")
                .end(),
            None,
        ),
        case(
            "5.12",
            "continuation (no FIN) without a start, then text",
            f().frame(0x00, b"non-continuation payload")
                .text(b"Hello, world!")
                .end(),
            None,
        ),
        case(
            "5.15",
            "text in 2 fragments, continuation with nothing open, text",
            f().fragments(0x1, &[first, second])
                .frame(0x00, b"fragment3")
                .frame(0x80, b"fragment4")
                .end(),
            None,
        ),
        case(
            "5.16",
            "twice: continuation, text, continuation",
            twice_c.end(),
            None,
        ),
        case(
            "5.17",
            "twice: continuation (FIN), text, continuation",
            twice_f.end(),
            None,
        ),
        case(
            "5.18",
            "text in 2 fragments, both starts",
            f().frame(0x01, first).frame(0x01, second).end(),
            None,
        ),
        case(
            "5.19",
            "text in 5 fragments, pings after the 2nd and the 4th",
            f().frame(0x01, &msg(b"fragment1"))
                .frame(0x00, b"fragment2")
                .ping(b"pongme 1!")
                .frame(0x00, b"fragment3")
                .frame(0x00, b"fragment4")
                .ping(b"pongme 2!")
                .frame(0x80, b"fragment5")
                .end(),
            None,
        ),
        case(
            "5.a",
            "close in 2 fragments",
            f().fragments(0x8, &[&1000u16.to_be_bytes(), b"bye"]).end(),
            None,
        ),
        case(
            "5.b",
            "binary in fragments, empty ones among them",
            f().fragments(0x2, &[first, b"", b"x", b"", b""]).end(),
            None,
        ),
        case(
            "5.c",
            "text in 2 fragments, binary start inside",
            f().frame(0x01, first)
                .frame(0x82, &msg(b"b"))
                .frame(0x80, second)
                .end(),
            None,
        ),
    ]
}
