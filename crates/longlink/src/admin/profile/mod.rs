//! A CPU profiler for the admin console, like leaf's `cpuprof start` / `cpuprof stop`.
//!
//! [`Profiler::start`] samples every thread of the process at [`FREQUENCY_HZ`] through
//! `SIGPROF` (the `pprof` crate); [`Profiler::stop`] symbolizes the samples and writes two
//! files under `[admin] profile_dir`, named after the local time the profile stopped:
//!
//! - `cpu-YYYYMMDD-HHMMSS.svg`: a flame graph, for a browser;
//! - `cpu-YYYYMMDD-HHMMSS.pb.gz`: the samples in pprof's `profile.proto` format,
//!   gzip-compressed, for `go tool pprof` or `pprof` (`pprof -http=: cpu-….pb.gz`).
//!
//! One profile runs at a time in the whole process (the sampling signal is process-wide).
//! [`Profiler::stop`] blocks while it resolves symbols (up to a few seconds on a large
//! binary): call it from a blocking thread (`tokio::task::spawn_blocking`), not from an
//! async task.
//!
//! # Memory
//!
//! The first `start` costs about 88 MB that stay for the life of the process: pprof keeps
//! its sample table (4,096 buckets of 4 stacks of up to 128 frames, 4.2 KB each: 66 MiB, in
//! 16.7 KB blocks the allocator rounds up) in a static, and its `stop` replaces the table
//! with a fresh, equally large, empty one instead of freeing it; pprof has no call that
//! drops it. Later profiles reuse it, so the cost does not grow. The rest of what a profile
//! takes is returned: the symbolizer's cache (the binary's debug information, parsed by
//! pprof's warm-up at `start` and by the report at `stop`: about 85 MB of heap and 65 MB of
//! mapped file in the release `longlink-chat`) is freed at both (`clear_symbol_cache`), and
//! the allocator gives freed pages back to the system after its decay time (with jemalloc,
//! only with its background thread, which `longlink-chat` turns on). Measured on the release
//! `longlink-chat` (`scripts/cpuprof-rss.py`): RSS 12 MB before the first `cpuprof start`,
//! 100 MB 30 s after each `cpuprof stop`.

mod pprof_file;

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use pprof::{ProfilerGuard, ProfilerGuardBuilder, Report};
use pprof_file::{encode_pprof, gzip};

/// How often the profiler samples, in samples per second of CPU time (99 Hz, like
/// `perf record -F 99`: not a multiple of common timer periods).
pub(crate) const FREQUENCY_HZ: i32 = 99;

/// Shared libraries the sampler does not unwind from: unwinding through them inside a signal
/// handler can deadlock (the pprof crate's advice).
const BLOCKLIST: &[&str] = &["libc", "libgcc", "pthread", "vdso"];

/// One CPU profile at a time, process-wide.
pub(crate) struct Profiler {
    /// Where [`Profiler::stop`] writes the files (`[admin] profile_dir`).
    dir: PathBuf,
    /// The running profile, if any.
    guard: Mutex<Option<ProfilerGuard<'static>>>,
}

/// The files one profile was written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProfileFiles {
    /// The flame graph (`cpu-….svg`).
    pub(crate) svg: PathBuf,
    /// The gzip-compressed pprof protobuf (`cpu-….pb.gz`).
    pub(crate) pprof: PathBuf,
}

/// Why a profile could not start or stop.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProfileError {
    /// `start` while a profile runs (started here or elsewhere in the process).
    #[error("a CPU profile is already running")]
    AlreadyRunning,
    /// `stop` while no profile runs.
    #[error("no CPU profile is running")]
    NotRunning,
    /// The profile directory or a file in it could not be created or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The sampler failed (setting the timer or the signal handler, building the report).
    #[error("CPU profiler: {0}")]
    Profiler(String),
}

impl Profiler {
    /// A profiler writing under `dir` (`[admin] profile_dir`); nothing runs until
    /// [`start`](Profiler::start), and `dir` is created then.
    pub(crate) fn new(dir: PathBuf) -> Profiler {
        Profiler {
            dir,
            guard: Mutex::new(None),
        }
    }

    /// Starts sampling at [`FREQUENCY_HZ`]; returns a line for the console.
    ///
    /// Creates the profile directory if missing and checks it is writable, so that a bad
    /// directory shows now rather than after the profile.
    ///
    /// # Errors
    ///
    /// [`ProfileError::AlreadyRunning`] if a profile runs, [`ProfileError::Io`] if the
    /// directory is unusable, [`ProfileError::Profiler`] if sampling cannot start.
    pub(crate) fn start(&self) -> Result<String, ProfileError> {
        let mut state = self.lock();
        if state.is_some() {
            return Err(ProfileError::AlreadyRunning);
        }
        check_dir(&self.dir)?;
        let guard = ProfilerGuardBuilder::default()
            .frequency(FREQUENCY_HZ)
            .blocklist(BLOCKLIST)
            .build()
            .map_err(|error| match error {
                pprof::Error::Running => ProfileError::AlreadyRunning,
                other => ProfileError::Profiler(other.to_string()),
            })?;
        // Building the guard resolved one backtrace to warm pprof up, which parsed this
        // binary's debug information into the symbolizer's cache; sampling does not use it.
        backtrace::clear_symbol_cache();
        *state = Some(guard);
        Ok(format!(
            "profiling at {FREQUENCY_HZ} Hz; stop writes the profile under {}",
            self.dir.display()
        ))
    }

