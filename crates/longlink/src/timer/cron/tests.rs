//! Cron parsing and scheduling, checked against hand-computed times.
use super::*;
use chrono::{FixedOffset, LocalResult, NaiveDate, NaiveTime, TimeDelta, Utc};

fn cron(expr: &str) -> CronExpr {
    CronExpr::parse(expr).unwrap()
}

/// Parses a UTC time written as `YYYY-MM-DD HH:MM:SS`.
fn at(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(s, "%F %T").unwrap().and_utc()
}

/// Splits a table row into its `|`-separated, trimmed columns.
fn columns<const N: usize>(row: &str) -> [&str; N] {
    let cols: Vec<&str> = row.split('|').map(str::trim).collect();
    cols.try_into().unwrap()
}

/// Checks rows `expr | after | t1, t2, ...`: the successive matches
/// after `after`, in UTC; `-` stands for `None`.
fn check_next(rows: &[&str]) {
    for row in rows {
        let [expr, after, want] = columns(row);
        let (expr, mut t) = (cron(expr), Some(at(after)));
        for want in want.split(',').map(str::trim) {
            t = expr.next(&t.unwrap());
            assert_eq!(t, (want != "-").then(|| at(want)), "{row}");
        }
    }
}

/// Checks rows `expr | field | item | part of the reason` against the
/// error message.
fn check_invalid(rows: &[&str]) {
    for row in rows {
        let [expr, field, item, reason] = columns(row);
        let msg = CronExpr::parse(expr).unwrap_err().to_string();
        let head = format!("invalid cron expression {expr:?}: {field} field, item {item:?}: ");
        assert!(
            msg.starts_with(&head) && msg.contains(reason),
            "{row}: {msg}"
        );
    }
}

#[test]
fn parses_steps_lists_and_ranges() {
    check_next(&[
        "* * * * * * | 2024-02-29 23:59:59 | 2024-03-01 00:00:00, 2024-03-01 00:00:01",
        "*/100 * * * *  | 2024-01-01 00:00:00 | 2024-01-01 01:00:00, 2024-01-01 02:00:00",
        "0 59 23 31 12 6 | 2024-12-28 23:59:00 | 2024-12-31 23:59:00, 2025-12-06 23:59:00",
        // Seconds 1,3,4,5; minutes 0,20,40; hours 10,15,20; days 1,4,7,10 or Sundays; February.
        "  1,3-5  */20 10/5 1-10/3 2,2 0  | 2024-01-01 00:00:00 | \
         2024-02-01 10:00:01, 2024-02-01 10:00:03, 2024-02-01 10:00:04, \
         2024-02-01 10:00:05, 2024-02-01 10:20:01",
        "  1,3-5  */20 10/5 1-10/3 2,2 0  | 2024-02-01 20:40:05 | 2024-02-04 10:00:01",
        // With five fields, seconds is 0 and the others shift right.
        "5 4 3 2 1   | 2024-01-01 00:00:00 | 2024-02-03 04:05:00, 2024-02-05 04:05:00",
        "0 5 4 3 2 1 | 2024-01-01 00:00:00 | 2024-02-03 04:05:00, 2024-02-05 04:05:00",
    ]);
    let e = cron("  1,3-5  */20 10/5 1-10/3 2,2 0  ");
    assert!(e.matches(&at("2024-02-04 20:40:05")));
    assert!(e.matches(&at("2024-02-11 15:20:03")), "a Sunday");
    assert!(
        !e.matches(&at("2024-02-13 10:00:01")),
        "a Tuesday, not day 1-10/3"
    );
    assert!(!e.matches(&at("2024-02-10 10:00:02")));
    assert!(!e.matches(&at("2024-02-10 10:01:01")));
    assert!(!e.matches(&at("2024-02-10 11:00:01")));
    assert!(!e.matches(&at("2025-03-01 10:00:01")));
}

#[test]
fn rejects_wrong_field_count() {
    for (expr, count) in [("", 0), ("   ", 0), ("* * * *", 4), ("* * * * * * *", 7)] {
        let err = CronExpr::parse(expr).unwrap_err();
        assert!(matches!(&err, CronError::FieldCount { count: c, .. } if *c == count));
        assert!(err.to_string().contains(&format!("got {count}")), "{err}");
    }
}

