//! The UTF-8 sequences of Autobahn's section 6 (6.5-6.23), from Markus Kuhn's UTF-8 decoder
//! stress test: valid text at the edges of each length, and invalid sequences (5- and
//! 6-byte forms, code points past U+10FFFF, lone continuation and start bytes, unfinished
//! sequences, impossible bytes, overlong forms, UTF-16 surrogates), and the section's cases.

use super::cases::{Case, Frames, case, msg};
use longlink_testkit::wsdiff::Exception;

/// The UTF-8 sequences of Autobahn's 6.5-6.23 (from Markus Kuhn's decoder test), each with
/// whether it is valid UTF-8.
pub(crate) fn utf8_sequences() -> Vec<(bool, Vec<u8>)> {
    let kosme = "\u{3ba}\u{1f79}\u{3c3}\u{3bc}\u{3b5}";
    let mut out: Vec<(bool, Vec<u8>)> = Vec::new();
    let mut add = |valid: bool, bytes: &[u8]| out.push((valid, bytes.to_vec()));
    add(true, b"hello$world");
    add(true, b"hello\xc2\xa2world");
    add(true, b"hello\xe2\x82\xacworld");
    add(true, b"hello\xf0\xa4\xad\xa2world");
    add(true, kosme.as_bytes());
    for i in 1..=kosme.len() {
        add(kosme.is_char_boundary(i), &kosme.as_bytes()[..i]);
    }
    for valid in [
        &b"\x00"[..],
        b"\xc2\x80",
        b"\xe0\xa0\x80",
        b"\xf0\x90\x80\x80",
        b"\x7f",
        b"\xdf\xbf",
        b"\xef\xbf\xbf",
        b"\xf4\x8f\xbf\xbf",
        b"\xed\x9f\xbf",
        b"\xee\x80\x80",
        b"\xef\xbf\xbd",
        b"\xef\xbf\xbe",
        b"\xef\xbf\xb9",
        b"\xef\xbf\xba",
        b"\xef\xbf\xbb",
        b"\xef\xbf\xbc",
        b"\xf0\x9f\xbf\xbe",
        b"\xf1\x8f\xbf\xbf",
        b"\xf3\xbf\xbf\xbe",
        b"\xf4\x8f\xbf\xbe",
    ] {
        add(true, valid);
    }
    let truncated: [&[u8]; 10] = [
        b"\xc0",
        b"\xe0\x80",
        b"\xf0\x80\x80",
        b"\xf8\x80\x80\x80",
        b"\xfc\x80\x80\x80\x80",
        b"\xdf",
        b"\xef\xbf",
        b"\xf7\xbf\xbf",
        b"\xfb\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf",
    ];
    for invalid in [
        &b"\xf8\x88\x80\x80\x80"[..],
        b"\xfc\x84\x80\x80\x80\x80",
        b"\xf7\xbf\xbf\xbf",
        b"\xfb\xbf\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\x80",
        b"\xbf",
        b"\x80\xbf",
        b"\x80\xbf\x80",
        b"\x80\xbf\x80\xbf",
        b"\x80\xbf\x80\xbf\x80",
        b"\x80\xbf\x80\xbf\x80\xbf",
        b"\xfe",
        b"\xff",
        b"\xfe\xfe\xff\xff",
        b"\xc0\xaf",
        b"\xe0\x80\xaf",
        b"\xf0\x80\x80\xaf",
        b"\xf8\x80\x80\x80\xaf",
        b"\xfc\x80\x80\x80\x80\xaf",
        b"\xc1\xbf",
        b"\xe0\x9f\xbf",
        b"\xf0\x8f\xbf\xbf",
        b"\xf8\x87\xbf\xbf\xbf",
        b"\xfc\x83\xbf\xbf\xbf\xbf",
        b"\xc0\x80",
        b"\xe0\x80\x80",
        b"\xf0\x80\x80\x80",
        b"\xf8\x80\x80\x80\x80",
        b"\xfc\x80\x80\x80\x80\x80",
        b"\xed\xa0\x80",
        b"\xed\xad\xbf",
        b"\xed\xae\x80",
        b"\xed\xaf\xbf",
        b"\xed\xb0\x80",
        b"\xed\xbe\x80",
        b"\xed\xbf\xbf",
        b"\xed\xa0\x80\xed\xb0\x80",
        b"\xed\xa0\x80\xed\xbf\xbf",
        b"\xed\xad\xbf\xed\xb0\x80",
        b"\xed\xad\xbf\xed\xbf\xbf",
        b"\xed\xae\x80\xed\xb0\x80",
        b"\xed\xae\x80\xed\xbf\xbf",
        b"\xed\xaf\xbf\xed\xb0\x80",
        b"\xed\xaf\xbf\xed\xbf\xbf",
    ] {
        add(false, invalid);
    }
    let continuations: Vec<u8> = (0x80..0xbf).collect();
    add(false, &continuations);
    for (lo, hi) in [
        (0xc0u8, 0xdfu8),
        (0xe0, 0xef),
        (0xf0, 0xf7),
        (0xf8, 0xfb),
        (0xfc, 0xfd),
    ] {
        let lonely: Vec<u8> = (lo..hi).flat_map(|b| [b, 0x20]).collect();
        add(false, &lonely);
    }
    for t in truncated {
        add(false, t);
    }
    add(false, &truncated.concat());
    out
}

