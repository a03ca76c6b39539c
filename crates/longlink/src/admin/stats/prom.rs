//! The figures of `/metrics`, read back from its Prometheus text: what the live page shows is
//! what a scrape would show, from one source.

/// One sample line: its name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

impl Line {
    /// The value of label `key`, if the line has it.
    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample line of a Prometheus text (comments and lines that do not parse are left out).
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) lines: Vec<Line>,
}

impl Snapshot {
    pub(crate) fn parse(text: &str) -> Snapshot {
        let lines = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(parse_line)
            .collect();
        Snapshot { lines }
    }

    /// The lines named `name`.
    pub(crate) fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Line> + 'a {
        self.lines.iter().filter(move |l| l.name == name)
    }

    /// The sum of every series named `name`.
    pub(crate) fn sum(&self, name: &str) -> f64 {
        self.named(name).map(|l| l.value).sum()
    }

    /// The value of `name` whose label `key` is `value` (0 when absent).
    pub(crate) fn with(&self, name: &str, key: &str, value: &str) -> f64 {
        self.named(name)
            .filter(|l| l.label(key) == Some(value))
            .map(|l| l.value)
            .sum()
    }

    /// The values of `name` by its label `key`, in the order they appear.
    pub(crate) fn by(&self, name: &str, key: &str) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = Vec::new();
        for line in self.named(name) {
            let Some(v) = line.label(key) else { continue };
            match out.iter_mut().find(|(k, _)| k == v) {
                Some((_, total)) => *total += line.value,
                None => out.push((v.to_owned(), line.value)),
            }
        }
        out
    }

    /// A histogram's cumulative bucket counts `(le, count)`, ascending, summed over every
    /// series of `name` whose label `key` is `value` (every series when `filter` is `None`).
    pub(crate) fn buckets(&self, name: &str, filter: Option<(&str, &str)>) -> Vec<(f64, f64)> {
        let bucket = format!("{name}_bucket");
        let mut out: Vec<(f64, f64)> = Vec::new();
        for line in self.named(&bucket) {
            if let Some((k, v)) = filter
                && line.label(k) != Some(v)
            {
                continue;
            }
            let Some(le) = line.label("le").and_then(parse_value) else {
                continue;
            };
            match out.iter_mut().find(|(b, _)| *b == le) {
                Some((_, count)) => *count += line.value,
                None => out.push((le, line.value)),
            }
        }
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }
}

/// The `q` quantile (0..1) of cumulative buckets, interpolated within its bucket as
/// Prometheus's `histogram_quantile` does; `None` without observations. A quantile in the
/// last (`+Inf`) bucket is the highest finite bound.
pub(crate) fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(below.0);
            }
            let in_bucket = count - below.1;
            let share = if in_bucket > 0.0 {
                (rank - below.1) / in_bucket
            } else {
                1.0
            };
            return Some(below.0 + (le - below.0) * share);
        }
        below = (le, count);
    }
    Some(below.0)
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// `name{k="v",...} value` or `name value`.
fn parse_line(line: &str) -> Option<Line> {
    let (series, value) = line.trim().rsplit_once(' ')?;
    let value = parse_value(value)?;
    let Some((name, rest)) = series.split_once('{') else {
        return Some(Line {
            name: series.to_owned(),
            labels: Vec::new(),
            value,
        });
    };
    let body = rest.strip_suffix('}')?;
    Some(Line {
        name: name.to_owned(),
        labels: parse_labels(body)?,
        value,
    })
}

/// `k="v",k2="v\"2"`: values unescaped (`\\`, `\"`, `\n`).
fn parse_labels(body: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek() == Some(&',') || chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(labels);
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        labels.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_labels_and_sums() {
        let text = "# HELP x y\nlonglink_connections_open{transport=\"tcp\"} 3\n\
                    longlink_connections_open{transport=\"ws\"} 2\n\
                    odd{msg=\"q\\\"uote\",le=\"0.5\"} 1\nplain 7\n";
        let s = Snapshot::parse(text);
        assert_eq!(s.sum("longlink_connections_open"), 5.0);
        assert_eq!(s.with("longlink_connections_open", "transport", "ws"), 2.0);
        assert_eq!(s.sum("plain"), 7.0);
        assert_eq!(s.named("odd").next().unwrap().label("msg"), Some("q\"uote"));
    }

    #[test]
    fn buckets_add_up_across_series_and_give_quantiles() {
        let text = "h_bucket{msg=\"a\",le=\"0.001\"} 50\nh_bucket{msg=\"a\",le=\"0.01\"} 100\n\
                    h_bucket{msg=\"a\",le=\"+Inf\"} 100\nh_bucket{msg=\"b\",le=\"0.001\"} 0\n\
                    h_bucket{msg=\"b\",le=\"0.01\"} 0\nh_bucket{msg=\"b\",le=\"+Inf\"} 100\n";
        let s = Snapshot::parse(text);
        let all = s.buckets("h", None);
        assert_eq!(
            all,
            vec![(0.001, 50.0), (0.01, 100.0), (f64::INFINITY, 200.0)]
        );
        assert_eq!(quantile(0.125, &all), Some(0.0005));
        assert!((quantile(0.5, &all).unwrap() - 0.01).abs() < 1e-12);
        assert_eq!(
            quantile(0.99, &all),
            Some(0.01),
            "in +Inf: the highest bound"
        );
        let a = s.buckets("h", Some(("msg", "a")));
        assert!((quantile(0.75, &a).unwrap() - 0.0055).abs() < 1e-12);
        assert_eq!(quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]), None);
    }
}
