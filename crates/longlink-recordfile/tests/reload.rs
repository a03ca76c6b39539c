//! Reloading: by hand, by the file watcher, with callbacks, and keeping the old
//! table when the new version is invalid.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TempDir, eventually};
use longlink_recordfile::{Error, Index, IndexDef, Options, Record, Reloadable};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Room {
    id: u32,
    name: String,
    seats: u8,
}

impl Room {
    const BY_ID: Index<Room, u32> = Index::new("id");
    const BY_NAME: Index<Room, String> = Index::new("name");
}

impl Record for Room {
    fn indexes() -> Vec<IndexDef<Self>> {
        vec![
            Self::BY_ID.key(|r| r.id),
            Self::BY_NAME.key(|r| r.name.clone()),
        ]
    }
}

const V1: &str = "房间\t名字\t座位\n1\thall\t8\n2\tattic\t2\n";
const V2: &str = "房间\t名字\t座位\n1\thall\t10\n3\tcellar\t4\n4\troof\t6\n";
const BAD: &str = "房间\t名字\t座位\n1\thall\t10\n1\tcopy\t4\n";

/// Counts callbacks and keeps the last table's length.
fn counter(rooms: &Reloadable<Room>) -> Arc<Mutex<Vec<usize>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    rooms.on_reload(move |t| s.lock().unwrap().push(t.len()));
    seen
}

const LIMIT: Duration = Duration::from_secs(5);

#[test]
fn reload_now_replaces_the_whole_table() {
    let dir = TempDir::new("now");
    let path = dir.write("rooms.txt", V1);
    let rooms: Reloadable<Room> = Reloadable::open(&path).unwrap();
    let seen = counter(&rooms);
    let old = rooms.load_full();
    assert_eq!(rooms.load().get(Room::BY_NAME, "attic").unwrap().seats, 2);

    std::fs::write(&path, V2).unwrap();
    let new = rooms.reload_now().unwrap();
    assert_eq!(new.len(), 3);
    let t = rooms.load();
    assert_eq!(t.len(), 3);
    assert_eq!(t.get(Room::BY_ID, &1).unwrap().seats, 10);
    assert!(t.get(Room::BY_NAME, "attic").is_none());
    assert_eq!(t.index(4).unwrap().name, "roof");
    assert_eq!(*seen.lock().unwrap(), [3]);
    // A version someone kept is unchanged.
    assert_eq!(old.len(), 2);
    assert_eq!(old.get(Room::BY_NAME, "attic").unwrap().id, 2);
    // Clones share the table.
    assert_eq!(rooms.clone().load().len(), 3);
}

#[test]
fn an_invalid_version_is_refused_and_the_old_table_stays() {
    let dir = TempDir::new("bad");
    let path = dir.write("rooms.txt", V1);
    let rooms: Reloadable<Room> = Options::new().reloadable(&path).unwrap();
    let seen = counter(&rooms);

    std::fs::write(&path, BAD).unwrap();
    let e = rooms.reload_now().unwrap_err();
    assert!(matches!(e, Error::DuplicateKey { .. }));
    assert!(
        e.to_string()
            .ends_with(":3: column 1 (房间): duplicate key 1 in index \"id\" (first at line 2)"),
        "{e}"
    );
    assert_eq!(rooms.load().len(), 2);
    assert_eq!(rooms.load().get(Room::BY_NAME, "attic").unwrap().id, 2);

    std::fs::remove_file(&path).unwrap();
    assert!(matches!(rooms.reload_now(), Err(Error::Io { .. })));
    assert_eq!(rooms.load().len(), 2);
    assert!(seen.lock().unwrap().is_empty());

    // An invalid first version is an error from `open`.
    let path = dir.write("broken.txt", BAD);
    assert!(Reloadable::<Room>::open(&path).is_err());
}

#[test]
fn the_watcher_reloads_a_file_rewritten_in_place() {
    let dir = TempDir::new("watch");
    let path = dir.write("rooms.txt", V1);
    let rooms: Reloadable<Room> = Reloadable::open(&path).unwrap();
    let seen = counter(&rooms);
    rooms.watch().unwrap();
    rooms.watch().unwrap(); // a second call is a no-op

    std::fs::write(&path, V2).unwrap();
    assert!(eventually(LIMIT, || rooms.load().len() == 3), "no reload");
    assert_eq!(rooms.load().get(Room::BY_NAME, "cellar").unwrap().id, 3);
    assert!(
        eventually(LIMIT, || *seen.lock().unwrap() == [3]),
        "{:?}",
        seen.lock().unwrap()
    );

    // An invalid version is logged and ignored; a valid one after it is taken.
    std::fs::write(&path, BAD).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(rooms.load().len(), 3);
    std::fs::write(&path, V1).unwrap();
    assert!(
        eventually(LIMIT, || rooms.load().len() == 2),
        "no reload after a bad version"
    );
    assert!(
        eventually(LIMIT, || *seen.lock().unwrap() == [3, 2]),
        "{:?}",
        seen.lock().unwrap()
    );
}

#[test]
fn the_watcher_sees_a_new_file_renamed_over_the_old_one() {
    let dir = TempDir::new("rename");
    let path = dir.write("rooms.txt", V1);
    let rooms: Reloadable<Room> = Reloadable::open(&path).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    rooms.on_reload(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    rooms.watch().unwrap();

    // Other files in the directory do not trigger reloads.
    dir.write("other.txt", "x");
    let tmp = dir.write(".rooms.txt.swp", V2);
    std::fs::rename(&tmp, &path).unwrap();
    assert!(
        eventually(LIMIT, || rooms.load().len() == 3),
        "no reload after rename"
    );
    assert!(eventually(LIMIT, || calls.load(Ordering::SeqCst) == 1));
    // Touching the file without changing it does not make a new version.
    std::fs::write(&path, V2).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_callback_does_not_stop_the_others() {
    let dir = TempDir::new("panic");
    let path = dir.write("rooms.txt", V1);
    let rooms: Reloadable<Room> = Reloadable::open(&path).unwrap();
    rooms.on_reload(|_| panic!("callback bug"));
    let seen = counter(&rooms);
    std::fs::write(&path, V2).unwrap();
    rooms.reload_now().unwrap();
    assert_eq!(*seen.lock().unwrap(), [3]);
}

#[cfg(all(unix, feature = "sighup"))]
#[test]
fn reload_on_sighup_needs_a_runtime() {
    let dir = TempDir::new("nort");
    let path = dir.write("rooms.txt", V1);
    let rooms: Reloadable<Room> = Reloadable::open(&path).unwrap();
    let e = rooms.reload_on_sighup().unwrap_err();
    assert!(e.to_string().contains("needs a tokio runtime"), "{e}");
}
