//! Record files from any layout, and what is refused at the path: the watcher follows
//! symlinks (a ConfigMap's `..data` swap), and a named pipe, a device or a file over
//! `Options::max_bytes` is refused without blocking while the old table stays.
#![cfg(unix)]

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TempDir, eventually};
use longlink_recordfile::{Error, Options, Record, Reloadable};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Level {
    level: u8,
    exp: u64,
}

impl Record for Level {}

const LIMIT: Duration = Duration::from_secs(2);

/// A ConfigMap version: the file in a dated directory, `..data` renamed to point at it.
fn publish(dir: &Path, version: &str, text: &str) {
    let dated = format!("..{version}");
    std::fs::create_dir_all(dir.join(&dated)).unwrap();
    std::fs::write(dir.join(&dated).join("levels.txt"), text).unwrap();
    symlink(&dated, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
}

#[test]
fn the_watcher_follows_a_configmap_data_swap() {
    let dir = TempDir::new("configmap");
    publish(dir.path(), "1", "level\texp\n1\t0\n");
    let path = dir.path().join("levels.txt");
    symlink("..data/levels.txt", &path).unwrap();
    let levels: Reloadable<Level> = Reloadable::open(&path).unwrap();
    levels.watch().unwrap();
    for (n, version) in [(2, "2"), (3, "3")] {
        let rows: String = (1..=n).map(|l| format!("{l}\t{}\n", l * 100)).collect();
        publish(dir.path(), version, &format!("level\texp\n{rows}"));
        assert!(
            eventually(LIMIT, || levels.load().len() == n),
            "version {version} not in force within {LIMIT:?}"
        );
    }
    assert_eq!(levels.load().record(2).unwrap().exp, 300);
}

#[test]
fn a_fifo_a_device_or_an_oversize_file_is_refused_without_blocking() {
    let dir = TempDir::new("refused");
    let path = dir.write("levels.txt", "level\texp\n1\t0\n");
    let levels: Reloadable<Level> = Options::new().max_bytes(64).reloadable(&path).unwrap();

    let fifo = dir.path().join("pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::rename(&fifo, &path).unwrap();
    let began = Instant::now();
    let e = levels.reload_now().unwrap_err();
    assert!(began.elapsed() < LIMIT, "the open blocked");
    assert!(
        matches!(
            e,
            Error::NotAFile {
                kind: "a named pipe (FIFO)",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        Reloadable::<Level>::open(&path).is_err(),
        "open refuses it too"
    );

    std::fs::remove_file(&path).unwrap();
    symlink("/dev/zero", &path).unwrap();
    let e = levels.reload_now().unwrap_err();
    assert!(
        e.to_string()
            .contains("not a regular file (a character device)"),
        "{e}"
    );

    std::fs::remove_file(&path).unwrap();
    let long: String = (1..=20).map(|l| format!("{l}\t{l}\n")).collect();
    std::fs::write(&path, format!("level\texp\n{long}")).unwrap();
    let e = levels.reload_now().unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 64, .. }), "{e}");
    assert_eq!(levels.load().len(), 1, "the old table stays");

    std::fs::write(&path, "level\texp\n1\t0\n2\t9\n").unwrap();
    assert_eq!(levels.reload_now().unwrap().len(), 2);
    assert_eq!(levels.load().record(1).unwrap().level, 2);
}