#[test]
fn rejects_out_of_range_values() {
    check_invalid(&[
        "60 * * * * *        | second       | 60          | value 60 out of range 0-59",
        "60 * * * *          | minute       | 60          | out of range 0-59",
        "* 24 * * *          | hour         | 24          | out of range 0-23",
        "* * 0 * *           | day-of-month | 0           | out of range 1-31",
        "* * 32 * *          | day-of-month | 32          | out of range 1-31",
        "* * * 0 *           | month        | 0           | out of range 1-12",
        "* * * 13 *          | month        | 13          | out of range 1-12",
        "* * * * 1,1-8       | day-of-week  | 1-8         | value 8 out of range 0-7",
        "99999999999 * * * * | minute       | 99999999999 | out of range",
        "60/5 * * * *        | minute       | 60/5        | out of range",
    ]);
    let msg = CronExpr::parse("* 60 * * *").unwrap_err().to_string();
    let want = r#"invalid cron expression "* 60 * * *": hour field, item "60": "#;
    assert_eq!(msg, format!("{want}value 60 out of range 0-23"));
}

#[test]
fn rejects_malformed_items() {
    check_invalid(&[
        "5-3 * * * *     | minute      | 5-3   | Range out of bounds",
        "*/0 * * * *     | minute      | */0   | Step cannot be zero",
        "0 1-5/0 * * *   | hour        | 1-5/0 | Step cannot be zero",
        "1,,2 * * * *    | minute      |       | empty item",
        "* * * 1, *      | month       |       | empty item",
        "x * * * *       | minute      | x     | expected a number, got \"x\"",
        "JAN * * * * *   | second      | JAN   | expected a number",
        "* * * MON *     | month       | MON   | unknown name \"MON\"",
        "* * * * JAN     | day-of-week | JAN   | unknown name \"JAN\"",
        "* * * * 1,MONDAY | day-of-week | MONDAY | unknown name",
        "* * W * *       | day-of-month | W    | ",
        "@daily * * * *  | minute      | @daily | ",
    ]);
    let junk = "1#2 *-5 1-2-3 1/2/3 1/* -1 +1 /5 5/ 5- 1.5 0x1 ٣ 1L L5 W15";
    for item in junk.split(' ') {
        check_invalid(&[&format!("* * {item} * * | day-of-month | {item} | ")]);
    }
}

#[test]
fn names_and_croner_extensions() {
    // 2024-01-01 and 2024-09-02 are Mondays, 2024-06-15 a Saturday, 2024-09-15 a Sunday.
    check_next(&[
        "0 0 12 * JAN MON | 2024-01-01 00:00:00 | 2024-01-01 12:00:00, 2024-01-08 12:00:00",
        "0 0 12 * JAN MON | 2024-01-29 12:00:00 | 2025-01-06 12:00:00",
        "0 0 12 * jan mon | 2024-01-01 00:00:00 | 2024-01-01 12:00:00, 2024-01-08 12:00:00",
        "0 0 0 * * MON-SUN | 2024-09-01 00:00:00 | 2024-09-02 00:00:00, 2024-09-03 00:00:00",
        "0 0 0 L * *      | 2024-01-15 00:00:00 | 2024-01-31 00:00:00, 2024-02-29 00:00:00, \
                                                  2024-03-31 00:00:00, 2024-04-30 00:00:00",
        "0 0 0 ? * 1      | 2024-09-01 00:00:00 | 2024-09-02 00:00:00, 2024-09-09 00:00:00",
        "0 0 0 15W * *    | 2024-06-01 00:00:00 | 2024-06-14 00:00:00, 2024-07-15 00:00:00, \
                                                  2024-08-15 00:00:00, 2024-09-16 00:00:00",
        "0 0 0 * * 1#2    | 2024-09-01 00:00:00 | 2024-09-09 00:00:00, 2024-10-14 00:00:00",
        "0 0 0 * * 5L     | 2024-09-01 00:00:00 | 2024-09-27 00:00:00, 2024-10-25 00:00:00",
        // A `+` before the day of the week: both day fields must match (Friday the 13th).
        "0 0 12 13 * +5   | 2024-09-01 00:00:00 | 2024-09-13 12:00:00, 2024-12-13 12:00:00",
        // leaf's `n/k` in the day of the week ends at Saturday, not at 7 (Sunday).
        "0 0 0 * * 1/2    | 2024-09-01 00:00:00 | 2024-09-02 00:00:00, 2024-09-04 00:00:00, \
                                                  2024-09-06 00:00:00, 2024-09-09 00:00:00",
    ]);
    // 7 is Sunday, the same as 0.
    let (seven, zero) = (cron("0 0 0 * * 7"), cron("0 0 0 * * 0"));
    let sunday = at("2024-09-01 00:00:00");
    assert_eq!(seven.next(&sunday), Some(at("2024-09-08 00:00:00")));
    assert_eq!(seven.next(&sunday), zero.next(&sunday));
    assert!(seven.matches(&sunday) && zero.matches(&sunday));
    assert!(!seven.matches(&at("2024-09-02 00:00:00")));
}

