//! What triggers a reload by itself: the file changing on disk (`notify`,
//! debounced), through whatever symlinks lead to it, and SIGHUP (tokio's signal
//! handling). Both reload on threads of their own, never on the runtime.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

use crate::reload::{Shared, Trigger};
use crate::resolve::{Chain, resolve};
use crate::{Error, Record, Reloadable};

/// A reload waits until the file has been quiet this long...
const QUIET: Duration = Duration::from_millis(150);
/// ...but no longer than this after the first event, so a change is in force
/// well within two seconds even while something keeps writing.
const MAX_WAIT: Duration = Duration::from_millis(800);

/// The entries whose events matter, shared by the watcher's callback and the thread that
/// follows the chain as it changes.
type Interest = Arc<Mutex<BTreeSet<PathBuf>>>;

impl<T: Record + Send + Sync> Reloadable<T> {
    /// Reloads the file whenever it changes on disk, from a thread of its own.
    ///
    /// The directories are watched, not the file, so editors and deploy tools that write
    /// a new file and rename it over the old one are seen too. A path that is a symlink
    /// (or a chain of them) is followed: the directory of each link and of the file it
    /// ends at are watched, and the watch moves when a link is changed, so editing the
    /// target in another directory, replacing a link, and Kubernetes' ConfigMap layout
    /// (`rooms.txt -> ..data/rooms.txt`, `..data` swapped by a rename) are all seen.
    ///
    /// Events are debounced (150 ms of quiet, at most 800 ms), an event that left the
    /// bytes as they were is ignored, and an invalid version (or anything but a regular
    /// file at the path, or a file over [`Options::max_bytes`](crate::Options::max_bytes))
    /// is logged with `tracing::warn!` while the old table stays. Calling it again does
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
        if path.file_name().is_none() {
            return Err(failed("the path names no file".into()));
        }
        let chain = resolve(path);
        let interest: Interest = Arc::new(Mutex::new(chain.entries.clone()));
        let seen = interest.clone();
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) if concerns(&event, &seen) => {
                    let _ = tx.send(());
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "record file watcher error"),
            })
            .map_err(|e| failed(e.to_string()))?;
        let watched = watch_dirs(&mut watcher, &chain).map_err(|e| failed(e.to_string()))?;
        let mut follower = Follower {
            chain,
            watched,
            interest,
        };
        let weak = Arc::downgrade(shared);
        std::thread::Builder::new()
            .name("recordfile-watch".into())
            .spawn(move || debounce(&rx, &weak, &mut follower))
            .map_err(|e| failed(e.to_string()))?;
        *slot = Some(watcher);
        Ok(())
    }

    /// Reloads the file on each SIGHUP: the signal is awaited on the current tokio
    /// runtime, the reload runs on a thread of its own (an invalid version is logged and
    /// the old table stays), so a slow file system never holds up the runtime or its
    /// shutdown. Signals that arrive during a reload are answered by one more.
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
        let failed = |message: String| Error::Watch {
            path: shared.path.clone(),
            message,
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| failed(format!("reload_on_sighup needs a tokio runtime: {e}")))?;
        let mut hangups = signal(SignalKind::hangup()).map_err(|source| Error::Io {
            path: shared.path.clone(),
            source,
        })?;
        let (tx, rx) = mpsc::channel::<()>();
        let weak = Arc::downgrade(shared);
        std::thread::Builder::new()
            .name("recordfile-sighup".into())
            .spawn(move || {
                // Ends when the task, and with it the sender, is gone.
                while rx.recv().is_ok() {
                    while rx.try_recv().is_ok() {}
                    let Some(shared) = weak.upgrade() else { break };
                    shared.reload_logged(Trigger::Asked);
                }
            })
            .map_err(|e| failed(e.to_string()))?;
        let task = runtime.spawn(async move {
            while hangups.recv().await.is_some() {
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
        *slot = Some(task.abort_handle());
        Ok(())
    }
}

/// Whether a directory event may have changed our file: it names one of the entries the
/// path resolves through (before or after a rename), or asks for a rescan. Reads (access
/// events) are not changes.
fn concerns(event: &notify::Event, interest: &Mutex<BTreeSet<PathBuf>>) -> bool {
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    if event.need_rescan() {
        return true;
    }
    let interest = interest.lock().unwrap_or_else(PoisonError::into_inner);
    event.paths.iter().any(|p| interest.contains(p))
}

/// Watches the directories `chain` leads through: the path's own must be watchable; one
/// of the others that is not (gone already) is logged and tried again after the next event.
fn watch_dirs(watcher: &mut impl Watcher, chain: &Chain) -> notify::Result<BTreeSet<PathBuf>> {
    let mut watched = BTreeSet::new();
    for dir in &chain.dirs {
        match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                watched.insert(dir.clone());
            }
            Err(error) if *dir == chain.home => return Err(error),
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "record file: cannot watch a directory its path leads through");
            }
        }
    }
    Ok(watched)
}

/// The watcher thread's view of the path: what it resolved through last, and which
/// directories are watched.
struct Follower {
    chain: Chain,
    watched: BTreeSet<PathBuf>,
    interest: Interest,
}

impl Follower {
    /// Resolves the path again and moves the watches to where it leads now (a link
    /// replaced, `..data` swapped). A directory that cannot be watched (gone already) is
    /// tried again after the next event.
    fn follow<T>(&mut self, shared: &Shared<T>) {
        let now = resolve(&shared.path);
        if now != self.chain {
            *self.interest.lock().unwrap_or_else(PoisonError::into_inner) = now.entries.clone();
            self.chain = now;
        }
        if self.watched == self.chain.dirs {
            return;
        }
        let mut slot = shared
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(watcher) = slot.as_mut() else {
            return;
        };
        for gone in self.watched.difference(&self.chain.dirs) {
            let _ = watcher.unwatch(gone);
        }
        self.watched.retain(|d| self.chain.dirs.contains(d));
        for dir in &self.chain.dirs {
            if self.watched.contains(dir) {
                continue;
            }
            match watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir.clone());
                }
                Err(error) => {
                    tracing::debug!(dir = %dir.display(), %error, "record file: cannot watch a directory its path leads through");
                }
            }
        }
    }
}

/// The watcher thread: waits for an event, lets the burst settle, follows the
/// path's links to where they lead now, reloads. Ends when the watcher (and with it the
/// sender) is dropped.
fn debounce<T: Record + Send + Sync>(
    rx: &mpsc::Receiver<()>,
    shared: &Weak<Shared<T>>,
    follower: &mut Follower,
) {
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
        follower.follow(&shared);
        shared.reload_logged(Trigger::Watch);
    }
}
