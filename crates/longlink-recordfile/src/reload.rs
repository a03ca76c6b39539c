//! A table that is replaced, whole, while the server runs: when its file
//! changes on disk, on SIGHUP, or on demand.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use arc_swap::ArcSwap;

use crate::read::read_file;
use crate::{Error, Options, Record, Table};

/// What runs after a new version is in force.
type Callback<T> = Arc<dyn Fn(Arc<Table<T>>) + Send + Sync>;

/// A record file that modules read while it is reloaded underneath them.
///
/// Reading is lock-free and copies nothing: [`load`](Reloadable::load) is an
/// `arc-swap` load. A reload parses the whole file first; only a valid version
/// replaces the table, all at once with every index; an invalid one is logged
/// (`tracing::warn!`) or returned, and the old table stays. Clones share the
/// same table, watcher and callbacks; the watcher stops with the last clone.
///
/// ```
/// use longlink_recordfile::{Record, Reloadable};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// #[derive(serde::Deserialize)]
/// struct DropRate { monster: u32, item: u32, rate: f32 }
/// impl Record for DropRate {}
///
/// let path = std::env::temp_dir().join(format!("drops-doc-{}.txt", std::process::id()));
/// std::fs::write(&path, "monster\titem\trate\n1\t100\t0.5\n")?;
///
/// let drops: Reloadable<DropRate> = Reloadable::open(&path)?;
/// let versions = Arc::new(AtomicUsize::new(0));
/// let seen = versions.clone();
/// // A longlink module would forward the table to its task here (`module_ref.cast`).
/// drops.on_reload(move |table| { seen.store(table.len(), Ordering::SeqCst); });
/// drops.watch()?; // reload when the file changes (and `reload_on_sighup()` under tokio)
///
/// assert_eq!(drops.load().len(), 1);
/// std::fs::write(&path, "monster\titem\trate\n1\t100\t0.5\n2\t200\t0.1\n")?;
/// drops.reload_now()?; // or wait for the watcher
/// assert_eq!(drops.load().record(1).unwrap().item, 200);
/// assert_eq!(versions.load(Ordering::SeqCst), 2);
///
/// std::fs::write(&path, "monster\titem\trate\n1\toops\t0.5\n")?;
/// assert!(drops.reload_now().is_err()); // invalid: the old table stays
/// assert_eq!(drops.load().len(), 2);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Reloadable<T> {
    pub(crate) shared: Arc<Shared<T>>,
}

/// What every clone of a [`Reloadable`] shares.
pub(crate) struct Shared<T> {
    /// The table in force.
    current: ArcSwap<Table<T>>,
    /// The file.
    pub(crate) path: PathBuf,
    /// How to read it.
    options: Options,
    /// Told of each new version.
    callbacks: RwLock<Vec<Callback<T>>>,
    /// Held only to compare and swap in a version read and parsed outside it (a read may
    /// wait on the file system; nothing else should wait on that).
    reload_lock: Mutex<InForce>,
    /// Numbers the reads as they begin, so that of two reloads that overlap the one that
    /// began reading later is the one left in force.
    reads: AtomicU64,
    /// The file watcher, once [`Reloadable::watch`] started it.
    pub(crate) watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// The SIGHUP task, once [`Reloadable::reload_on_sighup`] started it.
    #[cfg(all(unix, feature = "sighup"))]
    pub(crate) signal_task: Mutex<Option<tokio::task::AbortHandle>>,
}

/// What the version in force was read from.
#[derive(Default)]
struct InForce {
    /// A hash of its bytes, so a watcher event that changed nothing (a `touch`, an editor
    /// saving twice) does not reload.
    print: u64,
    /// The number of the read it came from (see `Shared::reads`).
    read: u64,
}

/// Why a reload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// [`Reloadable::reload_now`] or SIGHUP: always reload.
    Asked,
    /// A file event: skip when the bytes are the same.
    Watch,
}

fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl Options {
    /// Loads the file at `path` into a handle that reloads it; see [`Reloadable`].
    pub fn reloadable<T>(&self, path: impl AsRef<Path>) -> Result<Reloadable<T>, Error>
    where
        T: Record + Send + Sync,
    {
        Reloadable::with_options(path, self.clone())
    }
}

