//! Go's `strconv` rules for the cells leaf parses itself: `ParseBool`,
//! `ParseInt(s, 0, bits)` and `ParseUint(s, 0, bits)` (`ParseFloat` is in `float`).
//!
//! Ported from Go's `strconv/atoi.go` and `strconv/atof.go` so that a table that
//! loads in leaf loads here with the same values, and one that fails there fails
//! here. Widths up to 128 bits are accepted (Go stops at 64).

/// Why a number did not parse, as Go's `ErrSyntax` / `ErrRange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumError {
    /// Not a number in Go's syntax.
    Syntax,
    /// A number, but it does not fit the type.
    Range,
}

/// Go's `lower`: ASCII letters to lower case (other bytes move out of `a..=z`).
pub(crate) fn lower(c: u8) -> u8 {
    c | (b'x' - b'X')
}

/// Go's `ParseBool`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `underscoreOK`: underscores only between digits (a base prefix counts
/// as a digit), as in Go integer literals.
pub(crate) fn underscore_ok(s: &str) -> bool {
    let s = s.as_bytes();
    // '^' start, '0' digit or base prefix, '_' underscore, '!' anything else.
    let mut saw = b'^';
    let mut i = 0;
    let s = match s.first() {
        Some(b'-' | b'+') => &s[1..],
        _ => s,
    };
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(lower(s[1]), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = lower(s[1]) == b'x';
    }
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c.is_ascii_digit() || hex && (b'a'..=b'f').contains(&lower(c)) {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// Go's `ParseUint(s, 0, bits)`: no sign; `0x`, `0o`, `0b` prefixes, a leading
/// `0` means octal, underscores as Go literals allow them.
pub(crate) fn parse_uint(s0: &str, bits: u32) -> Result<u128, NumError> {
    let b = s0.as_bytes();
    if b.is_empty() {
        return Err(NumError::Syntax);
    }
    let (base, digits): (u32, &[u8]) = if b[0] == b'0' {
        match b.get(1).map(|&c| lower(c)) {
            Some(b'b') if b.len() >= 3 => (2, &b[2..]),
            Some(b'o') if b.len() >= 3 => (8, &b[2..]),
            Some(b'x') if b.len() >= 3 => (16, &b[2..]),
            _ => (8, &b[1..]),
        }
    } else {
        (10, b)
    };
    let max = if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    let cutoff = u128::MAX / u128::from(base) + 1;
    let mut n: u128 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => c - b'0',
            _ if lower(c).is_ascii_lowercase() => lower(c) - b'a' + 10,
            _ => return Err(NumError::Syntax),
        };
        if u32::from(d) >= base {
            return Err(NumError::Syntax);
        }
        if n >= cutoff {
            return Err(NumError::Range);
        }
        n *= u128::from(base);
        match n.checked_add(u128::from(d)) {
            Some(n1) if n1 <= max => n = n1,
            _ => return Err(NumError::Range),
        }
    }
    if underscores && !underscore_ok(s0) {
        return Err(NumError::Syntax);
    }
    Ok(n)
}

/// Go's `ParseInt(s, 0, bits)`: an optional `+` or `-`, then [`parse_uint`].
pub(crate) fn parse_int(s0: &str, bits: u32) -> Result<i128, NumError> {
    let (neg, s) = match s0.as_bytes().first() {
        None => return Err(NumError::Syntax),
        Some(b'+') => (false, &s0[1..]),
        Some(b'-') => (true, &s0[1..]),
        Some(_) => (false, s0),
    };
    let un = parse_uint(s, bits)?;
    let cutoff = 1u128 << (bits - 1);
    if !neg && un >= cutoff || neg && un > cutoff {
        return Err(NumError::Range);
    }
    Ok(if neg {
        0u128.wrapping_sub(un) as i128
    } else {
        un as i128
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use NumError::{Range, Syntax};

    #[test]
    fn ints_follow_go_base_zero() {
        let cases: &[(&str, u32, Result<i128, NumError>)] = &[
            ("0", 64, Ok(0)),
            ("42", 64, Ok(42)),
            ("+42", 64, Ok(42)),
            ("-42", 64, Ok(-42)),
            ("0x1F", 64, Ok(31)),
            ("0X1f", 64, Ok(31)),
            ("-0x1F", 64, Ok(-31)),
            ("0o17", 64, Ok(15)),
            ("0O17", 64, Ok(15)),
            ("017", 64, Ok(15)),
            ("0b101", 64, Ok(5)),
            ("1_000", 64, Ok(1000)),
            ("0x_1F", 64, Ok(31)),
            ("0_17", 64, Ok(15)),
            ("_1", 64, Err(Syntax)),
            ("1_", 64, Err(Syntax)),
            ("1__0", 64, Err(Syntax)),
            ("08", 64, Err(Syntax)),
            ("0x", 64, Err(Syntax)),
            ("0b", 64, Err(Syntax)),
            ("0b102", 64, Err(Syntax)),
            ("", 64, Err(Syntax)),
            ("-", 64, Err(Syntax)),
            ("+-1", 64, Err(Syntax)),
            (" 1", 64, Err(Syntax)),
            ("1.0", 64, Err(Syntax)),
            ("127", 8, Ok(127)),
            ("128", 8, Err(Range)),
            ("-128", 8, Ok(-128)),
            ("-129", 8, Err(Range)),
            ("9223372036854775807", 64, Ok(i64::MAX.into())),
            ("9223372036854775808", 64, Err(Range)),
            ("-9223372036854775808", 64, Ok(i64::MIN.into())),
            ("99999999999999999999999", 64, Err(Range)),
        ];
        for (s, bits, want) in cases {
            assert_eq!(parse_int(s, *bits), *want, "ParseInt({s:?}, 0, {bits})");
        }
    }

    #[test]
    fn uints_refuse_signs() {
        assert_eq!(parse_uint("255", 8), Ok(255));
        assert_eq!(parse_uint("256", 8), Err(Range));
        assert_eq!(parse_uint("+1", 8), Err(Syntax));
        assert_eq!(parse_uint("-1", 8), Err(Syntax));
        assert_eq!(parse_uint("0xFFFFFFFFFFFFFFFF", 64), Ok(u64::MAX.into()));
        assert_eq!(parse_uint("0x10000000000000000", 64), Err(Range));
        assert_eq!(parse_uint(&u128::MAX.to_string(), 128), Ok(u128::MAX));
    }

    #[test]
    fn bools_take_go_spellings_only() {
        for s in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(s), Some(true), "{s}");
        }
        for s in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(s), Some(false), "{s}");
        }
        for s in ["yes", "tRUE", "", " true", "2"] {
            assert_eq!(parse_bool(s), None, "{s}");
        }
    }
}