/// 6: UTF-8 in text messages: valid and not, whole, split in fragments at every byte, and
/// an invalid fragment followed by more.
pub(crate) fn utf8() -> Vec<Case> {
    let f = Frames::default;
    let hello = "Hello-\u{b5}@\u{df}\u{f6}\u{e4}\u{fc}\u{e0}\u{e1}-UTF-8!!".as_bytes();
    let kosme = "\u{3ba}\u{1f79}\u{3c3}\u{3bc}\u{3b5}".as_bytes();
    let bad = [kosme, b"\xed\xa0\x80edited"].concat();
    let hello_msg = msg(hello);
    let mut out = vec![
        case(
            "6.1.1",
            "empty text",
            f().frame(0x81, b"").end(),
            Some(Exception::Undecodable),
        ),
        case(
            "6.1.2",
            "text in 3 empty fragments",
            f().fragments(0x1, &[b"", b"", b""]).end(),
            Some(Exception::Undecodable),
        ),
        case(
            "6.1.3",
            "text in fragments: empty, some, empty",
            f().fragments(0x1, &[b"", &msg(b"middle frame payload"), b""])
                .end(),
            None,
        ),
        case(
            "6.2.1",
            "valid UTF-8 text",
            f().frame(0x81, &hello_msg).end(),
            None,
        ),
        case(
            "6.2.2",
            "valid UTF-8 text in 2 fragments, cut inside a character",
            f().fragments(0x1, &[&hello_msg[..9], &hello_msg[9..]])
                .end(),
            None,
        ),
        case(
            "6.3.1",
            "invalid UTF-8 text",
            f().frame(0x81, &msg(&bad)).end(),
            None,
        ),
    ];
    for (id, what, payload) in [
        ("6.2.3", "valid UTF-8 text", hello_msg.clone()),
        ("6.2.4", "valid UTF-8 text", msg(kosme)),
        ("6.3.2", "invalid UTF-8 text", msg(&bad)),
    ] {
        let parts: Vec<&[u8]> = payload.chunks(1).collect();
        let what = format!("{what}, a fragment per byte");
        out.push(case(id, &what, f().fragments(0x1, &parts).end(), None));
    }
    // 6.4: the fragment that makes the text invalid, then more: the message fails (and
    // with fail-fast, before the rest).
    let parts: [&[u8]; 3] = [&msg(kosme), b"\xf4\x90\x80\x80", b"edited"];
    out.push(case(
        "6.4.1",
        "valid, invalid, valid fragments",
        f().fragments(0x1, &parts).end(),
        None,
    ));
    let parts: [&[u8]; 3] = [&msg(kosme), b"\xf4\x90", b"\x80\x80edited"];
    out.push(case(
        "6.4.2",
        "valid, invalid prefix, rest",
        f().fragments(0x1, &parts).end(),
        None,
    ));
    // Fail-fast seen from outside: a ping after the fragment that makes the text invalid
    // gets no pong.
    let bytes = f()
        .frame(0x01, &msg(kosme))
        .frame(0x00, b"\xf4\x90\x80\x80")
        .ping(b"after the bad fragment")
        .frame(0x80, b"edited")
        .end();
    out.push(case(
        "6.4.a",
        "valid, invalid fragment, ping, rest",
        bytes,
        None,
    ));
    for (i, (valid, seq)) in utf8_sequences().into_iter().enumerate() {
        let kind = if valid { "valid" } else { "invalid" };
        let payload = msg(&seq);
        let whole = f().frame(0x81, &payload).end();
        out.push(case(
            &format!("6.x.{i}"),
            &format!("{kind} UTF-8 {seq:02x?}"),
            whole,
            None,
        ));
        let parts: Vec<&[u8]> = payload.chunks(1).collect();
        let split = f().fragments(0x1, &parts).end();
        let what = format!("{kind} UTF-8 {seq:02x?}, a fragment per byte");
        out.push(case(&format!("6.x.{i}b"), &what, split, None));
    }
    out
}