impl<T: Record + Send + Sync> Reloadable<T> {
    /// Loads `path` with leaf's default [`Options`]. Fails if this first
    /// version is invalid.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::with_options(path, Options::new())
    }

    /// Loads `path` with `options` (also [`Options::reloadable`]).
    pub fn with_options(path: impl AsRef<Path>, options: Options) -> Result<Self, Error> {
        let path = path.as_ref().to_owned();
        let bytes = read_file(&path, options.max_bytes)?;
        let table = options.parse_bytes(&path.display().to_string(), &bytes)?;
        Ok(Reloadable {
            shared: Arc::new(Shared {
                current: ArcSwap::from_pointee(table),
                path,
                options,
                callbacks: RwLock::new(Vec::new()),
                reload_lock: Mutex::new(InForce {
                    print: fingerprint(&bytes),
                    read: 0,
                }),
                reads: AtomicU64::new(0),
                watcher: Mutex::new(None),
                #[cfg(all(unix, feature = "sighup"))]
                signal_task: Mutex::new(None),
            }),
        })
    }

    /// Reads the file again now. A valid version is in force when this
    /// returns it (and the callbacks have run); an invalid one is returned as
    /// the error and the old table stays.
    pub fn reload_now(&self) -> Result<Arc<Table<T>>, Error> {
        self.shared
            .reload(Trigger::Asked)
            .map(|t| t.unwrap_or_else(|| self.load_full()))
    }
}

impl<T> Reloadable<T> {
    /// The table in force, for a short read (a lookup or a loop): no lock, no
    /// reference count. Keep [`load_full`](Reloadable::load_full)'s `Arc` to
    /// hold a version longer.
    pub fn load(&self) -> TableGuard<T> {
        TableGuard(self.shared.current.load())
    }

    /// The table in force, as an `Arc` that may be kept across reloads.
    pub fn load_full(&self) -> Arc<Table<T>> {
        self.shared.current.load_full()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Calls `f` with each new version once it is in force (not for the
    /// first). It runs on whichever thread reloaded (the watcher's, a tokio
    /// blocking thread for SIGHUP, or `reload_now`'s caller), so keep it cheap:
    /// hand the table to the owner's task, e.g. with a longlink
    /// `module_ref.cast`. A panic in `f` is caught and logged.
    pub fn on_reload<F>(&self, f: F)
    where
        F: Fn(Arc<Table<T>>) + Send + Sync + 'static,
    {
        self.shared
            .callbacks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(f));
    }
}

impl<T> Clone for Reloadable<T> {
    fn clone(&self) -> Self {
        Reloadable {
            shared: self.shared.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Reloadable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloadable")
            .field("path", &self.shared.path)
            .field("records", &self.shared.current.load().len())
            .finish()
    }
}

impl<T: Record + Send + Sync> Shared<T> {
    /// Reads, parses and swaps in the file; `Ok(None)` if a watch event found
    /// the same bytes, or a read begun later is already in force. Reading and
    /// parsing happen outside the lock; callbacks run after the swap, outside it.
    pub(crate) fn reload(&self, trigger: Trigger) -> Result<Option<Arc<Table<T>>>, Error> {
        let read = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        let bytes = read_file(&self.path, self.options.max_bytes)?;
        let print = fingerprint(&bytes);
        if trigger == Trigger::Watch && print == self.in_force().print {
            return Ok(None);
        }
        let name = self.path.display().to_string();
        let table = Arc::new(self.options.parse_bytes::<T>(&name, &bytes)?);
        {
            let mut in_force = self.in_force();
            if in_force.read > read {
                return Ok(None);
            }
            self.current.store(table.clone());
            *in_force = InForce { print, read };
        }
        tracing::info!(path = %self.path.display(), records = table.len(), "record file reloaded");
        let callbacks = self
            .callbacks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for callback in callbacks {
            let table = table.clone();
            if catch_unwind(AssertUnwindSafe(|| callback(table))).is_err() {
                tracing::error!(path = %self.path.display(), "record file reload callback panicked");
            }
        }
        Ok(Some(table))
    }

    /// The lock that orders the swaps, and what is in force.
    fn in_force(&self) -> std::sync::MutexGuard<'_, InForce> {
        self.reload_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A reload from the watcher or a signal: errors are logged, not returned.
    pub(crate) fn reload_logged(&self, trigger: Trigger) {
        if let Err(error) = self.reload(trigger) {
            tracing::warn!(
                path = %self.path.display(),
                %error,
                "record file not reloaded; the old table stays"
            );
        }
    }
}

#[cfg(all(unix, feature = "sighup"))]
impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let task = self
            .signal_task
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

/// A short-lived view of the table in force; derefs to [`Table`].
///
/// Don't hold many at once on one thread (`arc-swap` falls back to a slower
/// path); use [`Reloadable::load_full`] to keep a version.
pub struct TableGuard<T>(arc_swap::Guard<Arc<Table<T>>>);

impl<T> TableGuard<T> {
    /// This version as an `Arc`, to keep.
    pub fn into_arc(self) -> Arc<Table<T>> {
        arc_swap::Guard::into_inner(self.0)
    }
}

impl<T> Deref for TableGuard<T> {
    type Target = Table<T>;

    fn deref(&self) -> &Table<T> {
        &self.0
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for TableGuard<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}
