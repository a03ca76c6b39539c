#![doc = include_str!("../README.md")]
//!
//! leaf's record files for Rust: config tables (items, levels, rooms, drop
//! rates) kept as tab-separated text exported from spreadsheets.
//!
//! # The format (leaf's, unchanged)
//!
//! Cells are separated by tabs (shown as `⇥`):
//!
//! ```text
//! 数字索引⇥字符串索引⇥数字类型⇥字符串类型⇥数组类型
//! # a comment line
//! 1⇥one⇥0x1F⇥knife⇥"[1, 2]"
//! 2⇥two⇥-017⇥"cat ""the cat"""⇥[3,4]
//! ```
//!
//! - Go's `encoding/csv` with `Comma = '\t'`, `Comment = '#'`: a line whose
//!   first character is `#` is a comment; empty lines are skipped; `\r\n`
//!   works; a cell starting with `"` is quoted (RFC 4180) and may hold tabs,
//!   newlines and `""`; a `"` inside an unquoted cell is an error. A UTF-8 byte
//!   order mark at the start is ignored.
//! - The first line is the header. It is skipped, but must have as many cells
//!   as the rows: columns map to the record's fields **by position**, not by
//!   name (headers are descriptions, often in Chinese). Every row must have
//!   exactly one cell per field. [`Options::header_names`] maps by name instead.
//! - Cells are parsed by the field's type, as leaf does: `bool` as Go's
//!   `ParseBool` (`1 t T TRUE true True 0 f F FALSE false False`); integers as
//!   `ParseInt(s, 0, bits)` (`0x1F`, `0o17`, `0b101`, `017` octal, `1_000`, a
//!   sign; unsigned types take no sign; out of range is an error); floats as
//!   `ParseFloat`; strings as they are; `Option<_>`: an empty cell is `None`;
//!   arrays, `Vec`s, tuples, maps and nested structs as JSON (`[1,2,3]`,
//!   `{"a":1}`, `[[1,2],[3]]`). An enum takes a bare variant name (`Sword`)
//!   or JSON. A field of type [`serde::de::IgnoredAny`] takes a column without
//!   reading it (leaf's unexported fields).
//! - Fields are serde's: `#[serde(rename)]`, `#[serde(skip)]` and newtypes
//!   work; `#[serde(flatten)]` and `#[serde(alias)]` do not (serde counts an
//!   alias as one more field).
//!
//! Errors say where and what: `items.txt:4: column 3 (price): expected an
//! integer (i64), found "abc"`; lines are the file's own (header, comments and
//! each line of a multi-line cell counted).
//!
//! # Tables and indexes
//!
//! ```
//! use longlink_recordfile::{Index, IndexDef, Record, Table};
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct Item {
//!     id: u32,
//!     name: String,
//!     price: i64,
//!     tags: Vec<String>,
//! }
//!
//! impl Item {
//!     const BY_ID: Index<Item, u32> = Index::new("id");
//!     const BY_NAME: Index<Item, String> = Index::new("name");
//! }
//!
//! impl Record for Item {
//!     fn indexes() -> Vec<IndexDef<Self>> {
//!         vec![Self::BY_ID.key(|r| r.id), Self::BY_NAME.key(|r| r.name.clone())]
//!     }
//! }
//!
//! // A JSON cell holding quotes is quoted, its quotes doubled (as spreadsheets export it).
//! let text = "编号\t名字\t价格\t标签\n\
//!             1\tknife\t0x10\t\"[\"\"sharp\"\"]\"\n\
//!             2\tcat\t-5\t[]\n";
//! let items: Table<Item> = Table::parse("items.txt", text)?; // or Table::load(path)
//!
//! assert_eq!(items.len(), 2);
//! assert_eq!(items.get(Item::BY_ID, &1).unwrap().price, 16);
//! assert_eq!(items.get(Item::BY_NAME, "cat").unwrap().id, 2);
//! // leaf's Record(i), Index(key) (the first index) and Indexes(i):
//! assert_eq!(items.record(0).unwrap().tags, ["sharp"]);
//! assert_eq!(items.index(2).unwrap().name, "cat");
//! assert_eq!(items.indexes(1).unwrap().get("knife").unwrap().id, 1);
//!
//! let bad = "id\tname\tprice\ttags\n# on line 2\n1\tknife\tabc\t[]\n";
//! let err = Table::<Item>::parse("items.txt", bad).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     r#"items.txt:3: column 3 (price): expected an integer (i64), found "abc""#
//! );
//! # Ok::<(), longlink_recordfile::Error>(())
//! ```
//!
//! An [`Index`] handle is typed by its key, so `items.get(Item::BY_ID, "x")`
//! does not compile, and keys are sealed to scalars ([`IndexKey`]: integers,
//! `String`, `bool`, `char`), so an index on a struct, array, `Vec` or map
//! field, which leaf refuses at run time, does not compile either. A duplicate
//! key fails the load, naming both lines.
//!
//! # Reloading
//!
//! [`Reloadable`] holds the table in force behind `arc-swap`: modules call
//! [`Reloadable::load`] on the hot path (no lock, no copy). It reloads when the
//! file changes ([`Reloadable::watch`]), on SIGHUP
//! ([`Reloadable::reload_on_sighup`], feature `sighup`, on by default) or when
//! asked ([`Reloadable::reload_now`]); a valid version replaces the table with
//! all its indexes at once, an invalid one is logged and the old one stays, and
//! [`Reloadable::on_reload`] callbacks hear of each new version.
//!
//! The path may be a symlink, or a chain of them: the watcher follows what the
//! path resolves to (a target edited in another directory, Kubernetes'
//! ConfigMap layout `rooms.txt -> ..data/rooms.txt` with `..data` swapped by
//! rename). What is read must be a regular file of at most
//! [`Options::max_bytes`]: a named pipe or a device put at the path is refused
//! without blocking, and the old table stays.
//!
//! # Layout
//!
//! `csv` (Go's reader), `strconv` and `float` (Go's number and bool rules),
//! `shape` and `de` (the record's fields; the serde deserializer over a row),
//! `index` ([`Record`], [`Index`], [`Key`]), `load`
//! (text to table, with error locations), `table`, `options`, `read` (a
//! regular file only, opened without blocking, size-capped), `reload`,
//! `resolve` (what a path resolves through) and `watch` (the handle, the file
//! watcher and SIGHUP), `error`.

mod csv;
mod de;
mod error;
mod float;
mod index;
mod load;
mod options;
mod read;
mod reload;
mod resolve;
mod shape;
mod strconv;
mod table;
mod watch;

pub use error::{Error, Location};
pub use index::{Index, IndexDef, IndexKey, IndexView, Key, Record};
pub use options::Options;
pub use read::DEFAULT_MAX_BYTES;
pub use reload::{Reloadable, TableGuard};
pub use table::Table;