#[test]
fn from_str_and_display() {
    let e: CronExpr = " */5  * * * * * ".parse().unwrap();
    assert_eq!(e.to_string(), " */5  * * * * * ");
    assert!("* * *".parse::<CronExpr>().is_err());
}

#[test]
fn golden_hourly() {
    check_next(&["0 * * * * | 2000-01-01 20:10:05 | 2000-01-01 21:00:00"]);
}

#[test]
fn next_is_strictly_after() {
    check_next(&[
        "*/5 * * * * * | 2024-01-01 10:00:03 | 2024-01-01 10:00:05, 2024-01-01 10:00:10",
        "0 0 10 * * *  | 2024-01-01 10:00:00 | 2024-01-02 10:00:00",
    ]);
    let frac = at("2024-01-01 10:00:04") + TimeDelta::milliseconds(999);
    assert_eq!(
        cron("* * * * * *").next(&frac),
        Some(at("2024-01-01 10:00:05"))
    );
}

#[test]
fn steps_lists_ranges_and_rollover() {
    check_next(&[
        "0 10-40/15 * * * * | 2024-01-01 00:00:00 | 2024-01-01 00:10:00, 2024-01-01 00:25:00",
        "0 10-40/15 * * * * | 2024-01-01 00:25:00 | 2024-01-01 00:40:00, 2024-01-01 01:10:00",
        "30 0 8,12-13 * * * | 2024-01-01 00:00:00 | 2024-01-01 08:00:30, 2024-01-01 12:00:30",
        "30 0 8,12-13 * * * | 2024-01-01 12:00:30 | 2024-01-01 13:00:30, 2024-01-02 08:00:30",
        "0 0 0 1 */6 *      | 2024-01-01 00:00:00 | 2024-07-01 00:00:00, 2025-01-01 00:00:00",
        "59 59 23 31 12 *   | 2023-06-01 00:00:00 | 2023-12-31 23:59:59",
        "0 0 0 1 1 *        | 2023-12-31 23:59:59 | 2024-01-01 00:00:00",
        "0 0 * * * *        | 2024-02-29 23:00:00 | 2024-03-01 00:00:00",
    ]);
}

#[test]
fn day_of_month_or_day_of_week() {
    // 2024-09-01 is a Sunday, 09-13 a Friday, 10-13 a Sunday.
    check_next(&[
        "0 0 12 13 * 5 | 2024-09-01 00:00:00 | 2024-09-06 12:00:00, 2024-09-13 12:00:00",
        "0 0 12 13 * 5 | 2024-09-13 12:00:00 | 2024-09-20 12:00:00, 2024-09-27 12:00:00",
        "0 0 12 13 * 5 | 2024-10-11 12:00:00 | 2024-10-13 12:00:00, 2024-10-18 12:00:00",
        "0 0 12 13 * * | 2024-09-01 00:00:00 | 2024-09-13 12:00:00, 2024-10-13 12:00:00",
        "0 0 12 * * 5  | 2024-09-01 00:00:00 | 2024-09-06 12:00:00, 2024-09-13 12:00:00",
        "0 0 0 * * 0   | 2024-09-01 00:00:00 | 2024-09-08 00:00:00",
    ]);
}

#[test]
fn leap_days_and_impossible_dates() {
    check_next(&[
        "0 0 0 29 2 *        | 2001-03-01 00:00:00 | 2004-02-29 00:00:00",
        "0 0 0 29 2 *        | 2002-03-01 00:00:00 | 2004-02-29 00:00:00",
        "0 0 0 29 2 *        | 2003-03-01 00:00:00 | 2004-02-29 00:00:00, 2008-02-29 00:00:00",
        "0 0 0 29 2 *        | 2096-03-01 00:00:00 | 2104-02-29 00:00:00",
        "0 0 0 30 2 *        | 2024-01-01 00:00:00 | -",
        "0 0 0 31 2 *        | 2024-01-01 00:00:00 | -",
        "0 0 0 31 4,6,9,11 * | 2024-01-01 00:00:00 | -",
    ]);
}

