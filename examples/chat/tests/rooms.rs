//! The room table (`[chat] rooms_file`, a leaf record file) over the wire: only its rooms
//! can be watched (code 8), a full room refuses a new watcher (code 6), a banned word keeps a
//! message from the room (code 7), a refused watch keeps the previous one, and a change to
//! the file is in force within two seconds without a restart.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use longlink_chat::msg::C2sUpdateWatchRoom;

const HEADER: &str = "房间编号\t名称\t在线上限\t屏蔽词\n";

/// A room table in its own temporary file, removed at the end.
struct TableFile(PathBuf);

impl TableFile {
    fn new(name: &str, rows: &str) -> TableFile {
        let dir =
            std::env::temp_dir().join(format!("longlink-rooms-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = TableFile(dir.join("rooms.txt"));
        file.write(rows);
        file
    }

    /// Replaces the file's rows (a new file renamed over the old one, as editors save).
    fn write(&self, rows: &str) {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, format!("{HEADER}{rows}")).unwrap();
        std::fs::rename(&tmp, &self.0).unwrap();
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TableFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn server_with(enc: Enc, table: &TableFile) -> TestServer {
    let path = table.path();
    TestServer::start_with(enc, move |c| c.chat.rooms_file = path).await
}

/// Asks to watch `room` and expects `S2C_Error{code}`.
async fn refused_watch(c: &mut Client, room: u64, code: i32) {
    c.send(&C2sUpdateWatchRoom { room_id: room }).await;
    let e = c.expect_error(code).await;
    assert!(e.msg.contains(&room.to_string()), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_tables_rooms_can_be_watched_full_rooms_refuse_and_banned_words_stay_out() {
    bounded(TEST_TIMEOUT, async {
        let table = TableFile::new(
            "rules",
            "1\tlobby\t0\t[]\n2\tsmall\t2\t[]\n3\tpolite\t0\t\"[\"\"Spam\"\", \"\"scam\"\"]\"\n",
        );
        for enc in Enc::ALL {
            let server = server_with(enc, &table).await;
            for t in Transport::ALL {
                let base = 1000 * (enc as u64 + 1) + 100 * (t as u64);
                let mut a = server.login(t, base + 1).await;
                let mut b = server.login(t.other(), base + 2).await;
                let mut c = server.login(t, base + 3).await;

                // A room not in the table: refused, the previous watch stays.
                refused_watch(&mut a, 9, 8).await;
                assert_eq!(a.watch(1).await, 1);
                refused_watch(&mut a, 9, 8).await;
                assert_eq!(b.watch(1).await, 2);
                b.say(1, "still in the lobby?").await;
                assert_eq!(a.expect_message().await.text, "still in the lobby?");
                assert_eq!(b.expect_message().await.text, "still in the lobby?");

                // Room 2 takes two watchers; the third is refused and keeps room 1.
                assert_eq!(a.watch(2).await, 1);
                assert_eq!(c.watch(2).await, 2);
                refused_watch(&mut b, 2, 6).await;
                assert_eq!(
                    a.watch(2).await,
                    2,
                    "watching the same room again is no new watcher"
                );
                c.say(1, "b is here").await;
                assert_eq!(b.expect_message().await.text, "b is here");
                assert_eq!(c.expect_message().await.text, "b is here");

                // Room 3 bans two words, in any case; the message reaches nobody.
                assert_eq!(a.watch(3).await, 1);
                assert_eq!(b.watch(3).await, 2);
                b.say(3, "cheap SPAM here").await;
                let e = b.expect_error(7).await;
                assert!(e.msg.to_lowercase().contains("spam"), "{e:?}");
                a.expect_quiet().await;
                b.say(3, "a ScAm too").await;
                b.expect_error(7).await;
                b.say(3, "hello, politely").await;
                assert_eq!(a.expect_message().await.text, "hello, politely");
                assert_eq!(b.expect_message().await.text, "hello, politely");
                // A room message to a room not in the table is refused too.
                b.say(9, "anyone?").await;
                b.expect_error(8).await;
                for client in [&mut a, &mut b, &mut c] {
                    client.watch(0).await;
                    client.expect_quiet().await;
                }
            }
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_the_table_is_in_force_within_two_seconds_and_a_broken_one_is_ignored() {
    bounded(TEST_TIMEOUT, async {
        let table = TableFile::new("reload", "1\tlobby\t1\t[]\n");
        let server = server_with(Enc::Json, &table).await;
        let mut a = server.login(Transport::Tcp, 51).await;
        let mut b = server.login(Transport::Ws, 52).await;
        assert_eq!(a.watch(1).await, 1);
        refused_watch(&mut b, 1, 6).await;

        // max_online 1 -> 2 while the server runs.
        let changed = Instant::now();
        table.write("1\tlobby\t2\t[]\n");
        loop {
            b.send(&C2sUpdateWatchRoom { room_id: 1 }).await;
            match b.recv().await {
                Reply::Watch(w) => {
                    assert_eq!((w.room_id, w.online), (1, 2));
                    b.room = 1;
                    break;
                }
                Reply::Error(e) if e.code == 6 => {}
                other => panic!("expected S2C_UpdateWatchRoom or error 6, got {other:?}"),
            }
            assert!(
                changed.elapsed() < Duration::from_secs(2),
                "the new max_online was not in force within 2 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // A broken version (a duplicate room) is logged and the old table stays.
        table.write("1\tlobby\t2\t[]\n1\tagain\t0\t[]\n2\tnew\t0\t[]\n");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        refused_watch(&mut a, 2, 8).await;
        // A valid one after it is taken.
        table.write("1\tlobby\t2\t[]\n2\tnew\t0\t[]\n");
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            a.send(&C2sUpdateWatchRoom { room_id: 2 }).await;
            match a.recv().await {
                Reply::Watch(w) => {
                    assert_eq!(w.room_id, 2);
                    break;
                }
                Reply::Error(e) if e.code == 8 && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => panic!("expected room 2 to open within 2 s, got {other:?}"),
            }
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_table_at_start_up_is_an_error_naming_its_file_line_and_column() {
    bounded(TEST_TIMEOUT, async {
        let table = TableFile::new("broken", "1\tlobby\t0\t[]\n2\tsmall\tmany\t[]\n");
        let mut config = longlink_chat::Config::load(None).unwrap();
        config.gate.tcp_addr = "127.0.0.1:0".into();
        config.gate.ws_addr = "127.0.0.1:0".into();
        config.admin.addr = String::new();
        config.chat.rooms_file = table.path();
        let e = match longlink_chat::build(config).await {
            Ok(_) => panic!("a broken room table was accepted"),
            Err(e) => format!("{e:#}"),
        };
        // Line 3 of the file (the header is line 1), column 3 (max_online, headed 在线上限),
        // and what was expected there.
        assert!(e.contains("rooms.txt:3"), "{e}");
        assert!(e.contains("column 3 (在线上限)"), "{e}");
        assert!(e.contains("u32") && e.contains("\"many\""), "{e}");
    })
    .await;
}
