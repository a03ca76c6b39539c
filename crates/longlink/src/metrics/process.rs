//! The process series every Prometheus dashboard expects, read when `/metrics` is rendered:
//!
//! | name | type | from (Linux) |
//! |---|---|---|
//! | `process_cpu_seconds_total` | counter | user + system time, `/proc/self/stat` |
//! | `process_resident_memory_bytes` | gauge | resident pages, `/proc/self/statm` |
//! | `process_open_fds` | gauge | the entries of `/proc/self/fd` |
//! | `process_max_fds` | gauge | the soft `RLIMIT_NOFILE`, `/proc/self/limits` |
//! | `process_start_time_seconds` | gauge | the start, in seconds since the Unix epoch (`/proc/self/stat` and the boot time of `/proc/stat`) |
//! | `longlink_build_info` | gauge (always 1) | `version` = longlink's version; on every platform |
//!
//! Elsewhere than Linux the `process_*` series are absent (not zero): a dashboard shows
//! "no data" rather than a wrong figure. A file that cannot be read leaves out its series.

use std::fmt::Write;

/// Gauge (always 1): longlink's version, as the label `version`.
pub const BUILD_INFO: &str = "longlink_build_info";

/// Appends the process series and `longlink_build_info` in the Prometheus text format.
pub(crate) fn render(out: &mut String) {
    #[cfg(target_os = "linux")]
    linux::render(out);
    let _ = write!(
        out,
        "# HELP {BUILD_INFO} longlink's version\n# TYPE {BUILD_INFO} gauge\n\
         {BUILD_INFO}{{version=\"{}\"}} 1\n\n",
        env!("CARGO_PKG_VERSION")
    );
}

/// Writes one series with its help and type.
fn series(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n\n"
    );
}

#[cfg(target_os = "linux")]
mod linux {
    use super::series;

    /// The kernel's clock tick, in which `/proc/self/stat` counts CPU time and the start.
    fn ticks_per_sec() -> f64 {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks > 0 { ticks as f64 } else { 100.0 }
    }

    fn page_size() -> f64 {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 { size as f64 } else { 4096.0 }
    }

    /// The fields of `/proc/self/stat` after the command name (which may hold spaces and
    /// parentheses: it ends at the last `)`). The first is field 3, `state`.
    fn stat_fields(stat: &str) -> Option<Vec<&str>> {
        let rest = &stat[stat.rfind(')')? + 1..];
        Some(rest.split_whitespace().collect())
    }

    /// (CPU seconds, start in seconds since boot) from `/proc/self/stat`'s text.
    pub(super) fn cpu_and_start(stat: &str, ticks: f64) -> Option<(f64, f64)> {
        let fields = stat_fields(stat)?;
        // utime, stime, starttime: fields 14, 15 and 22 (1-based), 11, 12 and 19 here.
        let field = |n: usize| fields.get(n)?.parse::<f64>().ok();
        Some(((field(11)? + field(12)?) / ticks, field(19)? / ticks))
    }

    /// The soft limit on open files from `/proc/self/limits`' text.
    pub(super) fn max_fds(limits: &str) -> Option<f64> {
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let soft = line
            .trim_start_matches("Max open files")
            .split_whitespace()
            .next()?;
        soft.parse().ok()
    }

    /// The boot time, in seconds since the epoch, from `/proc/stat`'s text.
    pub(super) fn boot_time(stat: &str) -> Option<f64> {
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()
    }

    pub(super) fn render(out: &mut String) {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let stat = read("/proc/self/stat");
        let times = stat
            .as_deref()
            .and_then(|s| cpu_and_start(s, ticks_per_sec()));
        if let Some((cpu, _)) = times {
            series(
                out,
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                cpu,
            );
        }
        let resident = read("/proc/self/statm").and_then(|s| {
            let pages: f64 = s.split_whitespace().nth(1)?.parse().ok()?;
            Some(pages * page_size())
        });
        if let Some(bytes) = resident {
            series(
                out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                bytes,
            );
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The directory's own descriptor, open while it is listed, is not counted.
            let open = dir.count().saturating_sub(1);
            series(
                out,
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                open as f64,
            );
        }
        if let Some(max) = read("/proc/self/limits").as_deref().and_then(max_fds) {
            series(
                out,
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                max,
            );
        }
        let boot = read("/proc/stat").as_deref().and_then(boot_time);
        if let (Some((_, since_boot)), Some(boot)) = (times, boot) {
            series(
                out,
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                boot + since_boot,
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::linux::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        // A command name with a space and a parenthesis in it.
        let stat = "1234 (we ird) prog) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 4 0 5000 999 111";
        assert_eq!(cpu_and_start(stat, 100.0), Some((4.0, 50.0)));
        assert_eq!(cpu_and_start("garbage", 100.0), None);
    }

    #[test]
    fn limits_and_boot_time_parse() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            20000                524288               files     \n";
        assert_eq!(max_fds(limits), Some(20000.0));
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1.7e9)
        );
    }
}