#[test]
fn extremes_do_not_panic() {
    let every = cron("* * * * * *");
    let max = DateTime::<Utc>::MAX_UTC;
    let far_east = max.with_timezone(&FixedOffset::east_opt(50_000).unwrap());
    assert_eq!(every.next(&max), None);
    assert_eq!(every.next(&far_east), None);
    assert!(!every.matches(&far_east));
    assert!(every.next(&DateTime::<Utc>::MIN_UTC).is_some());
}

#[test]
fn searches_in_the_time_zone_of_after() {
    let tz = FixedOffset::east_opt(8 * 3600).unwrap();
    let next = cron("0 0 9 * * *").next(&at("2024-01-01 00:00:00").with_timezone(&tz));
    assert_eq!(next, Some(at("2024-01-01 01:00:00").with_timezone(&tz)));
    assert_eq!(next.unwrap().offset(), &tz);
}

#[test]
fn matches_checks_every_field() {
    let e = cron("30 15 10 13 * 5");
    assert!(e.matches(&at("2024-09-13 10:15:30")));
    assert!(e.matches(&at("2024-09-20 10:15:30")));
    assert!(!e.matches(&at("2024-09-19 10:15:30")));
    assert!(!e.matches(&at("2024-09-13 10:15:31")));
    assert!(!e.matches(&at("2024-09-13 11:15:30")));
}

/// Central European time in 2024 only: UTC+2 from 03-31 01:00 UTC until
/// 10-27 01:00 UTC, UTC+1 otherwise.
#[derive(Clone, Copy, Debug)]
struct Cet2024;

fn hours(h: i32) -> FixedOffset {
    FixedOffset::east_opt(h * 3600).unwrap()
}

impl TimeZone for Cet2024 {
    type Offset = FixedOffset;

    fn from_offset(_: &FixedOffset) -> Self {
        Cet2024
    }
    fn offset_from_local_date(&self, d: &NaiveDate) -> LocalResult<FixedOffset> {
        self.offset_from_local_datetime(&d.and_time(NaiveTime::MIN))
    }
    fn offset_from_local_datetime(&self, t: &NaiveDateTime) -> LocalResult<FixedOffset> {
        let utc = |h: i32| *t - TimeDelta::hours(h.into());
        let fits = |h| self.offset_from_utc_datetime(&utc(h)) == hours(h);
        match (fits(2), fits(1)) {
            (true, true) => LocalResult::Ambiguous(hours(2), hours(1)),
            (true, false) => LocalResult::Single(hours(2)),
            (false, true) => LocalResult::Single(hours(1)),
            (false, false) => LocalResult::None,
        }
    }
    fn offset_from_utc_date(&self, d: &NaiveDate) -> FixedOffset {
        self.offset_from_utc_datetime(&d.and_time(NaiveTime::MIN))
    }
    fn offset_from_utc_datetime(&self, t: &NaiveDateTime) -> FixedOffset {
        let summer = at("2024-03-31 01:00:00")..at("2024-10-27 01:00:00");
        hours(if summer.contains(&t.and_utc()) { 2 } else { 1 })
    }
}

/// A local `YYYY-MM-DD HH:MM:SS` time in [`Cet2024`] with the given offset.
fn cet(local: &str, offset: i64) -> DateTime<Cet2024> {
    Cet2024.from_utc_datetime(&(at(local).naive_utc() - TimeDelta::hours(offset)))
}

#[test]
fn dst_gap_is_skipped() {
    // 2024-03-31 02:00-02:59 local does not exist.
    let daily = cron("0 30 2 * * *").next(&cet("2024-03-31 00:00:00", 1));
    assert_eq!(daily, Some(cet("2024-04-01 02:30:00", 2)));
    let minutely = cron("0 * * * * *").next(&cet("2024-03-31 01:59:00", 1));
    assert_eq!(minutely, Some(cet("2024-03-31 03:00:00", 2)));
}

#[test]
fn dst_overlap_takes_earliest_once() {
    // 2024-10-27 02:00-02:59 local happens twice, first at UTC+2.
    let daily = cron("0 30 2 * * *");
    let first = daily.next(&cet("2024-10-27 00:00:00", 2)).unwrap();
    assert_eq!(first, cet("2024-10-27 02:30:00", 2));
    assert_eq!(daily.next(&first), Some(cet("2024-10-28 02:30:00", 1)));
    // Starting during the second pass, only later instants qualify.
    let second = cet("2024-10-27 02:40:00", 1);
    assert_eq!(daily.next(&second), Some(cet("2024-10-28 02:30:00", 1)));
    let later = cron("0 45 2 * * *").next(&second);
    assert_eq!(later, Some(cet("2024-10-27 02:45:00", 1)));
}
