//! Cron expressions, modelled on leaf's `timer/cronexpr.go`.
//!
//! An expression has five or six whitespace-separated fields; with five
//! fields the seconds field is `0`:
//!
//! ```text
//! [second] minute hour day-of-month month day-of-week
//!   0-59    0-59  0-23     1-31     1-12     0-6 (0 = Sunday)
//! ```
//!
//! Each field is a comma-separated list of items, and each item is one of
//! `*`, `n`, `n-m`, `*/k`, `n/k` (from `n` to the field's maximum, every
//! `k`) or `n-m/k`. Names (`JAN`, `MON`) and the `?`, `L`, `W` and `#`
//! extensions are not supported.
//!
//! If the day-of-month field covers every day (1-31), only the day-of-week
//! field is used, and vice versa; if both are restricted, a day matches when
//! *either* field matches, as in standard cron. (leaf itself requires both to
//! match in that case.)

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Timelike,
};

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
        /// The offending item.
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
    ("day-of-week", 0, 6),
];

/// Day-of-month mask with every day 1-31 set.
const ALL_DOM: u64 = 0xFFFF_FFFE;
/// Day-of-week mask with every day 0-6 set.
const ALL_DOW: u64 = 0x7F;

/// A parsed cron expression; each field is kept as a bitmask.
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
/// # Ok::<(), longlink::timer::cron::CronError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CronExpr {
    source: String,
    sec: u64,
    min: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
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
        let field = |i: usize| {
            let (name, min, max) = FIELDS[i];
            parse_field(fields[i], min, max).map_err(|(item, reason)| CronError::InvalidItem {
                expr: expr.to_owned(),
                field: name,
                item: item.to_owned(),
                reason,
            })
        };
        Ok(Self {
            source: expr.to_owned(),
            sec: field(0)?,
            min: field(1)?,
            hour: field(2)?,
            dom: field(3)?,
            month: field(4)?,
            dow: field(5)?,
        })
    }

    /// Returns the first instant strictly after `after` that matches, searched
    /// in `after`'s time zone, or `None` if there is none before the end of
    /// the year following the one the search starts in.
    ///
    /// Local times skipped by a DST transition never match; for local times
    /// that occur twice, the earliest one after `after` is returned.
    pub fn next<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = after.timezone();
        let mut t = local_time(after)?
            .with_nanosecond(0)?
            .checked_add_signed(TimeDelta::seconds(1))?;
        let last_year = t.year() + 1;
        loop {
            if t.year() > last_year {
                return None;
            }
            let date = t.date();
            t = if !has(self.month, t.month()) {
                first_of_next_month(date)?.and_time(NaiveTime::MIN)
            } else if !self.day_matches(date) {
                date.succ_opt()?.and_time(NaiveTime::MIN)
            } else if !has(self.hour, t.hour()) {
                date.and_hms_opt(t.hour(), 0, 0)?
                    .checked_add_signed(TimeDelta::hours(1))?
            } else if !has(self.min, t.minute()) {
                date.and_hms_opt(t.hour(), t.minute(), 0)?
                    .checked_add_signed(TimeDelta::minutes(1))?
            } else if !has(self.sec, t.second()) {
                t.checked_add_signed(TimeDelta::seconds(1))?
            } else {
                let local = tz.from_local_datetime(&t);
                let instants = [local.clone().earliest(), local.latest()];
                if let Some(dt) = instants.into_iter().flatten().find(|dt| dt > after) {
                    return Some(dt);
                }
                t.checked_add_signed(TimeDelta::seconds(1))?
            };
        }
    }

    /// Reports whether `t`, read in its own time zone, matches every field
    /// (the sub-second part is ignored).
    pub fn matches<Tz: TimeZone>(&self, t: &DateTime<Tz>) -> bool {
        local_time(t).is_some_and(|t| {
            has(self.month, t.month())
                && self.day_matches(t.date())
                && has(self.hour, t.hour())
                && has(self.min, t.minute())
                && has(self.sec, t.second())
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = has(self.dom, date.day());
        let dow = has(self.dow, date.weekday().num_days_from_sunday());
        if self.dom == ALL_DOM {
            dow
        } else if self.dow == ALL_DOW {
            dom
        } else {
            dom || dow
        }
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

fn has(mask: u64, value: u32) -> bool {
    value < 64 && mask & (1 << value) != 0
}

/// The wall-clock time of `t` in its time zone, without panicking at the
/// edges of chrono's range.
fn local_time<Tz: TimeZone>(t: &DateTime<Tz>) -> Option<NaiveDateTime> {
    t.naive_utc().checked_add_offset(t.offset().fix())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    match date.month() {
        12 => NaiveDate::from_ymd_opt(date.year() + 1, 1, 1),
        m => NaiveDate::from_ymd_opt(date.year(), m + 1, 1),
    }
}

/// Parses one field into a bitmask; on error returns the bad item and why.
fn parse_field(text: &str, min: u32, max: u32) -> Result<u64, (&str, String)> {
    text.split(',').try_fold(0, |mask, item| {
        parse_item(item, min, max)
            .map(|bits| mask | bits)
            .map_err(|reason| (item, reason))
    })
}

/// Parses one item (`*`, `n`, `n-m`, `*/k`, `n/k` or `n-m/k`) into a bitmask.
fn parse_item(item: &str, min: u32, max: u32) -> Result<u64, String> {
    if item.is_empty() {
        return Err("empty item".to_owned());
    }
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_number(step)?)),
        None => (item, None),
    };
    let (start, end) = if range == "*" {
        (min, max)
    } else if let Some((start, end)) = range.split_once('-') {
        (parse_number(start)?, parse_number(end)?)
    } else {
        let start = parse_number(range)?;
        (start, if step.is_some() { max } else { start })
    };
    if let Some(bad) = [start, end].into_iter().find(|v| !(min..=max).contains(v)) {
        return Err(format!("value {bad} out of range {min}-{max}"));
    }
    if start > end {
        return Err(format!("range start {start} is greater than end {end}"));
    }
    let step = match step {
        Some(0) => return Err("step must be at least 1".to_owned()),
        Some(step) => usize::try_from(step).unwrap_or(usize::MAX),
        None => 1,
    };
    Ok((start..=end).step_by(step).fold(0, |mask, v| mask | 1 << v))
}

/// Parses a plain decimal number; overlong numbers saturate so that they are
/// reported as out of range.
fn parse_number(text: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected a number, got {text:?}"));
    }
    Ok(text.parse().unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests;
