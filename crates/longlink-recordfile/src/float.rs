//! Go's `strconv.ParseFloat`, as leaf parses `float32` and `float64` cells.

use crate::strconv::{NumError, lower, underscore_ok};

/// Go's `ParseFloat(s, 64)` (or 32 when `f32` is set): decimal and hexadecimal
/// (`0x1.8p3`) forms, `inf`/`infinity`/`nan` in any case, underscores as Go
/// literals allow them; overflow is a range error. Underflow rounds toward 0.
pub(crate) fn parse_float(s: &str, f32: bool) -> Result<f64, NumError> {
    let b = s.as_bytes();
    let (neg, body) = match b.first() {
        None => return Err(NumError::Syntax),
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        Some(_) => (false, s),
    };
    let signed = body.len() != s.len();
    // Go's `special`: a sign only goes with the infinities.
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Ok(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if !signed && body.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    let bb = body.as_bytes();
    if bb.len() > 2 && bb[0] == b'0' && lower(bb[1]) == b'x' {
        let v = parse_hex_float(&bb[2..], f32)?;
        if s.contains('_') && !underscore_ok(s) {
            return Err(NumError::Syntax);
        }
        return Ok(if neg { -v } else { v });
    }
    check_decimal(bb)?;
    let owned;
    let clean = if s.contains('_') {
        if !underscore_ok(s) {
            return Err(NumError::Syntax);
        }
        owned = s.replace('_', "");
        owned.as_str()
    } else {
        s
    };
    let v = if f32 {
        f64::from(clean.parse::<f32>().map_err(|_| NumError::Syntax)?)
    } else {
        clean.parse::<f64>().map_err(|_| NumError::Syntax)?
    };
    if v.is_infinite() {
        return Err(NumError::Range);
    }
    Ok(v)
}

/// Go's decimal float syntax (after the sign): digits with at most one `.`,
/// at least one digit, then an optional `e` exponent that has digits.
fn check_decimal(b: &[u8]) -> Result<(), NumError> {
    let mut i = 0;
    let (mut dot, mut digits) = (false, false);
    while i < b.len() {
        match b[i] {
            b'_' => {}
            b'.' if !dot => dot = true,
            b'0'..=b'9' => digits = true,
            _ => break,
        }
        i += 1;
    }
    if !digits {
        return Err(NumError::Syntax);
    }
    if i < b.len() && lower(b[i]) == b'e' {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return Err(NumError::Syntax);
        }
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    if i == b.len() {
        Ok(())
    } else {
        Err(NumError::Syntax)
    }
}

/// A hexadecimal float after `0x`: hex digits with at most one `.`, then a
/// mandatory `p` exponent (decimal, may be signed). Rounded to nearest even.
fn parse_hex_float(b: &[u8], f32: bool) -> Result<f64, NumError> {
    let (mut mant, mut exp, mut sticky) = (0u64, 0i64, false);
    let (mut dot, mut digits, mut i) = (false, false, 0);
    while i < b.len() {
        let c = b[i];
        let d = match c {
            b'_' => {
                i += 1;
                continue;
            }
            b'.' if !dot => {
                dot = true;
                i += 1;
                continue;
            }
            b'0'..=b'9' => c - b'0',
            _ if (b'a'..=b'f').contains(&lower(c)) => lower(c) - b'a' + 10,
            _ => break,
        };
        digits = true;
        if mant >> 60 == 0 {
            mant = mant * 16 + u64::from(d);
            if dot {
                exp -= 4;
            }
        } else {
            sticky |= d != 0;
            if !dot {
                exp += 4;
            }
        }
        i += 1;
    }
    if !digits || i >= b.len() || lower(b[i]) != b'p' {
        return Err(NumError::Syntax);
    }
    i += 1;
    let eneg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return Err(NumError::Syntax);
    }
    let mut e: i64 = 0;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        if b[i] != b'_' {
            e = (e * 10 + i64::from(b[i] - b'0')).min(100_000);
        }
        i += 1;
    }
    if i != b.len() {
        return Err(NumError::Syntax);
    }
    exp += if eneg { -e } else { e };
    if mant == 0 {
        return Ok(0.0);
    }
    let (prec, emin, emax) = if f32 {
        (24i64, -126i64, 127i64)
    } else {
        (53, -1022, 1023)
    };
    // value = mant * 2^exp; normalise so the top bit of `mant` is bit 63.
    let lz = i64::from(mant.leading_zeros());
    let m = u128::from(mant << lz);
    let top = exp - lz + 63; // exponent of the leading bit
    if top > emax {
        return Err(NumError::Range);
    }
    let keep = if top < emin {
        prec - (emin - top)
    } else {
        prec
    };
    if keep < 0 {
        return Ok(0.0);
    }
    let shift = (64 - keep) as u32; // 11..=64
    let mut q = m >> shift;
    let rem = m & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    if rem > half || rem == half && (sticky || q & 1 == 1) {
        q += 1;
    }
    let k = top - keep + 1; // value = q * 2^k
    let v = q as f64 * 2f64.powi((k / 2) as i32) * 2f64.powi((k - k / 2) as i32);
    let v = if f32 { f64::from(v as f32) } else { v };
    if v.is_infinite() {
        return Err(NumError::Range);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use NumError::{Range, Syntax};

    #[test]
    fn floats_follow_go() {
        let ok: &[(&str, f64)] = &[
            ("1.5", 1.5),
            ("-1.5", -1.5),
            ("+.5", 0.5),
            ("1.", 1.0),
            ("1e3", 1000.0),
            ("1E-3", 0.001),
            ("1_000.5", 1000.5),
            ("0x1p-2", 0.25),
            ("0x1.8p1", 3.0),
            ("-0X_1P+4", -16.0),
            ("Inf", f64::INFINITY),
            ("-infinity", f64::NEG_INFINITY),
            ("1e-400", 0.0),
        ];
        for (s, want) in ok {
            assert_eq!(parse_float(s, false), Ok(*want), "{s}");
        }
        assert!(parse_float("NaN", false).unwrap().is_nan());
        for s in [
            "", ".", "e5", "1e", "1e+", "+nan", "1_", "1._5", "0x1", "0xp1", "1.5x", "infin", "1,5",
        ] {
            assert_eq!(parse_float(s, false), Err(Syntax), "{s:?}");
        }
        assert_eq!(parse_float("1e400", false), Err(Range));
        assert_eq!(parse_float("1e39", true), Err(Range));
        assert_eq!(parse_float("0x1p1024", false), Err(Range));
        assert_eq!(parse_float("0x1p-1074", false), Ok(f64::from_bits(1)));
        assert_eq!(parse_float("0.1", true), Ok(f64::from(0.1f32)));
    }
}