    /// Stops sampling and writes a flame graph SVG and a gzip-compressed pprof protobuf
    /// under the profile directory, named after the current local time; returns both paths.
    ///
    /// Blocks while it resolves symbols: call it from a blocking thread.
    ///
    /// # Errors
    ///
    /// [`ProfileError::NotRunning`] if no profile runs, [`ProfileError::Profiler`] if the
    /// report cannot be built, [`ProfileError::Io`] if a file cannot be written. Sampling
    /// has stopped in every case but `NotRunning`.
    pub(crate) fn stop(&self) -> Result<ProfileFiles, ProfileError> {
        // Out of the lock: resolving symbols takes a while, and `is_running` should not wait.
        let guard = self.lock().take().ok_or(ProfileError::NotRunning)?;
        let report = guard.report().build();
        // Dropping the guard stops the timer and removes the samples.
        drop(guard);
        // The report holds its symbols; the cache that resolved them is not needed again.
        backtrace::clear_symbol_cache();
        let report = report.map_err(|error| ProfileError::Profiler(error.to_string()))?;

        let svg = flame_graph(&report)?;
        let pprof = gzip(&encode_pprof(&report)).map_err(|source| ProfileError::Io {
            path: self.dir.clone(),
            source,
        })?;

        fs::create_dir_all(&self.dir).map_err(|source| ProfileError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
        let files = free_names(&self.dir, &stamp);
        write_new(&files.svg, &svg)?;
        write_new(&files.pprof, &pprof)?;
        Ok(files)
    }

    /// Whether a profile runs (started through this profiler).
    pub(crate) fn is_running(&self) -> bool {
        self.lock().is_some()
    }

    /// The state; a panic elsewhere while holding it leaves it usable.
    fn lock(&self) -> MutexGuard<'_, Option<ProfilerGuard<'static>>> {
        self.guard.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiler")
            .field("dir", &self.dir)
            .field("running", &self.is_running())
            .finish()
    }
}

/// Creates `dir` if missing and checks a file can be created in it.
fn check_dir(dir: &Path) -> Result<(), ProfileError> {
    let io_error = |source| ProfileError::Io {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(io_error)?;
    let probe = dir.join(format!(".cpuprof-probe-{}", std::process::id()));
    let created = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe);
    let result = created.map(drop).map_err(io_error);
    let _ = fs::remove_file(&probe);
    result
}

/// `cpu-<stamp>.svg` and `cpu-<stamp>.pb.gz`, or with `-2`, `-3`, … after the stamp when a
/// profile of the same second exists.
fn free_names(dir: &Path, stamp: &str) -> ProfileFiles {
    let mut n = 1u32;
    loop {
        let stem = if n == 1 {
            format!("cpu-{stamp}")
        } else {
            format!("cpu-{stamp}-{n}")
        };
        let files = ProfileFiles {
            svg: dir.join(format!("{stem}.svg")),
            pprof: dir.join(format!("{stem}.pb.gz")),
        };
        if !files.svg.exists() && !files.pprof.exists() {
            return files;
        }
        n += 1;
    }
}

/// Writes `bytes` to a new file at `path` (never over an existing one).
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), ProfileError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .map_err(|source| ProfileError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The flame graph of `report` as SVG; a placeholder SVG when there was no sample (an idle
/// process), so that the file is always a valid image.
fn flame_graph(report: &Report) -> Result<Vec<u8>, ProfileError> {
    if report.data.is_empty() {
        return Ok(concat!(
            r#"<?xml version="1.0" standalone="no"?>"#,
            "\n",
            r#"<svg version="1.1" width="400" height="60" xmlns="http://www.w3.org/2000/svg">"#,
            r#"<text x="10" y="35">no CPU samples: the process was idle</text></svg>"#,
            "\n"
        )
        .as_bytes()
        .to_vec());
    }
    let mut options = pprof::flamegraph::Options::default();
    options.title = "longlink CPU profile".to_owned();
    let mut svg = Vec::new();
    report
        .flamegraph_with_options(&mut svg, &mut options)
        .map_err(|error| ProfileError::Profiler(error.to_string()))?;
    Ok(svg)
}

#[cfg(test)]
mod tests;
