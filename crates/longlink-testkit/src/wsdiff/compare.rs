//! The verdict: what the server under test did against what tungstenite did, with the
//! documented differences named.

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{RefEnd, RefEvent, Reference, reference};

/// What the server under test did with the same bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The messages delivered to the application, in order (the server under test gives no
    /// text/binary kind).
    pub messages: Vec<Vec<u8>>,
    /// The payloads of the pongs it sent, in order.
    pub pongs: Vec<Vec<u8>>,
    /// The code of the close frame it sent (`None`: it sent none, or one without a code).
    pub close: Option<u16>,
}

/// A documented difference between longlink and tungstenite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    /// The peer closed with a valid code other than 1000, or with no code: tungstenite
    /// echoes it (or an empty close), longlink answers 1000. RFC 6455 5.5.1 says an
    /// endpoint "typically" echoes; Autobahn's 7.7.x accept "normal or echoed".
    CloseNotEchoed,
    /// The peer closed with 1014 ("Bad Gateway", in the IANA registry since 2016):
    /// longlink accepts it and answers 1000; tungstenite 0.30 does not know it and answers
    /// 1002.
    Code1014,
    /// A message that does not start with the protocol's two-byte id 0 (the gate's
    /// protobuf envelope; an empty message too): the gate's processor refuses it and closes
    /// with 1000, as leaf closes on a message it cannot unmarshal. Not the codec's doing.
    Undecodable,
    /// The input ended without a close frame, or inside a frame: tungstenite reads a frame
    /// whole before it checks it, longlink checks a header as soon as it has arrived (so a
    /// frame over the limit is refused before its payload is buffered); the close code
    /// is not compared.
    InputEnded,
    /// A frame both over the limit and invalid otherwise (a reserved bit or opcode, no
    /// mask, a continuation with nothing to continue, a new message inside one): longlink
    /// checks the header's protocol first and answers 1002, tungstenite checks the length
    /// first and answers 1009. Both refuse the frame before its payload is buffered.
    TooBigAndInvalid,
    /// A close frame with a code that is not allowed and a reason that is not UTF-8:
    /// longlink checks the code first and answers 1002, tungstenite the reason and answers
    /// 1007.
    BadCodeAndReason,
}

/// The verdict on `observed` against `reference`: `Ok(None)` when they agree, `Ok(Some(e))`
/// when they differ as `e` allows, `Err` with what differs otherwise. With `app_level`,
/// messages went through the gate's processor, which closes on a message that does not
/// start with id 0 ([`Exception::Undecodable`]). `unlimited` is how tungstenite ends on the
/// same bytes with a limit far above the frames' lengths ([`unlimited()`]): a frame it
/// refuses for its length (1009) and longlink for its protocol (1002) is
/// [`Exception::TooBigAndInvalid`] only if tungstenite, not stopped by the length, refuses
/// it too (or the input ends inside it).
pub fn compare(
    reference: &Reference,
    observed: &Observed,
    app_level: bool,
    unlimited: impl FnOnce() -> RefEnd,
) -> Result<Option<Exception>, String> {
    let mut messages = Vec::new();
    let mut pongs = Vec::new();
    let mut cut = false;
    for event in &reference.events {
        match event {
            RefEvent::Message(_, m) if app_level && !m.starts_with(&[0, 0]) => {
                cut = true;
                break;
            }
            RefEvent::Message(_, m) => messages.push(m.clone()),
            RefEvent::Pong(p) => pongs.push(p.clone()),
        }
    }
    if observed.messages != messages {
        return Err(format!(
            "messages: tungstenite {}, longlink {}",
            show(&messages),
            show(&observed.messages)
        ));
    }
    if observed.pongs != pongs {
        return Err(format!(
            "pongs: tungstenite {}, longlink {}",
            show(&pongs),
            show(&observed.pongs)
        ));
    }
    let (expected, exception) = match reference.end {
        _ if cut => (Some(1000), Some(Exception::Undecodable)),
        RefEnd::InputEnded => return Ok(Some(Exception::InputEnded)),
        RefEnd::Answered(Some(1000)) => (Some(1000), None),
        RefEnd::Answered(_) => (Some(1000), Some(Exception::CloseNotEchoed)),
        RefEnd::RefusedCode(1014) => (Some(1000), Some(Exception::Code1014)),
        RefEnd::RefusedCode(_) => (Some(1002), None),
        RefEnd::Failed(1009) if observed.close == Some(1002) => match unlimited() {
            RefEnd::Failed(1002) | RefEnd::InputEnded => {
                (Some(1002), Some(Exception::TooBigAndInvalid))
            }
            _ => (Some(1009), None),
        },
        RefEnd::Failed(1007)
            if observed.close == Some(1002)
                && bad_code_and_reason(reference.close_frame.as_deref()) =>
        {
            (Some(1002), Some(Exception::BadCodeAndReason))
        }
        RefEnd::Failed(code) => (Some(code), None),
    };
    if observed.close != expected {
        return Err(format!(
            "close: tungstenite {:?} (so longlink {expected:?}), longlink {:?}",
            reference.end, observed.close
        ));
    }
    Ok(exception)
}

/// How tungstenite ends on `input` with a 16 MiB limit (over any length the cases and the
/// generator write), for [`compare`].
pub fn unlimited(input: &[u8], read_size: usize) -> RefEnd {
    reference(input, 16 << 20, read_size).end
}

/// Payloads, shortened for a message.
fn show(payloads: &[Vec<u8>]) -> String {
    let each: Vec<String> = payloads
        .iter()
        .map(|p| match p.len() {
            0..=16 => format!("{p:02x?}"),
            n => format!("{:02x?}..({n} bytes)", &p[..16]),
        })
        .collect();
    format!("{} [{}]", payloads.len(), each.join(", "))
}

/// Whether a close payload has both a code tungstenite refuses and a reason that is not
/// UTF-8.
fn bad_code_and_reason(close: Option<&[u8]>) -> bool {
    let Some([hi, lo, reason @ ..]) = close else {
        return false;
    };
    let code = CloseCode::from(u16::from_be_bytes([*hi, *lo]));
    !code.is_allowed() && std::str::from_utf8(reason).is_err()
}
