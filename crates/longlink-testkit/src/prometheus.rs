//! `/metrics` seen from outside: Prometheus text, every line checked.
//!
//! The metrics recorder is process-wide and tests run in parallel: compare a scrape with an
//! earlier one ([`delta`]) rather than with fixed numbers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::STEP;

/// One scrape: `name{labels}` (as written) to its value.
pub type Metrics = HashMap<String, f64>;

/// Parses Prometheus text, asserting that every line is well formed (names, labels, `TYPE`
/// lines, values).
pub fn parse(text: &str) -> Metrics {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let parts: Vec<&str> = rest.split(' ').collect();
            assert_eq!(parts.len(), 2, "bad TYPE line: {line}");
            assert!(valid_name(parts[0]), "bad metric name: {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&parts[1]),
                "bad type: {line}"
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "bad metric name in {line:?}");
        let labels = &series[name.len()..];
        if !labels.is_empty() {
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "bad labels in {line:?}"
            );
            for pair in labels[1..labels.len() - 1].split(',') {
                let (k, v) = pair.split_once('=').expect("label=value");
                assert!(valid_name(k), "bad label name in {line:?}");
                assert!(
                    v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                    "bad label value in {line:?}"
                );
            }
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        out.insert(series.to_owned(), value);
    }
    out
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `GET /metrics` on `addr`: asserts a `200` and parses the body.
pub async fn scrape(addr: SocketAddr) -> Metrics {
    let reply = crate::http::http_get(addr, "/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    parse(&reply.body)
}

/// The value of one series (`name{labels}` as written), 0 if absent.
pub fn value(m: &Metrics, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

/// How much `series` moved from `before` to `after`.
pub fn delta(before: &Metrics, after: &Metrics, series: &str) -> f64 {
    value(after, series) - value(before, series)
}

/// The sum of metric `name` over all its label sets.
pub fn sum(m: &Metrics, name: &str) -> f64 {
    m.iter()
        .filter(|(series, _)| series.split('{').next() == Some(name))
        .map(|(_, v)| v)
        .sum()
}

/// Scrapes until `done` holds (metrics recorded just after a reply was sent may lag it a
/// little), for at most [`STEP`]; panics naming `what` otherwise.
pub async fn scrape_until(
    addr: SocketAddr,
    what: &str,
    done: impl Fn(&Metrics) -> bool,
) -> Metrics {
    let deadline = Instant::now() + STEP;
    loop {
        let now = scrape(addr).await;
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "{what}: metrics did not move");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counters_histograms_and_sums() {
        let m = parse(
            "# TYPE a_total counter\na_total{x=\"1\"} 2\na_total{x=\"2\"} 3\n\
             # HELP h help\nh_bucket{le=\"+Inf\"} 4\nh_sum -Inf\n",
        );
        assert_eq!(value(&m, "a_total{x=\"1\"}"), 2.0);
        assert_eq!(sum(&m, "a_total"), 5.0);
        assert_eq!(value(&m, "h_bucket{le=\"+Inf\"}"), 4.0);
        assert_eq!(value(&m, "h_sum"), f64::NEG_INFINITY);
        assert_eq!(value(&m, "missing"), 0.0);
        let later = parse("a_total{x=\"1\"} 7\n");
        assert_eq!(delta(&m, &later, "a_total{x=\"1\"}"), 5.0);
    }

    #[test]
    #[should_panic(expected = "bad labels")]
    fn refuses_bad_labels() {
        parse("a{x=\"1\" 2\n");
    }
}
