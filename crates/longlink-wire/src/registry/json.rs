//! leaf's JSON envelope: a payload is an object with exactly one key, the message name, whose
//! value is the message body: `{"C2S_UserLogin":{"token":"...","login_plat":1}}`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::error::DecodeError;

/// The envelope of one JSON message, borrowed from the payload.
pub(crate) struct Envelope<'a> {
    /// The message name; owned only when the payload escapes characters in it.
    pub(crate) name: Cow<'a, str>,
    /// The body, undecoded.
    pub(crate) body: &'a RawValue,
}

/// Splits a payload into its name and its (undecoded) body.
pub(crate) fn open(payload: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    serde_json::from_slice::<Envelope<'_>>(payload).map_err(|e| DecodeError::Json(e.to_string()))
}

/// The name and the body of an envelope in its plain form, `{"Name":body}` (JSON whitespace
/// allowed around each part), with a name free of escapes and control characters; `None`
/// for any other payload, which only [`open`] can judge. Neither part is checked: the
/// name is JSON's once it is found among the registered, the body once it decodes with
/// [`decode_body`] (after a UTF-8 check: see [`Utf8Body`]).
///
/// A body that decodes is exactly the value [`open`] would have found: decoding consumes
/// one whole JSON value and then only whitespace, so the payload was an envelope with this
/// one key, and the value is the same as decoded from [`open`]'s body. This is the one-pass
/// path for the common payload; every other one takes the two.
pub(crate) fn split_plain(payload: &[u8]) -> Option<(&[u8], &[u8])> {
    // Byte by byte: `str::trim_matches` and `find` cost more than the decode of a small body.
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = payload.iter().position(|b| !ws(b))?;
    let end = payload.iter().rposition(|b| !ws(b))?;
    if payload[start] != b'{' || payload[end] != b'}' || end == start {
        return None;
    }
    let inner = &payload[start + 1..end];
    let quote = inner.iter().position(|b| !ws(b))?;
    if inner[quote] != b'"' {
        return None;
    }
    let rest = &inner[quote + 1..];
    let name_len = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if rest[name_len] != b'"' {
        return None;
    }
    let after = &rest[name_len + 1..];
    let colon = after.iter().position(|b| !ws(b))?;
    if after[colon] != b':' {
        return None;
    }
    Some((&rest[..name_len], &after[colon + 1..]))
}

/// A body's bytes, known to be UTF-8: serde_json reads them as it reads a `&str` (its
/// slice reader checks only the strings it keeps; here every byte was checked).
#[derive(Clone, Copy)]
pub(crate) struct Utf8Body<'a>(&'a [u8]);

impl<'a> Utf8Body<'a> {
    /// Checks `bytes`; ASCII, the common body, by the word.
    pub(crate) fn new(bytes: &'a [u8]) -> Option<Self> {
        (bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()).then_some(Utf8Body(bytes))
    }

    pub(crate) fn from_str(text: &'a str) -> Self {
        Utf8Body(text.as_bytes())
    }
}

/// Decodes a body into the registered type.
pub(crate) fn decode_body<T: serde::de::DeserializeOwned>(
    name: &str,
    body: Utf8Body<'_>,
) -> Result<T, DecodeError> {
    serde_json::from_slice(body.0).map_err(|e| DecodeError::BadBody {
        name: name.to_owned(),
        reason: e.to_string(),
    })
}

/// `{"name":`, the part of every envelope of `name` before the body: computed once, at
/// registration, with serde_json's escaping.
pub(crate) fn head(name: &str) -> Box<[u8]> {
    let quoted = serde_json::Value::String(name.to_owned()).to_string();
    let mut head = Vec::with_capacity(quoted.len() + 2);
    head.push(b'{');
    head.extend_from_slice(quoted.as_bytes());
    head.push(b':');
    head.into_boxed_slice()
}

