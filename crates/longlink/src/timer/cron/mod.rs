//! Cron expressions in leaf's form (`timer/cronexpr.go`), parsed and searched by [`croner`].
//!
//! An expression has five or six whitespace-separated fields; with five fields the seconds
//! field is `0` (leaf requires all six; five is the common crontab form):
//!
//! ```text
//! [second] minute hour day-of-month month day-of-week
//!   0-59    0-59  0-23     1-31     1-12     0-7 (0 and 7 = Sunday)
//! ```
//!
//! Each field is a comma-separated list of items, and each item is one of `*`, `n`, `n-m`,
//! `*/k`, `n/k` (from `n` to the field's maximum, every `k`; in the day-of-week field the
//! maximum is 6, Saturday) or `n-m/k`, as in leaf. Beyond leaf's syntax, croner's extensions
//! are accepted, each with its usual meaning:
//!
//! - names, in any case: `JAN`-`DEC` in the month field, `SUN`-`SAT` in the day-of-week field;
//! - `?` in the day-of-month or day-of-week field, the same as `*`;
//! - `L` in the day-of-month field, the last day of the month; `nL` in the day-of-week field,
//!   the last such weekday of the month (`5L`, the last Friday);
//! - `nW` in the day-of-month field, the weekday (Monday-Friday) nearest day `n` within the
//!   month, and `LW`, the last weekday of the month;
//! - `n#i` in the day-of-week field, the `i`-th such weekday of the month (`1#2`, the second
//!   Monday);
//! - `7` in the day-of-week field, Sunday (leaf rejects it);
//! - a `+` before the day-of-week field, which makes a day match only when both day fields
//!   match (see below).
//!
//! If the day-of-month field is `*` (or `?`), only the day-of-week field is used, and vice
//! versa; if both are restricted, a day matches when *either* field matches, as in standard
//! cron and in leaf, unless the day-of-week field starts with `+` (then both must match).
//! One schedule differs from leaf's: leaf counts a day field that lists every value (`1-31`,
//! `0-6`) as unrestricted, where here only `*` and `?` are, so `0 0 12 1-31 * 5` fires every
//! day here and on Fridays only in leaf. Every other expression leaf accepts gives the same
//! schedule here.
//!
//! Names are the only letters accepted (`@daily` and other nicknames are not), an item may not
//! be empty (`1,,2`), and a step needs a start (`/5` is an error; `*/5` is meant).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Error returned when a cron expression cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// The expression does not have 5 or 6 fields.
    #[error("invalid cron expression {expr:?}: expected 5 or 6 fields, got {count}")]
    FieldCount {
        /// The whole expression.
        expr: String,
        /// The number of fields found.
        count: usize,
    },
    /// An item of one field is malformed or out of range.
    #[error("invalid cron expression {expr:?}: {field} field, item {item:?}: {reason}")]
    InvalidItem {
        /// The whole expression.
        expr: String,
        /// The field's name, e.g. `"minute"` or `"day-of-week"`.
        field: &'static str,
        /// The offending item (the whole field when no single item is at fault).
        item: String,
        /// What is wrong with the item.
        reason: String,
    },
}

/// Name and inclusive range of each field, in order.
const FIELDS: [(&str, u32, u32); 6] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];

/// The field index of the day of the week, whose `n/k` ends at 6 rather than at 7.
const DOW: usize = 5;

/// The letters each field accepts: names, or croner's `L` and `W`.
const LETTERS: [&[&str]; 6] = [
    &[],
    &[],
    &[],
    &["L", "W", "LW"],
    &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "L"],
];

/// A parsed cron expression (see the [module docs](self) for the syntax).
///
/// # Example
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use longlink::timer::cron::CronExpr;
///
/// // Minute 0 of every hour.
/// let expr: CronExpr = "0 * * * *".parse()?;
/// let after = Utc.with_ymd_and_hms(2000, 1, 1, 20, 10, 5).unwrap();
/// let next = Utc.with_ymd_and_hms(2000, 1, 1, 21, 0, 0).unwrap();
/// assert_eq!(expr.next(&after), Some(next));
/// assert_eq!(expr.to_string(), "0 * * * *");
///
/// // Noon on the last day of every month.
/// let expr: CronExpr = "0 0 12 L * *".parse()?;
/// let next = Utc.with_ymd_and_hms(2000, 1, 31, 12, 0, 0).unwrap();
/// assert_eq!(expr.next(&after), Some(next));
/// # Ok::<(), longlink::timer::cron::CronError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CronExpr {
    source: String,
    cron: Cron,
}

impl CronExpr {
    /// Parses a 5- or 6-field cron expression (see the [module docs](self)).
    pub fn parse(expr: &str) -> Result<Self, CronError> {
        let mut fields: Vec<&str> = expr.split_whitespace().collect();
        match fields.len() {
            5 => fields.insert(0, "0"),
            6 => {}
            count => {
                return Err(CronError::FieldCount {
                    expr: expr.to_owned(),
                    count,
                });
            }
        }
        let invalid = |i: usize, item: &str, reason: String| CronError::InvalidItem {
            expr: expr.to_owned(),
            field: FIELDS[i].0,
            item: item.to_owned(),
            reason,
        };
        for (i, field) in fields.iter().enumerate() {
            check_letters(i, field).map_err(|(item, reason)| invalid(i, item, reason))?;
        }
        let pattern: Vec<String> = (0..6).map(|i| leaf_field(i, fields[i])).collect();
        match parser().parse(&pattern.join(" ")) {
            Ok(cron) => Ok(Self {
                source: expr.to_owned(),
                cron,
            }),
            Err(err) => {
                let (i, item, reason) = locate(&fields, &err);
                Err(invalid(i, item, reason))
            }
        }
    }

