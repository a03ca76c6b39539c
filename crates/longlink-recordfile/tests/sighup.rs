//! SIGHUP reloads the table. In its own test binary: the signal goes to the
//! whole process.
#![cfg(all(unix, feature = "sighup"))]

mod common;

use std::time::Duration;

use common::TempDir;
use longlink_recordfile::{Record, Reloadable};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Level {
    level: u8,
    exp: u64,
}

impl Record for Level {}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn sighup_reloads() {
    let dir = TempDir::new("hup");
    let path = dir.write("levels.txt", "level\texp\n1\t0\n");
    let levels: Reloadable<Level> = Reloadable::open(&path).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    levels.on_reload(move |t| {
        let _ = tx.send(t.len());
    });
    levels.reload_on_sighup().unwrap();
    levels.reload_on_sighup().unwrap(); // a second call is a no-op

    std::fs::write(&path, "level\texp\n1\t0\n2\t100\n").unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let n = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(n, Some(2));
    assert_eq!(levels.load().record(1).unwrap().exp, 100);
    assert_eq!(levels.load().record(1).unwrap().level, 2);
}
