//! What triggers a reload by itself: the file changing on disk (`notify`,
//! debounced) and SIGHUP (tokio's signal handling).

use std::ffi::OsString;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{PoisonError, Weak};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

use crate::reload::{Shared, Trigger};
use crate::{Error, Record, Reloadable};

/// A reload waits until the file has been quiet this long...
const QUIET: Duration = Duration::from_millis(150);
/// ...but no longer than this after the first event, so a change is in force
/// well within two seconds even while something keeps writing.
const MAX_WAIT: Duration = Duration::from_millis(800);

impl<T: Record + Send + Sync> Reloadable<T> {
    /// Reloads the file whenever it changes on disk, from a thread of its own.
    ///
    /// The file's directory is watched, so editors and deploy tools that write
    /// a new file and rename it over the old one are seen too. Events are
    /// debounced (150 ms of quiet, at most 800 ms), an event that left the
    /// bytes as they were is ignored, and an invalid version is logged with
    /// `tracing::warn!` while the old table stays. Calling it again does
    /// nothing; watching stops when the last clone of the handle is dropped.
    pub fn watch(&self) -> Result<(), Error> {
        let shared = &self.shared;
        let mut slot = shared
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return Ok(());
        }
        let path = &shared.path;
        let failed = |message: String| Error::Watch {
            path: path.clone(),
            message,
        };
        let name = path
            .file_name()
            .ok_or_else(|| failed("the path names no file".into()))?
            .to_owned();
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) if concerns(&event, &name) => {
                    let _ = tx.send(());
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "record file watcher error"),
            })
            .map_err(|e| failed(e.to_string()))?;
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| failed(e.to_string()))?;
        let weak = std::sync::Arc::downgrade(shared);
        std::thread::Builder::new()
            .name("recordfile-watch".into())
            .spawn(move || debounce(&rx, &weak))
            .map_err(|e| failed(e.to_string()))?;
        *slot = Some(watcher);
        Ok(())
    }

    /// Reloads the file on each SIGHUP, from a task on the current tokio
    /// runtime (an invalid version is logged and the old table stays).
    ///
    /// Fails outside a tokio runtime. Once this returns, SIGHUP no longer
    /// terminates the process. Calling it again does nothing.
    #[cfg(all(unix, feature = "sighup"))]
    pub fn reload_on_sighup(&self) -> Result<(), Error> {
        use tokio::signal::unix::{SignalKind, signal};

        let shared = &self.shared;
        let mut slot = shared
            .signal_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| Error::Watch {
            path: shared.path.clone(),
            message: format!("reload_on_sighup needs a tokio runtime: {e}"),
        })?;
        let mut hangups = signal(SignalKind::hangup()).map_err(|source| Error::Io {
            path: shared.path.clone(),
            source,
        })?;
        let weak = std::sync::Arc::downgrade(shared);
        let task = runtime.spawn(async move {
            while hangups.recv().await.is_some() {
                let Some(shared) = weak.upgrade() else { break };
                let _ =
                    tokio::task::spawn_blocking(move || shared.reload_logged(Trigger::Asked)).await;
            }
        });
        *slot = Some(task.abort_handle());
        Ok(())
    }
}

/// Whether a directory event may have changed our file (its name, before or
/// after a rename). Reads (access events) are not changes.
fn concerns(event: &notify::Event, name: &OsString) -> bool {
    !matches!(event.kind, EventKind::Access(_))
        && (event.need_rescan() || event.paths.iter().any(|p| p.file_name() == Some(name)))
}

/// The watcher thread: waits for an event, lets the burst settle, reloads.
/// Ends when the watcher (and with it the sender) is dropped.
fn debounce<T: Record + Send + Sync>(rx: &mpsc::Receiver<()>, shared: &Weak<Shared<T>>) {
    while rx.recv().is_ok() {
        let first = Instant::now();
        loop {
            let left = MAX_WAIT.saturating_sub(first.elapsed());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(QUIET.min(left)) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.reload_logged(Trigger::Watch);
    }
}
