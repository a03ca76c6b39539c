//! The heap profile, like leaf's `prof` (feature `heap-profiler`): what holds memory in a
//! running server, from jemalloc's own sampling profiler, in pprof's format.
//!
//! It needs the application's global allocator to be tikv-jemallocator built with its
//! `profiling` feature, started with profiling enabled but idle (`malloc_conf`
//! `prof:true,prof_active:false`, as `longlink-chat` does): while idle the profiler costs
//! nothing but a flag test per allocation. Sampling runs only between `start` and `stop`, and
//! a profile shows the memory still held that was allocated while it ran (one allocation
//! sampled every 512 KiB on average, jemalloc's `lg_prof_sample` 19). To see everything held
//! since start-up, start the process with sampling on (`_RJEM_MALLOC_CONF=prof_active:true`).
//!
//! - Console: `prof heap start`, `prof heap` (writes `heap-YYYYMMDD-HHMMSS.pb.gz` under
//!   `[admin] profile_dir`), `prof heap stop`.
//! - HTTP, behind the API key: `POST /debug/pprof/heap/start`, `GET /debug/pprof/heap` (the
//!   gzip-compressed pprof protobuf), `POST /debug/pprof/heap/stop`.
//!
//! Read it with `pprof -http=: <binary> heap.pb.gz` (or `go tool pprof`): the profile holds
//! addresses and the mappings of the binary (with its build id), symbolized from the binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jemalloc_pprof::JemallocProfCtl;
use tokio::sync::Mutex;

use super::api::ApiError;

/// Why a heap profile cannot be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeapError {
    /// jemalloc is not built with profiling, or is not the allocator in use.
    #[error(
        "jemalloc's heap profiler is not available: the global allocator must be \
         tikv-jemallocator with its `profiling` feature"
    )]
    Unavailable,
    /// Built with profiling, started without it (`prof:false`).
    #[error(
        "heap profiling is off: start the process with malloc_conf prof:true,prof_active:false"
    )]
    Disabled,
    /// `dump` while sampling is off.
    #[error(
        "heap sampling is not running: `prof heap start` (or POST /debug/pprof/heap/start) first"
    )]
    Inactive,
    /// jemalloc refused, or the dump did not convert.
    #[error("heap profile: {0}")]
    Failed(String),
    /// The profile could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl From<HeapError> for ApiError {
    fn from(e: HeapError) -> ApiError {
        let (status, code) = match &e {
            HeapError::Unavailable => (501, "heap_profiler_unavailable"),
            HeapError::Disabled => (501, "heap_profiler_disabled"),
            HeapError::Inactive => (409, "heap_profile_inactive"),
            HeapError::Failed(_) | HeapError::Io { .. } => (500, "heap_profile_failed"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// jemalloc's profiler, once it is known to be there and enabled.
fn ctl() -> Result<&'static Arc<Mutex<JemallocProfCtl>>, HeapError> {
    // SAFETY: `opt.prof` is a readable bool (jemalloc(3)); it is absent (an error, not a
    // crash) when jemalloc is built without profiling.
    match unsafe { tikv_jemalloc_ctl::raw::read::<bool>(b"opt.prof\0") } {
        Err(_) => return Err(HeapError::Unavailable),
        Ok(false) => return Err(HeapError::Disabled),
        Ok(true) => {}
    }
    jemalloc_pprof::PROF_CTL.as_ref().ok_or(HeapError::Disabled)
}

/// Turns sampling on.
pub(crate) async fn start() -> Result<String, HeapError> {
    let mut ctl = ctl()?.lock().await;
    if ctl.activated() {
        return Ok("heap sampling is already running".into());
    }
    ctl.activate()
        .map_err(|e| HeapError::Failed(e.to_string()))?;
    tracing::info!("heap sampling started");
    Ok(format!(
        "heap sampling started (one sample every {} bytes allocated on average)",
        1u64 << ctl.lg_sample()
    ))
}

/// Turns sampling off and forgets its samples.
pub(crate) async fn stop() -> Result<String, HeapError> {
    let mut ctl = ctl()?.lock().await;
    if !ctl.activated() {
        return Ok("heap sampling is not running".into());
    }
    ctl.deactivate()
        .map_err(|e| HeapError::Failed(e.to_string()))?;
    tracing::info!("heap sampling stopped");
    Ok("heap sampling stopped".into())
}

/// The profile now: pprof's protobuf, gzip-compressed.
pub(crate) async fn dump() -> Result<Vec<u8>, HeapError> {
    let ctl = Arc::clone(ctl()?);
    // jemalloc writes the dump to a file, which is then read and converted: off the async
    // threads.
    let dumped = tokio::task::spawn_blocking(move || {
        let mut ctl = ctl.blocking_lock();
        if !ctl.activated() {
            return Err(HeapError::Inactive);
        }
        ctl.dump_pprof()
            .map_err(|e| HeapError::Failed(format!("{e:#}")))
    });
    dumped.await.map_err(|e| HeapError::Failed(e.to_string()))?
}

/// Writes the profile to a new `heap-<local time>.pb.gz` under `dir`; returns its path.
pub(crate) async fn write(dir: &Path) -> Result<PathBuf, HeapError> {
    let profile = dump().await?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HeapError::Io { path, source }
    };
    tokio::fs::create_dir_all(dir).await.map_err(io(dir))?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let mut n = 1;
    loop {
        let name = match n {
            1 => format!("heap-{stamp}.pb.gz"),
            n => format!("heap-{stamp}-{n}.pb.gz"),
        };
        let path = dir.join(name);
        let created = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await;
        match created {
            Ok(mut file) => {
                use tokio::io::AsyncWriteExt;
                file.write_all(&profile).await.map_err(io(&path))?;
                file.sync_all().await.map_err(io(&path))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(io(&path)(e)),
        }
    }
}
