//! The cases of the Autobahn testsuite's sections 1-7 and 9 as client bytes: what its
//! client sends in each (case numbers as in Autobahn), each ending, as its client does,
//! with a close 1000 of its own (which the server ignores once it has failed the
//! connection). Its chopped variants (x.x.4/5, 5.4/5, 9.5/9.6) are the small-read runs of
//! every case. Section 9's sizes are scaled to a 1 MiB message limit.
//!
//! Messages start with `00 00`, the gate's message id (see `ws_conformance.rs`), and are
//! otherwise Autobahn's payloads; lengths that Autobahn gives are the whole payload's.

use longlink_testkit::wsdiff::{Exception, put_frame};

/// The message limit of the gate and of tungstenite in these cases.
pub(crate) const MAX_MSG_LEN: usize = 1 << 20;

/// One case: what the client sends, and how longlink may differ from tungstenite on it.
pub(crate) struct Case {
    /// Autobahn's number, with a letter for a variant of ours.
    pub(crate) id: String,
    /// What it sends.
    pub(crate) what: String,
    /// The client's bytes after the handshake.
    pub(crate) bytes: Vec<u8>,
    /// `None`: longlink and tungstenite agree exactly; else the documented difference.
    pub(crate) expect: Option<Exception>,
}

/// Client frames being written.
#[derive(Default)]
pub(crate) struct Frames(pub(crate) Vec<u8>);

impl Frames {
    pub(crate) fn frame(mut self, b0: u8, payload: &[u8]) -> Self {
        put_frame(&mut self.0, b0, payload);
        self
    }
    pub(crate) fn text(self, payload: &[u8]) -> Self {
        self.frame(0x81, &msg(payload))
    }
    pub(crate) fn ping(self, payload: &[u8]) -> Self {
        self.frame(0x89, payload)
    }
    pub(crate) fn pong(self, payload: &[u8]) -> Self {
        self.frame(0x8A, payload)
    }
    pub(crate) fn close(self, code: u16, reason: &[u8]) -> Self {
        self.frame(0x88, &[&code.to_be_bytes()[..], reason].concat())
    }
    /// Each fragment a frame: the first with `opcode`, the others continuations, FIN on the
    /// last.
    pub(crate) fn fragments(mut self, opcode: u8, parts: &[&[u8]]) -> Self {
        for (i, part) in parts.iter().enumerate() {
            let op = if i == 0 { opcode } else { 0 };
            let fin = if i + 1 == parts.len() { 0x80 } else { 0 };
            self = self.frame(fin | op, part);
        }
        self
    }
    /// The client's close 1000 that ends every case.
    pub(crate) fn end(self) -> Vec<u8> {
        self.close(1000, b"").0
    }
}

/// A message's payload: the id `00 00`, then `body`.
pub(crate) fn msg(body: &[u8]) -> Vec<u8> {
    [&[0, 0][..], body].concat()
}

/// `n` bytes in all: the id, then `fill`.
pub(crate) fn sized(n: usize, fill: u8) -> Vec<u8> {
    let mut m = msg(&[]);
    m.resize(n, fill);
    m.truncate(n);
    m
}

pub(crate) fn case(id: &str, what: &str, bytes: Vec<u8>, expect: Option<Exception>) -> Case {
    Case {
        id: id.into(),
        what: what.into(),
        bytes,
        expect,
    }
}

/// Every case, in Autobahn's order.
pub(crate) fn all() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(framing());
    all.extend(pings());
    all.extend(reserved_bits());
    all.extend(opcodes());
    all.extend(super::fragments::fragmentation());
    all.extend(super::utf8::utf8());
    all.extend(super::closing::closing());
    all.extend(super::closing::limits());
    all
}

/// 1: text and binary messages of the lengths at the edges of the length forms.
fn framing() -> Vec<Case> {
    let mut out = Vec::new();
    for (i, n) in [0, 125, 126, 127, 128, 65535, 65536]
        .into_iter()
        .enumerate()
    {
        // An empty message has no id for the processor.
        let expect = (n == 0).then_some(Exception::Undecodable);
        let text = Frames::default().frame(0x81, &sized(n, b'*')).end();
        out.push(case(
            &format!("1.1.{}", i + 1),
            &format!("text of {n} bytes"),
            text,
            expect,
        ));
        let binary = Frames::default().frame(0x82, &sized(n, 0xfe)).end();
        out.push(case(
            &format!("1.2.{}", i + 1),
            &format!("binary of {n} bytes"),
            binary,
            expect,
        ));
    }
    out
}

