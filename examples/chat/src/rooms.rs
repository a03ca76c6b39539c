//! The room table (`[chat] rooms_file`): which rooms exist, how many may watch each, and
//! which words are not said there. A leaf record file, reloaded while the server runs.
//!
//! Columns, in order (the header line is skipped; cells separated by tabs):
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `room_id` | u64 | the room (unique: the table's index) |
//! | `name` | string | its name |
//! | `max_online` | u32 | most watchers at once; `0` = no limit |
//! | `banned_words` | JSON array of strings | a room message containing one (any case) is refused |
//!
//! With no table every room is open, as without this feature. With one, only its rooms can
//! be watched (`S2C_Error{code: 8}` otherwise), a full room refuses a new watcher
//! (`S2C_Error{code: 6}`), and a room message with a banned word is not delivered
//! (`S2C_Error{code: 7}`); a refused watch keeps the previous one. A change to the file is in
//! force within two seconds; a broken new version is logged and the old table stays.
//!
//! The path may be a symlink: a change to the file it leads to (in another directory) or
//! to the links on the way (a Kubernetes ConfigMap, `rooms.txt -> ..data/rooms.txt` with
//! `..data` swapped by a rename) is seen as well. What is read must be a regular file of at
//! most `[chat] rooms_file_max_bytes` (64 MiB): a named pipe, a device (`/dev/zero`) or a
//! longer file is refused with an error logged, without blocking, and the old table stays;
//! a good version after it loads as usual. SIGHUP reloads it too.

use std::path::Path;

use longlink::ModuleRef;
use longlink_recordfile::{Index, IndexDef, Options, Record, Reloadable};

use crate::chat::Chat;

/// One row of the room table.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RoomRow {
    /// The room.
    pub room_id: u64,
    /// Its name.
    pub name: String,
    /// Most watchers at once; 0 = no limit.
    pub max_online: u32,
    /// Words refused in its messages (compared without case).
    pub banned_words: Vec<String>,
}

impl RoomRow {
    /// The table's index.
    pub const BY_ID: Index<RoomRow, u64> = Index::new("room_id");

    /// Whether `text` contains one of the room's banned words, in any case.
    pub fn bans(&self, text: &str) -> Option<&str> {
        let text = text.to_lowercase();
        self.banned_words
            .iter()
            .find(|w| !w.is_empty() && text.contains(&w.to_lowercase()))
            .map(String::as_str)
    }
}

impl Record for RoomRow {
    fn indexes() -> Vec<IndexDef<Self>> {
        vec![Self::BY_ID.key(|r| r.room_id)]
    }
}

/// Why a watch or a room message is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The room is not in the table.
    Unknown,
    /// The room has `max_online` watchers.
    Full(u32),
    /// The text contains this banned word.
    Banned(String),
}

/// The rules the chat module applies: none, or a reloadable table's.
#[derive(Debug, Clone, Default)]
pub struct Rooms {
    table: Option<Reloadable<RoomRow>>,
}

impl Rooms {
    /// Every room open.
    pub fn open() -> Rooms {
        Rooms::default()
    }

    /// Loads `path`, at most `max_bytes` of it (an error names its file, line and column),
    /// watches it for changes and reloads on SIGHUP too. Needs a tokio runtime.
    pub fn load(path: &Path, max_bytes: u64) -> Result<Rooms, longlink_recordfile::Error> {
        let table = Options::new().max_bytes(max_bytes).reloadable(path)?;
        table.watch()?;
        table.reload_on_sighup()?;
        Ok(Rooms { table: Some(table) })
    }

    /// Tells the chat module, on its own task, when a new version is in force.
    pub fn notify(&self, chat: &ModuleRef<Chat>) {
        if let Some(table) = &self.table {
            let chat = chat.clone();
            table.on_reload(move |t| {
                let rooms = t.len();
                let _ = chat.try_cast(move |_| tracing::info!(rooms, "room table reloaded"));
            });
        }
    }

    /// May a connection watch `room_id`, which has `watchers` other watchers now?
    pub fn check_watch(&self, room_id: u64, watchers: usize) -> Result<(), Refusal> {
        let Some(table) = &self.table else {
            return Ok(());
        };
        let table = table.load();
        let row = table
            .get(RoomRow::BY_ID, &room_id)
            .ok_or(Refusal::Unknown)?;
        if row.max_online > 0 && watchers >= row.max_online as usize {
            return Err(Refusal::Full(row.max_online));
        }
        Ok(())
    }

    /// May `text` be said in `room_id`?
    pub fn check_text(&self, room_id: u64, text: &str) -> Result<(), Refusal> {
        let Some(table) = &self.table else {
            return Ok(());
        };
        let table = table.load();
        match table.get(RoomRow::BY_ID, &room_id) {
            None => Err(Refusal::Unknown),
            Some(row) => match row.bans(text) {
                Some(word) => Err(Refusal::Banned(word.to_owned())),
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_table_loads_and_its_rules_hold() {
        let sample = include_str!("../config/rooms.txt");
        let table = longlink_recordfile::Table::<RoomRow>::parse("rooms.txt", sample).unwrap();
        let lobby = table.get(RoomRow::BY_ID, &1).unwrap();
        assert_eq!(lobby.max_online, 0);
        assert!(table.len() >= 3);
        let small = table.iter().find(|r| r.max_online > 0).unwrap();
        assert!(small.max_online >= 1);
        let strict = table.iter().find(|r| !r.banned_words.is_empty()).unwrap();
        let word = strict.banned_words[0].to_uppercase();
        assert_eq!(
            strict.bans(&format!("say {word}!")),
            Some(strict.banned_words[0].as_str())
        );
        assert_eq!(strict.bans("hello"), None);
    }
}
