//! The room table (`[chat] rooms_file`) from any layout, and hostile ones (issue 21): a
//! symlink whose target is edited in another directory and a Kubernetes ConfigMap's
//! `..data` swap are in force within two seconds; a named pipe or a device put at the path,
//! or a table over `[chat] rooms_file_max_bytes`, is refused with an error logged and the
//! old table stays; a good version after it loads, on a change and on SIGHUP; and SIGTERM
//! still stops the process.
#![cfg(unix)]

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use common::process::*;
use common::*;
use longlink_chat::msg::C2sUpdateWatchRoom;

const HEADER: &str = "房间编号\t名称\t在线上限\t屏蔽词\n";

/// How soon a change must be in force (the room table's promise).
const IN_FORCE: Duration = Duration::from_secs(2);

fn table(rows: &str) -> String {
    format!("{HEADER}{rows}")
}

/// Replaces `path` as editors and deploy tools do: a new file renamed over it.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Asks to watch `room` until it is open, for at most [`IN_FORCE`] after `since`; it is
/// refused as unknown (code 8) until then.
async fn opens_within(c: &mut Client, room: u64, since: Instant) {
    loop {
        c.send(&C2sUpdateWatchRoom { room_id: room }).await;
        match c.recv().await {
            Reply::Watch(w) => {
                assert_eq!(w.room_id, room);
                c.room = room;
                return;
            }
            Reply::Error(e) if e.code == 8 && since.elapsed() < IN_FORCE => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("room {room} not open within {IN_FORCE:?} of the change: {other:?}"),
        }
    }
}

/// Expects `room` to be refused as unknown (code 8).
async fn stays_unknown(c: &mut Client, room: u64) {
    c.send(&C2sUpdateWatchRoom { room_id: room }).await;
    c.expect_error(8).await;
}