    /// Returns the first instant strictly after `after` that matches, searched in `after`'s
    /// time zone, or `None` if there is none (croner searches up to the year 5000).
    ///
    /// Local times skipped by a DST transition never match; for local times that occur
    /// twice, the earliest one after `after` is returned.
    pub fn next<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = after.timezone();
        let mut wall = local_time(after)?;
        loop {
            wall = self.cron.find_next_occurrence(&wall, false).ok()?;
            let local = tz.from_local_datetime(&wall);
            let instants = [local.clone().earliest(), local.latest()];
            if let Some(dt) = instants.into_iter().flatten().find(|dt| dt > after) {
                return Some(dt);
            }
        }
    }

    /// Reports whether `t`, read in its own time zone, matches every field (the sub-second
    /// part is ignored).
    pub fn matches<Tz: TimeZone>(&self, t: &DateTime<Tz>) -> bool {
        local_time(t).is_some_and(|t| self.cron.is_time_matching(&t).unwrap_or(false))
    }
}

impl FromStr for CronExpr {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// croner set to leaf's form: six fields with seconds, no year, and a day matching either
/// day field when both are restricted.
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .dom_and_dow(false)
        .build()
}

/// The wall-clock time of `t` in its time zone, without panicking at the edges of chrono's
/// range.
fn local_time<Tz: TimeZone>(t: &DateTime<Tz>) -> Option<NaiveDateTime> {
    t.naive_utc().checked_add_offset(t.offset().fix())
}

/// Checks what croner does not: that no item is empty or starts with its step, and that the
/// only letters are the field's names, `L` and `W`. On error returns the item and why.
fn check_letters(i: usize, field: &str) -> Result<(), (&str, String)> {
    for item in field.split(',') {
        if item.is_empty() {
            return Err((item, "empty item".to_owned()));
        }
        if item.starts_with('/') {
            return Err((item, "a step needs a start, as in */k or n/k".to_owned()));
        }
        let words = item
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| !w.is_empty());
        for word in words {
            if !LETTERS[i]
                .iter()
                .any(|name| name.eq_ignore_ascii_case(word))
            {
                let reason = match LETTERS[i] {
                    [] => format!("expected a number, got {item:?}"),
                    names => format!("unknown name {word:?} (this field takes {names:?})"),
                };
                return Err((item, reason));
            }
        }
    }
    Ok(())
}

/// Field `i` as croner reads it: leaf's `n/k` becomes `n-max/k`.
fn leaf_field(i: usize, field: &str) -> String {
    let items: Vec<Cow<'_, str>> = field.split(',').map(|item| leaf_item(i, item)).collect();
    items.join(",")
}

/// Item `item` of field `i` as croner reads it: leaf's `n/k` becomes `n-max/k`.
fn leaf_item(i: usize, item: &str) -> Cow<'_, str> {
    match item.split_once('/') {
        Some((start, step)) if !start.is_empty() && start.bytes().all(|b| b.is_ascii_digit()) => {
            let max = if i == DOW { 6 } else { FIELDS[i].2 };
            Cow::Owned(format!("{start}-{max}/{step}"))
        }
        _ => Cow::Borrowed(item),
    }
}

/// Finds the field and item croner rejects, by parsing each field alone (croner checks each
/// field on its own), and says why.
fn locate<'a>(fields: &[&'a str], err: &croner::errors::CronError) -> (usize, &'a str, String) {
    let rejects = |i: usize, text: &str| {
        let pattern: Vec<&str> = (0..6).map(|j| if j == i { text } else { "*" }).collect();
        parser().parse(&pattern.join(" ")).err()
    };
    for (i, field) in fields.iter().enumerate() {
        let Some(field_err) = rejects(i, &leaf_field(i, field)) else {
            continue;
        };
        for item in field.split(',') {
            if let Some(item_err) = rejects(i, &leaf_item(i, item)) {
                return (i, item, reason(i, item, &item_err));
            }
        }
        return (i, field, reason(i, field, &field_err));
    }
    (DOW, fields[DOW], reason(DOW, fields[DOW], err))
}

/// Why croner rejects `item` of field `i`: a number outside the field's range if it holds
/// one, else croner's own words.
fn reason(i: usize, item: &str, err: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    let (_, min, max) = FIELDS[i];
    if let Some(value) = values(item).find(|v| !v.parse().is_ok_and(|v| (min..=max).contains(&v))) {
        return format!("value {value} out of range {min}-{max}");
    }
    match err {
        E::InvalidPattern(msg) | E::IllegalCharacters(msg) | E::ComponentError(msg) => {
            msg.trim_end_matches('.').to_owned()
        }
        other => other.to_string(),
    }
}

/// The numbers of an item that stand for field values: not a step (after `/`) or an
/// occurrence (after `#`).
fn values(item: &str) -> impl Iterator<Item = &str> {
    item.split(['-', ',']).filter_map(|part| {
        let value = part.split(['/', '#']).next()?;
        let value = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())).then_some(value)
    })
}

#[cfg(test)]
mod tests;
