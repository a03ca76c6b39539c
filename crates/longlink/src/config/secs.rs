//! Durations for `#[serde(with = "longlink::config::secs")]`: a number of seconds
//! (`http_timeout = 10`, `0.5`) or a string with units (`"10s"`, `"500ms"`, `"1m"`, `"1h"`,
//! `"1m30s"`). A duration is written back as a number of seconds.
//!
//! ```
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize)]
//! struct Settings {
//!     #[serde(with = "longlink::config::secs")]
//!     timeout: Duration,
//! }
//!
//! let parse = |text: &str| longlink::config::load::<Settings>(text, None, "DOCTEST_SECS_").map(|s| s.timeout);
//! assert_eq!(parse("timeout = 10").unwrap(), Duration::from_secs(10));
//! assert_eq!(parse("timeout = 0.5").unwrap(), Duration::from_millis(500));
//! assert_eq!(parse("timeout = \"500ms\"").unwrap(), Duration::from_millis(500));
//! assert_eq!(parse("timeout = \"1m30s\"").unwrap(), Duration::from_secs(90));
//! assert!(parse("timeout = \"10 parsecs\"").unwrap_err().to_string().contains("timeout"));
//! ```

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// Writes the duration as a number of seconds.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Reads a number of seconds or a string with units.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration: seconds (10, 0.5) or a string with units (\"500ms\", \"10s\", \"1m\", \"1h\")")
    }

    fn visit_u64<E: de::Error>(self, secs: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(secs))
    }

    fn visit_i64<E: de::Error>(self, secs: i64) -> Result<Duration, E> {
        u64::try_from(secs)
            .map(Duration::from_secs)
            .map_err(|_| E::custom(format!("{secs} is not a number of seconds >= 0")))
    }

    fn visit_f64<E: de::Error>(self, secs: f64) -> Result<Duration, E> {
        from_secs(secs).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }
}

fn from_secs(secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{secs} is not a number of seconds >= 0"))
}

/// Parses `"10"` (seconds), `"10s"`, `"500ms"`, `"1.5m"`, `"1h30m"`: numbers each followed by
/// a unit (`ms`, `s`, `m`, `h`), added up; a bare number is seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a duration: use seconds (10, 0.5) or a number with a unit \
             (\"500ms\", \"10s\", \"1m\", \"1h\")"
        )
    };
    let trimmed = text.trim();
    if let Ok(secs) = trimmed.parse::<f64>() {
        return from_secs(secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let number: f64 = number.parse().map_err(|_| bad())?;
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::try_from_secs_f64(number * scale).map_err(|_| bad())?;
        rest = after.trim_start();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_numbers() {
        let ok = [
            ("10", Duration::from_secs(10)),
            ("0.5", Duration::from_millis(500)),
            ("10s", Duration::from_secs(10)),
            ("500ms", Duration::from_millis(500)),
            ("1m", Duration::from_secs(60)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", Duration::from_millis(1500)),
            ("1h30m", Duration::from_secs(5400)),
            ("1m 30s", Duration::from_secs(90)),
            ("0s", Duration::ZERO),
        ];
        for (text, want) in ok {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
        for text in [
            "",
            "s",
            "10x",
            "-1s",
            "1.2.3s",
            "10 s",
            "ten seconds",
            "-5",
            "1d",
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains("is not a duration"), "{text}: {err}");
        }
    }
}
