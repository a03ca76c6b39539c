//! Autobahn's sections 7 (closing) and 9 (limits, scaled to the 1 MiB limit).

use super::cases::{Case, Frames, MAX_MSG_LEN, case, msg, sized};
use longlink_testkit::wsdiff::Exception;

/// 7: closing: after a close nothing is read; close payloads and codes, valid and not.
pub(crate) fn closing() -> Vec<Case> {
    let f = Frames::default;
    let no_echo = Some(Exception::CloseNotEchoed);
    let mut big = f();
    for _ in 0..10 {
        big = big.text(&vec![b'*'; 64 * 1024]);
    }
    let kosme = "\u{3ba}\u{1f79}\u{3c3}\u{3bc}\u{3b5}".as_bytes();
    let mut out = vec![
        case(
            "7.1.1",
            "text, close",
            f().text(b"Hello World!").end(),
            None,
        ),
        case("7.1.2", "close, close", f().close(1000, b"").end(), None),
        case(
            "7.1.3",
            "close, ping",
            f().close(1000, b"").ping(b"Hello World!").end(),
            None,
        ),
        case(
            "7.1.4",
            "close, text",
            f().close(1000, b"").text(b"Hello World!").end(),
            None,
        ),
        case(
            "7.1.5",
            "first fragment, close, last fragment",
            f().frame(0x01, &msg(b"fragment1"))
                .close(1000, b"")
                .frame(0x80, b"fragment2")
                .end(),
            None,
        ),
        case(
            "7.1.6",
            "10 texts of 64 KiB, close, ping",
            big.close(1000, b"").ping(b"").end(),
            None,
        ),
        case(
            "7.3.1",
            "close, no payload",
            f().frame(0x88, b"").end(),
            no_echo,
        ),
        case(
            "7.3.2",
            "close, 1-byte payload",
            f().frame(0x88, b"a").end(),
            None,
        ),
        case(
            "7.3.3",
            "close 1000, no reason",
            f().close(1000, b"").0,
            None,
        ),
        case(
            "7.3.4",
            "close 1000 with a reason",
            f().close(1000, b"Hello World!").0,
            None,
        ),
        case(
            "7.3.5",
            "close 1000, reason of 123 bytes",
            f().close(1000, &[b'*'; 123]).0,
            None,
        ),
        case(
            "7.3.6",
            "close 1000, reason of 124 bytes",
            f().close(1000, &[b'*'; 124]).0,
            None,
        ),
        case(
            "7.5.1",
            "close 1000, reason not UTF-8",
            f().close(1000, &[kosme, b"\xed\xa0\x80edited"].concat()).0,
            None,
        ),
    ];
    let both_bad = f().close(1005, b"\xfe\xfe").0;
    let what = "close 1005 with a reason that is not UTF-8";
    out.push(case(
        "7.5.a",
        what,
        both_bad,
        Some(Exception::BadCodeAndReason),
    ));
    // 7.7 valid codes (then 1012 and 1013, which tungstenite knows too, and 1014).
    let valid = [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ];
    for (i, code) in valid.into_iter().chain([1012, 1013, 1014]).enumerate() {
        let expect = match code {
            1000 => None,
            1014 => Some(Exception::Code1014),
            _ => no_echo,
        };
        let what = format!("close {code}");
        out.push(case(
            &format!("7.7.{}", i + 1),
            &what,
            f().close(code, b"").0,
            expect,
        ));
    }
    // 7.9 invalid codes, then 1015 and 7.13's 5000 and 65535: 1002.
    let invalid = [
        0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 1015, 5000, 65535,
    ];
    for (i, code) in invalid.into_iter().enumerate() {
        let what = format!("close {code}");
        out.push(case(
            &format!("7.9.{}", i + 1),
            &what,
            f().close(code, b"").0,
            None,
        ));
    }
    out
}

/// 9: big messages, many fragments, many messages, at and over the limit (1 MiB here).
pub(crate) fn limits() -> Vec<Case> {
    let f = Frames::default;
    let mut out = Vec::new();
    for (i, n) in [64 << 10, 256 << 10, MAX_MSG_LEN, MAX_MSG_LEN + 1]
        .into_iter()
        .enumerate()
    {
        let text = f().frame(0x81, &sized(n, b'*')).end();
        out.push(case(
            &format!("9.1.{}", i + 1),
            &format!("text of {n} bytes"),
            text,
            None,
        ));
        let binary = f().frame(0x82, &sized(n, 0xfe)).end();
        out.push(case(
            &format!("9.2.{}", i + 1),
            &format!("binary of {n} bytes"),
            binary,
            None,
        ));
    }
    let sizes = [
        64,
        256,
        1 << 10,
        4 << 10,
        16 << 10,
        64 << 10,
        256 << 10,
        1 << 20,
    ];
    for (i, size) in sizes.into_iter().enumerate() {
        let text = sized(MAX_MSG_LEN, b'*');
        let parts: Vec<&[u8]> = text.chunks(size).collect();
        let what = format!("text of 1 MiB in fragments of {size}");
        out.push(case(
            &format!("9.3.{}", i + 1),
            &what,
            f().fragments(0x1, &parts).end(),
            None,
        ));
        let binary = sized(MAX_MSG_LEN, 0xfe);
        let parts: Vec<&[u8]> = binary.chunks(size).collect();
        let what = format!("binary of 1 MiB in fragments of {size}");
        out.push(case(
            &format!("9.4.{}", i + 1),
            &what,
            f().fragments(0x2, &parts).end(),
            None,
        ));
    }
    let over = sized(MAX_MSG_LEN + 1, b'*');
    let parts: Vec<&[u8]> = over.chunks(64 << 10).collect();
    let what = "text of 1 MiB + 1 in fragments of 64 KiB";
    out.push(case("9.3.a", what, f().fragments(0x1, &parts).end(), None));
    // Over the limit and invalid otherwise: each side names the check it makes first, and
    // tungstenite checks the length before all but the opcode.
    let big = sized(MAX_MSG_LEN + 1, b'*');
    for (id, b0, what, expect) in [
        (
            "9.a",
            0x80,
            "continuation with nothing to continue",
            Some(Exception::TooBigAndInvalid),
        ),
        ("9.b", 0x83, "reserved opcode 3", None),
        (
            "9.c",
            0xC2,
            "binary with RSV1",
            Some(Exception::TooBigAndInvalid),
        ),
    ] {
        let bytes = f().frame(b0, &big).end();
        out.push(case(id, &format!("{what}, over the limit"), bytes, expect));
    }
    let bytes = f().frame(0x01, &msg(b"open")).frame(0x82, &big).end();
    let what = "new binary inside a fragmented text, over the limit";
    out.push(case("9.d", what, bytes, Some(Exception::TooBigAndInvalid)));
    for (id, op) in [("9.7", 0x81), ("9.8", 0x82)] {
        let mut many = f();
        for _ in 0..1000 {
            many = many.frame(op, &sized(1 << 10, b'*'));
        }
        out.push(case(id, "1000 messages of 1 KiB", many.end(), None));
    }
    out
}