/// Appends `{"name":body}`, given the name's [`head`]. On error `out` may hold part of it; the
/// caller truncates.
pub(crate) fn encode<T: Serialize + ?Sized>(
    head: &[u8],
    msg: &T,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    out.extend_from_slice(head);
    serde_json::to_writer(&mut *out, msg)?;
    out.push(b'}');
    Ok(())
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor;
        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"an object with exactly one key, like {"Name":{...}}"#)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found: Option<Envelope<'de>> = None;
                while let Some((Key(name), body)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    // Like Go's map decoding, a repeated key keeps the last value and still
                    // counts once; two different keys are an error.
                    if let Some(prev) = &found {
                        if prev.name != name {
                            return Err(de::Error::custom(
                                "invalid json data: the object must have exactly one key",
                            ));
                        }
                    }
                    found = Some(Envelope { name, body });
                }
                found.ok_or_else(|| {
                    de::Error::custom("invalid json data: the object must have exactly one key")
                })
            }
        }
        d.deserialize_map(EnvelopeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_one_key() {
        let env = open(br#"{"Hello":{"name":"x"}}"#).unwrap();
        assert_eq!(env.name, "Hello");
        assert_eq!(env.body.get(), r#"{"name":"x"}"#);
    }

    #[test]
    fn escaped_names_are_unescaped() {
        let env = open(br#"{"He\u006clo":1}"#).unwrap();
        assert_eq!(env.name, "Hello");
    }

    #[test]
    fn the_body_is_borrowed_from_the_payload() {
        let payload = br#" { "Hello" : [1, 2] } "#;
        let env = open(payload).unwrap();
        assert!(matches!(env.name, Cow::Borrowed("Hello")));
        let body = env.body.get().as_bytes();
        assert_eq!(body, b"[1, 2]");
        let range = payload.as_ptr_range();
        assert!(range.contains(&body.as_ptr()), "not a copy");
    }

    #[test]
    fn refuses_zero_or_two_keys_and_non_objects() {
        assert!(open(b"{}").is_err());
        assert!(open(br#"{"A":1,"B":2}"#).is_err());
        assert!(open(br#"{"A":1,"B":2,"A":3}"#).is_err());
        assert!(open(b"[1]").is_err());
        assert!(open(b"\"A\"").is_err());
        assert!(open(b"{\"A\":").is_err());
        assert!(open(b"").is_err());
        assert!(open(br#"{"A":1} x"#).is_err());
    }

    #[test]
    fn a_repeated_key_counts_once_and_the_last_wins() {
        let env = open(br#"{"A":1,"A":2}"#).unwrap();
        assert_eq!(env.body.get(), "2");
    }

    #[test]
    fn the_error_text_is_the_servers() {
        let e = open(br#"{"A":1,"B":2}"#).err().unwrap();
        assert!(
            e.to_string().starts_with(
                "invalid json data: invalid json data: the object must have exactly one key"
            ),
            "{e}"
        );
    }

    #[test]
    fn splits_the_plain_form() {
        assert_eq!(
            split_plain(br#"{"Hello":{"name":"x"}}"#),
            Some((&b"Hello"[..], &br#"{"name":"x"}"#[..]))
        );
        assert_eq!(
            split_plain(b" {\t\"A\" \r\n: [1, 2] } \n"),
            Some((&b"A"[..], &b" [1, 2] "[..]))
        );
        // What is not a plain envelope is left to `open`, even where the body would decode.
        for payload in [
            &br#"{"He\u006clo":1}"#[..],
            b"{\"A\x01\":1}",
            b"[1]",
            b"{}",
            br#"{"A" 1}"#,
            br#"{"A":1"#,
            br#"x{"A":1}"#,
        ] {
            assert_eq!(split_plain(payload), None, "{payload:?}");
        }
        // The body is whatever follows the colon; decoding it is what checks it.
        let body = |payload| split_plain(payload).map(|(_, body)| body);
        assert_eq!(body(br#"{"A":1,"B":2}"#), Some(&br#"1,"B":2"#[..]));
        assert!(decode_body::<serde_json::Value>("A", Utf8Body::from_str(r#"1,"B":2"#)).is_err());
        assert_eq!(body(br#"{"A":{}}}"#), Some(&b"{}}"[..]));
        assert!(decode_body::<serde_json::Value>("A", Utf8Body::from_str("{}}")).is_err());
        assert_eq!(body(b"{\"A\":\"\xff\"}"), Some(&b"\"\xff\""[..]));
        assert!(Utf8Body::new(b"\"\xff\"").is_none());
        assert!(Utf8Body::new("\"é\"".as_bytes()).is_some());
    }

    #[test]
    fn encodes_the_envelope() {
        #[derive(Serialize)]
        struct Hello {
            name: String,
        }
        let mut out = Vec::new();
        encode(&head("Hello"), &Hello { name: "a".into() }, &mut out).unwrap();
        assert_eq!(out, br#"{"Hello":{"name":"a"}}"#);
    }

    #[test]
    fn the_head_escapes_as_serde_json_writes_a_str() {
        for name in [
            "Hello",
            "a\"b",
            "back\\slash",
            "tab\tnew\nline",
            "\u{1}",
            "é名",
        ] {
            let mut want = vec![b'{'];
            serde_json::to_writer(&mut want, name).unwrap();
            want.push(b':');
            assert_eq!(&*head(name), &want[..], "{name:?}");
            let mut out = Vec::new();
            encode(&head(name), &1, &mut out).unwrap();
            let env = open(&out).unwrap();
            assert_eq!(env.name, name);
        }
    }
}