async fn server_with(path: &Path, max_bytes: Option<u64>) -> TestServer {
    let path = path.display().to_string();
    TestServer::start_with(Enc::Json, move |c| {
        c.chat.rooms_file = path;
        if let Some(max) = max_bytes {
            c.chat.rooms_file_max_bytes = max;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_table_reloads_when_its_target_is_edited_in_another_directory() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("rooms-symlink");
        for sub in ["conf", "data"] {
            std::fs::create_dir_all(dir.0.join(sub)).unwrap();
        }
        let target = dir.0.join("data/rooms.txt");
        std::fs::write(&target, table("1\tlobby\t0\t[]\n")).unwrap();
        let link = dir.0.join("conf/rooms.txt");
        symlink("../data/rooms.txt", &link).unwrap();
        let server = server_with(&link, None).await;
        let mut a = server.login(Transport::Tcp, 61).await;
        assert_eq!(a.watch(1).await, 1);
        stays_unknown(&mut a, 2).await;

        // The target saved as editors do, in its own directory.
        replace(&target, &table("1\tlobby\t0\t[]\n2\tnew\t0\t[]\n"));
        opens_within(&mut a, 2, Instant::now()).await;
        // Rewritten in place.
        std::fs::write(&target, table("2\tnew\t0\t[]\n3\tnewer\t0\t[]\n")).unwrap();
        opens_within(&mut a, 3, Instant::now()).await;
        // The link pointed elsewhere, then that file edited.
        let other = dir.0.join("data/other.txt");
        std::fs::write(&other, table("4\tfour\t0\t[]\n")).unwrap();
        let tmp = dir.0.join("conf/rooms.link");
        symlink(&other, &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
        opens_within(&mut a, 4, Instant::now()).await;
        replace(&other, &table("4\tfour\t0\t[]\n5\tfive\t0\t[]\n"));
        opens_within(&mut a, 5, Instant::now()).await;
        server.shutdown().await;
    })
    .await;
}

/// Publishes a ConfigMap version as Kubernetes' atomic writer does: the files in a new
/// dated directory, a `..data_tmp` link to it renamed over `..data`, the old directory
/// removed.
fn publish(dir: &Path, version: &str, rows: &str, old: Option<&str>) {
    let dated = format!("..2026_12_06_{version}");
    std::fs::create_dir_all(dir.join(&dated)).unwrap();
    std::fs::write(dir.join(&dated).join("rooms.txt"), table(rows)).unwrap();
    symlink(&dated, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(format!("..2026_12_06_{old}"))).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_style_data_swap_reloads_within_two_seconds() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("rooms-configmap");
        publish(&dir.0, "01", "1\tlobby\t0\t[]\n", None);
        let path = dir.0.join("rooms.txt");
        symlink("..data/rooms.txt", &path).unwrap();
        let server = server_with(&path, None).await;
        let mut a = server.login(Transport::Ws, 62).await;
        assert_eq!(a.watch(1).await, 1);
        stays_unknown(&mut a, 2).await;

        publish(&dir.0, "02", "1\tlobby\t0\t[]\n2\tnew\t0\t[]\n", Some("01"));
        opens_within(&mut a, 2, Instant::now()).await;
        // And the next one: the watch followed the swap.
        publish(&dir.0, "03", "3\tnewer\t0\t[]\n", Some("02"));
        opens_within(&mut a, 3, Instant::now()).await;
        stays_unknown(&mut a, 1).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_over_rooms_file_max_bytes_is_refused_and_the_old_one_stays() {
    bounded(TEST_TIMEOUT, async {
        const MAX: u64 = 2048;
        let dir = TempDir::new("rooms-oversize");
        let path = dir.0.join("rooms.txt");
        let big: String = (1..=200)
            .map(|i| format!("{i}\troom{i}\t0\t[]\n"))
            .collect();
        assert!(table(&big).len() as u64 > MAX);

        // At start-up: an error naming the file and the limit.
        std::fs::write(&path, table(&big)).unwrap();
        let mut config = longlink_chat::Config::load(None).unwrap();
        config.gate.tcp_addr = "127.0.0.1:0".into();
        config.gate.ws_addr = "127.0.0.1:0".into();
        config.admin.addr = String::new();
        config.chat.rooms_file = path.display().to_string();
        config.chat.rooms_file_max_bytes = MAX;
        let e = match longlink_chat::build(config).await {
            Ok(_) => panic!("a table over the cap was accepted"),
            Err(e) => format!("{e:#}"),
        };
        assert!(e.contains("rooms.txt") && e.contains("2048 bytes"), "{e}");

        // On a reload: refused, the old table stays; a good version after it loads.
        replace(&path, &table("1\tlobby\t0\t[]\n"));
        let server = server_with(&path, Some(MAX)).await;
        let mut a = server.login(Transport::Tcp, 63).await;
        assert_eq!(a.watch(1).await, 1);
        replace(&path, &table(&big));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stays_unknown(&mut a, 2).await;
        assert_eq!(a.watch(1).await, 1, "the old table stays");
        replace(&path, &table("1\tlobby\t0\t[]\n2\tsmall\t0\t[]\n"));
        opens_within(&mut a, 2, Instant::now()).await;
        server.shutdown().await;
    })
    .await;
}

/// How many times `needle` is on the binary's stderr, once it is there `at_least` times
/// (within five seconds).
async fn logged(p: &mut Proc, needle: &str, at_least: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stderr = p.stderr();
        let n = stderr.matches(needle).count();
        if n >= at_least {
            return n;
        }
        if let Some(status) = p.try_wait() {
            panic!("longlink-chat exited ({status}); stderr:\n{stderr}");
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not logged {at_least} time(s) within 5 s; stderr:\n{stderr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The binary (under a 4 GiB address-space limit, so that a table read without a bound
/// fails fast instead of taking the machine's memory) serving `rooms.txt`; `put` puts
/// something that is not a regular file at the path, which must be refused, logged as
/// `kind`, on a change and on SIGHUP; a good version after it loads; and with the bad one
/// back and a SIGHUP on it, SIGTERM stops the process.
async fn a_non_file_is_refused(name: &str, kind: &str, put: impl Fn(&Path)) {
    let dir = TempDir::new(name);
    let path = dir.0.join("rooms.txt");
    std::fs::write(&path, table("1\tlobby\t0\t[]\n")).unwrap();
    let chat = format!("[chat]\nrooms_file = {:?}\n", path.display().to_string());
    let mut s = serve_with_ulimit(Enc::Json, &chat, "ulimit -S -v 4194304").await;
    let mut a = Client::connect(Transport::Tcp, Enc::Json, s.tcp).await;
    a.login_uid(64).await;
    assert_eq!(a.watch(1).await, 1);

    put(&path);
    let mut n = logged(&mut s.proc, kind, 1).await;
    assert!(s.proc.stderr().contains("not a regular file"));
    s.proc.signal("HUP");
    n = logged(&mut s.proc, kind, n + 1).await;
    assert_eq!(a.watch(1).await, 1, "the old table stays");

    replace(&path, &table("1\tlobby\t0\t[]\n2\tsmall\t0\t[]\n"));
    opens_within(&mut a, 2, Instant::now()).await;
    replace(&path, &table("3\tthree\t0\t[]\n"));
    let since = Instant::now();
    s.proc.signal("HUP");
    opens_within(&mut a, 3, since).await;

    // Refused again, by the watcher and by SIGHUP; then SIGTERM.
    put(&path);
    s.proc.signal("HUP");
    logged(&mut s.proc, kind, n + 2).await;
    s.proc.signal("TERM");
    let status = s.proc.wait().await;
    assert_eq!(status.code(), Some(0), "stderr:\n{}", s.proc.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_place_of_the_table_is_refused_and_a_later_version_loads() {
    bounded(TEST_TIMEOUT, async {
        a_non_file_is_refused("rooms-fifo", "a named pipe (FIFO)", |path| {
            let fifo = path.with_extension("fifo");
            let made = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap();
            assert!(made.success());
            std::fs::rename(&fifo, path).unwrap();
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_table_is_refused_and_a_later_version_loads() {
    bounded(TEST_TIMEOUT, async {
        a_non_file_is_refused("rooms-endless", "a character device", |path| {
            let link = path.with_extension("link");
            symlink("/dev/zero", &link).unwrap();
            std::fs::rename(&link, path).unwrap();
        })
        .await;
    })
    .await;
}
