//! The two settings both ends must agree on: how payloads are encoded ([`Encoding`]) and how
//! they travel ([`Transport`]).

use std::fmt;
use std::str::FromStr;

/// The wire encoding of message payloads; client and server must use the same.
///
/// ```
/// use longlink_wire::Encoding;
///
/// assert_eq!(Encoding::default(), Encoding::Json);
/// assert_eq!("protobuf".parse::<Encoding>()?, Encoding::Protobuf);
/// assert_eq!(Encoding::Protobuf.to_string(), "protobuf");
/// assert_eq!(serde_json::to_string(&Encoding::Json).unwrap(), r#""json""#);
/// # Ok::<(), longlink_wire::ParseKindError>(())
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// `{"Name":{...}}`, leaf's `json.Processor`.
    #[default]
    Json,
    /// `| id: u16 | body |`, leaf's `protobuf.Processor`.
    Protobuf,
}

impl Encoding {
    /// The name used in configuration files and by [`Display`](fmt::Display): `"json"` or
    /// `"protobuf"`.
    ///
    /// ```
    /// assert_eq!(longlink_wire::Encoding::Json.as_str(), "json");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Protobuf => "protobuf",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Encoding {
    type Err = ParseKindError;

    /// `"json"` or `"protobuf"`, exactly.
    fn from_str(s: &str) -> Result<Self, ParseKindError> {
        match s {
            "json" => Ok(Encoding::Json),
            "protobuf" => Ok(Encoding::Protobuf),
            other => Err(ParseKindError::new(
                "encoding",
                other,
                r#""json" or "protobuf""#,
            )),
        }
    }
}

/// How a connection reaches the server: which listener it came through, on the server.
///
/// ```
/// use longlink_wire::Transport;
///
/// assert_eq!(Transport::default(), Transport::Tcp);
/// assert_eq!("ws".parse::<Transport>()?, Transport::Ws);
/// assert_eq!(Transport::Ws.to_string(), "ws");
/// assert_eq!(Transport::from_code(Transport::Ws.code()), Some(Transport::Ws));
/// # Ok::<(), longlink_wire::ParseKindError>(())
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP with a length prefix before each payload (see [`LenCodec`](crate::LenCodec);
    /// leaf's `TCPServer` and `TCPClient`).
    #[default]
    Tcp,
    /// WebSocket: one binary message per payload (leaf's `WSServer` and `WSClient`).
    Ws,
}

impl Transport {
    /// The name used in configuration files and by [`Display`](fmt::Display): `"tcp"` or
    /// `"ws"`.
    ///
    /// ```
    /// assert_eq!(longlink_wire::Transport::Tcp.as_str(), "tcp");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
        }
    }

    /// The one-byte code the cluster's messages carry: `Tcp` is 0, `Ws` is 1.
    ///
    /// ```
    /// use longlink_wire::Transport;
    ///
    /// assert_eq!((Transport::Tcp.code(), Transport::Ws.code()), (0, 1));
    /// ```
    pub const fn code(self) -> u8 {
        match self {
            Transport::Tcp => 0,
            Transport::Ws => 1,
        }
    }

    /// The transport a [`code`](Transport::code) stands for; `None` for a code no version
    /// writes.
    ///
    /// ```
    /// use longlink_wire::Transport;
    ///
    /// assert_eq!(Transport::from_code(0), Some(Transport::Tcp));
    /// assert_eq!(Transport::from_code(1), Some(Transport::Ws));
    /// assert_eq!(Transport::from_code(2), None);
    /// ```
    pub const fn from_code(code: u8) -> Option<Transport> {
        match code {
            0 => Some(Transport::Tcp),
            1 => Some(Transport::Ws),
            _ => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = ParseKindError;

    /// `"tcp"` or `"ws"`, exactly.
    fn from_str(s: &str) -> Result<Self, ParseKindError> {
        match s {
            "tcp" => Ok(Transport::Tcp),
            "ws" => Ok(Transport::Ws),
            other => Err(ParseKindError::new("transport", other, r#""tcp" or "ws""#)),
        }
    }
}

/// A string that names no [`Encoding`] or no [`Transport`].
///
/// ```
/// use longlink_wire::Transport;
///
/// let e = "udp".parse::<Transport>().unwrap_err();
/// assert_eq!(e.to_string(), r#"transport "udp": expected "tcp" or "ws""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {input:?}: expected {expected}")]
pub struct ParseKindError {
    /// `"encoding"` or `"transport"`.
    what: &'static str,
    /// The string that was refused.
    input: String,
    /// The accepted strings, quoted.
    expected: &'static str,
}

impl ParseKindError {
    fn new(what: &'static str, input: &str, expected: &'static str) -> Self {
        ParseKindError {
            what,
            input: input.to_owned(),
            expected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in [Encoding::Json, Encoding::Protobuf] {
            assert_eq!(e.to_string().parse::<Encoding>().unwrap(), e);
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(json, format!("\"{e}\""));
            assert_eq!(serde_json::from_str::<Encoding>(&json).unwrap(), e);
        }
        for t in [Transport::Tcp, Transport::Ws] {
            assert_eq!(t.as_str().parse::<Transport>().unwrap(), t);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{t}\""));
            assert_eq!(serde_json::from_str::<Transport>(&json).unwrap(), t);
            assert_eq!(Transport::from_code(t.code()), Some(t));
        }
    }

    #[test]
    fn unknown_names_are_refused() {
        assert_eq!(
            "JSON".parse::<Encoding>().unwrap_err().to_string(),
            r#"encoding "JSON": expected "json" or "protobuf""#
        );
        assert_eq!(
            "x".parse::<Transport>().unwrap_err().to_string(),
            r#"transport "x": expected "tcp" or "ws""#
        );
        assert!(serde_json::from_str::<Transport>(r#""udp""#).is_err());
        assert_eq!(Transport::from_code(255), None);
    }
}
