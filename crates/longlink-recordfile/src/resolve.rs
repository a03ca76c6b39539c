//! What a path resolves through: the directory entries whose change can change which file
//! the path names, and the directories that hold them, for the watcher to watch.

use std::collections::{BTreeSet, VecDeque};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed at most, as Linux's `MAXSYMLINKS` (a loop ends here).
const MAX_LINKS: usize = 40;

/// The entries a path resolves through, each as `<directory resolved>/<name>`: the path's
/// own, every symlink on the way, and the file at the end.
///
/// For a Kubernetes ConfigMap (`/etc/cfg/rooms.txt -> ..data/rooms.txt`, with
/// `/etc/cfg/..data -> ..2026_12_06_01_02_03.42`) they are `/etc/cfg/rooms.txt`,
/// `/etc/cfg/..data` and `/etc/cfg/..2026_12_06_01_02_03.42/rooms.txt`; a change to any of
/// them (the `..data` link renamed over, the file in the dated directory edited) is seen
/// by watching `/etc/cfg` and the dated directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    /// The entries.
    pub(crate) entries: BTreeSet<PathBuf>,
    /// The directories holding them.
    pub(crate) dirs: BTreeSet<PathBuf>,
    /// The directory the path is in, resolved: the one that must be watchable.
    pub(crate) home: PathBuf,
}

/// Follows `path` as the kernel does, one component at a time: the directory the path is in
/// resolved first (its own symlinks are not watched), then its name and every symlink met
/// from there on, each relative to the directory it is in. An entry that does not exist
/// (yet) ends the chain; so do [`MAX_LINKS`] links.
pub(crate) fn resolve(path: &Path) -> Chain {
    let parent = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut dir = std::fs::canonicalize(parent)
        .or_else(|_| std::path::absolute(parent))
        .unwrap_or_else(|_| parent.to_owned());
    let mut rest: VecDeque<OsString> = path
        .file_name()
        .map(ToOwned::to_owned)
        .into_iter()
        .collect();
    let home = dir.clone();
    let mut entries = BTreeSet::new();
    let mut links = 0;
    let mut last = None;
    while let Some(name) = rest.pop_front() {
        if name == ".." {
            dir.pop();
            continue;
        }
        let entry = dir.join(&name);
        let is_first = last.is_none();
        last = Some(entry.clone());
        let link = std::fs::symlink_metadata(&entry)
            .is_ok_and(|m| m.file_type().is_symlink())
            .then(|| std::fs::read_link(&entry).ok())
            .flatten();
        match link {
            Some(target) if links < MAX_LINKS => {
                links += 1;
                entries.insert(entry);
                for part in target.components().rev() {
                    match part {
                        Component::Normal(n) => rest.push_front(n.to_owned()),
                        Component::ParentDir => rest.push_front("..".into()),
                        Component::CurDir | Component::Prefix(_) | Component::RootDir => {}
                    }
                }
                if target.is_absolute() {
                    dir = PathBuf::from("/");
                }
            }
            _ => {
                if is_first {
                    entries.insert(entry.clone());
                }
                if !entry.is_dir() || rest.is_empty() {
                    break;
                }
                dir = entry;
            }
        }
    }
    if let Some(last) = last {
        entries.insert(last);
    }
    let dirs = entries
        .iter()
        .filter_map(|e| e.parent().map(Path::to_path_buf))
        .collect();
    Chain {
        entries,
        dirs,
        home,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("recordfile-resolve-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::canonicalize(dir).unwrap()
    }

    fn set(paths: &[PathBuf]) -> BTreeSet<PathBuf> {
        paths.iter().cloned().collect()
    }

    #[test]
    fn a_plain_file_is_its_own_chain() {
        let d = scratch("plain");
        std::fs::write(d.join("t.txt"), "x").unwrap();
        let chain = resolve(&d.join("t.txt"));
        assert_eq!(chain.entries, set(&[d.join("t.txt")]));
        assert_eq!(chain.dirs, set(std::slice::from_ref(&d)));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_link_to_another_directory_watches_both() {
        let d = scratch("other");
        std::fs::create_dir_all(d.join("a")).unwrap();
        std::fs::create_dir_all(d.join("b")).unwrap();
        std::fs::write(d.join("b/real.txt"), "x").unwrap();
        symlink(d.join("b/real.txt"), d.join("a/t.txt")).unwrap();
        let chain = resolve(&d.join("a/t.txt"));
        assert_eq!(
            chain.entries,
            set(&[d.join("a/t.txt"), d.join("b/real.txt")])
        );
        assert_eq!(chain.dirs, set(&[d.join("a"), d.join("b")]));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn the_configmap_layout_includes_the_data_link_and_the_dated_directory() {
        let d = scratch("configmap");
        std::fs::create_dir_all(d.join("..2026_1")).unwrap();
        std::fs::write(d.join("..2026_1/t.txt"), "x").unwrap();
        symlink("..2026_1", d.join("..data")).unwrap();
        symlink("..data/t.txt", d.join("t.txt")).unwrap();
        // Given with a relative-looking `./` and through the link's own name.
        let chain = resolve(&d.join(".").join("t.txt"));
        assert_eq!(
            chain.entries,
            set(&[d.join("t.txt"), d.join("..data"), d.join("..2026_1/t.txt")])
        );
        assert_eq!(chain.dirs, set(&[d.clone(), d.join("..2026_1")]));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_missing_target_and_a_loop_end_the_chain() {
        let d = scratch("loop");
        symlink("nowhere/t.txt", d.join("gone.txt")).unwrap();
        let chain = resolve(&d.join("gone.txt"));
        assert_eq!(chain.entries, set(&[d.join("gone.txt"), d.join("nowhere")]));
        symlink("b", d.join("a")).unwrap();
        symlink("a", d.join("b")).unwrap();
        let chain = resolve(&d.join("a"));
        assert_eq!(chain.entries, set(&[d.join("a"), d.join("b")]));
        std::fs::remove_dir_all(d).unwrap();
    }
}