/// 2: pings (answered with their payload), pongs nobody asked for (ignored).
fn pings() -> Vec<Case> {
    let binary = [0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff];
    let mut ten = Frames::default();
    for i in 0..10 {
        ten = ten.ping(format!("payload-{i}").as_bytes());
    }
    vec![
        case(
            "2.1",
            "ping, no payload",
            Frames::default().ping(b"").end(),
            None,
        ),
        case(
            "2.2",
            "ping, text payload",
            Frames::default().ping(b"Hello, world!").end(),
            None,
        ),
        case(
            "2.3",
            "ping, binary payload",
            Frames::default().ping(&binary).end(),
            None,
        ),
        case(
            "2.4",
            "ping of 125 bytes",
            Frames::default().ping(&[0xfe; 125]).end(),
            None,
        ),
        case(
            "2.5",
            "ping of 126 bytes: 1002",
            Frames::default().ping(&[0xfe; 126]).end(),
            None,
        ),
        case(
            "2.7",
            "unsolicited pong, no payload",
            Frames::default().pong(b"").end(),
            None,
        ),
        case(
            "2.8",
            "unsolicited pong with payload",
            Frames::default().pong(b"unsolicited pong payload").end(),
            None,
        ),
        case(
            "2.9",
            "unsolicited pong, then ping",
            Frames::default()
                .pong(b"unsolicited pong payload")
                .ping(b"ping payload")
                .end(),
            None,
        ),
        case("2.10", "10 pings", ten.end(), None),
    ]
}

/// 3: a reserved bit set (no extension negotiated): 1002, after what came before.
fn reserved_bits() -> Vec<Case> {
    let hello = msg(b"Hello, world!");
    let mut out = vec![case(
        "3.1",
        "text with RSV = 1",
        Frames::default().frame(0x81 | 1 << 4, &hello).end(),
        None,
    )];
    for rsv in 2..=4u8 {
        let bytes = Frames::default()
            .text(b"Hello, world!")
            .frame(0x81 | rsv << 4, &hello)
            .ping(b"")
            .end();
        let what = format!("text, text with RSV = {rsv}, ping");
        out.push(case(&format!("3.{rsv}"), &what, bytes, None));
    }
    let b = Frames::default()
        .frame(0x82 | 5 << 4, &msg(&[0xff; 8]))
        .end();
    out.push(case("3.5", "binary with RSV = 5", b, None));
    let b = Frames::default().frame(0x89 | 6 << 4, &[0xff; 8]).end();
    out.push(case("3.6", "ping with RSV = 6", b, None));
    let b = Frames::default()
        .frame(0x88 | 7 << 4, &1000u16.to_be_bytes())
        .end();
    out.push(case("3.7", "close with RSV = 7", b, None));
    out
}

/// 4: reserved opcodes, data (3-7) and control (11-15): 1002.
fn opcodes() -> Vec<Case> {
    let mut out = Vec::new();
    for (section, first) in [(1, 3u8), (2, 11u8)] {
        let ops: Vec<u8> = (first..first + 5).collect();
        let alone = Frames::default().frame(0x80 | ops[0], b"").end();
        out.push(case(
            &format!("4.{section}.1"),
            &format!("opcode {}", ops[0]),
            alone,
            None,
        ));
        let payload = Frames::default()
            .frame(0x80 | ops[1], b"reserved opcode payload")
            .end();
        let what = format!("opcode {} with a payload", ops[1]);
        out.push(case(&format!("4.{section}.2"), &what, payload, None));
        for (i, op) in ops[2..].iter().enumerate() {
            let body: &[u8] = if i == 0 {
                b""
            } else {
                b"reserved opcode payload"
            };
            let bytes = Frames::default()
                .text(b"Hello, world!")
                .frame(0x80 | op, body)
                .ping(b"")
                .end();
            let what = format!("text, opcode {op}, ping");
            out.push(case(&format!("4.{section}.{}", i + 3), &what, bytes, None));
        }
    }
    out
}
