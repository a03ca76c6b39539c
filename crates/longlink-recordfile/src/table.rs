//! A loaded record file: the records in file order and their unique indexes.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::path::Path;

use crate::index::{ErasedIndex, IndexView, KeyMap};
use crate::{Error, Index, IndexKey, Key, Options, Record};

/// One built index of a table.
pub(crate) struct Slot {
    /// The name from [`Index::new`].
    pub(crate) name: &'static str,
    /// Key to position in `records`.
    pub(crate) map: Box<dyn ErasedIndex>,
}

/// The records of one file, in file order, with their unique indexes: leaf's
/// `RecordFile` after `Read`.
///
/// A table never changes once loaded; [`Reloadable`](crate::Reloadable)
/// replaces the whole table (every index with it) when the file changes.
pub struct Table<T> {
    /// The file's name as given, for messages.
    pub(crate) name: String,
    /// The records, in file order.
    pub(crate) records: Vec<T>,
    /// The indexes, in [`Record::indexes`] order.
    pub(crate) indexes: Vec<Slot>,
}

impl<T: Record> Table<T> {
    /// Loads a file with the default [`Options`] (leaf's: tabs, `#` comments,
    /// columns by position).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        Options::new().load(path)
    }

    /// Parses a file's content with the default [`Options`]; `name` is the
    /// file name that error messages show.
    pub fn parse(name: &str, text: &str) -> Result<Self, Error> {
        Options::new().parse(name, text)
    }
}

impl<T> Table<T> {
    /// The file's name, as given to the loader.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of records (leaf's `NumRecord`); the header is not one.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the file has no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The `i`-th record, from 0, in file order (leaf's `Record(i)`).
    pub fn record(&self, i: usize) -> Option<&T> {
        self.records.get(i)
    }

    /// All records, in file order.
    pub fn records(&self) -> &[T] {
        &self.records
    }

    /// The records, taken out of the table, in file order.
    pub fn into_records(self) -> Vec<T> {
        self.records
    }

    /// The records, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.records.iter()
    }

    /// The record whose key in `index` is `key`. The key's type is the
    /// index's (or one it borrows as, e.g. `&str` for a `String` key).
    ///
    /// `None` if no record has that key, or if `index` is not among
    /// [`Record::indexes`] (a bug, reported by a debug assertion).
    ///
    /// ```compile_fail
    /// # use longlink_recordfile::{Index, Table};
    /// # #[derive(serde::Deserialize)] struct Item { id: u32 }
    /// # impl longlink_recordfile::Record for Item {}
    /// # let items: Table<Item> = Table::parse("items.txt", "id\n1\n").unwrap();
    /// const BY_ID: Index<Item, u32> = Index::new("id");
    /// items.get(BY_ID, "1"); // a string key for a u32 index: does not compile
    /// ```
    pub fn get<K, Q>(&self, index: Index<T, K>, key: &Q) -> Option<&T>
    where
        K: IndexKey + Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self
            .indexes
            .iter()
            .find(|s| s.name == index.name())
            .and_then(|s| s.map.as_any().downcast_ref::<KeyMap<K>>());
        debug_assert!(
            map.is_some(),
            "index {:?} is not declared in Record::indexes() with this key type",
            index.name()
        );
        map?.0.get(key).map(|&i| &self.records[i])
    }

    /// The record with this key in the first index (leaf's `Index(key)`);
    /// `None` without indexes or for a key of another kind. Prefer
    /// [`get`](Table::get), which checks the key's type at compile time.
    pub fn index<'k>(&self, key: impl Into<Key<'k>>) -> Option<&T> {
        self.indexes(0)?.get(key)
    }

    /// The `i`-th index, in [`Record::indexes`] order (leaf's `Indexes(i)`).
    pub fn indexes(&self, i: usize) -> Option<IndexView<'_, T>> {
        self.indexes.get(i).map(|s| IndexView {
            name: s.name,
            index: &*s.map,
            records: &self.records,
        })
    }

    /// The number of indexes.
    pub fn num_indexes(&self) -> usize {
        self.indexes.len()
    }
}

impl<'a, T> IntoIterator for &'a Table<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}

impl<T: fmt::Debug> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.indexes.iter().map(|s| s.name).collect();
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("indexes", &names)
            .field("records", &self.records)
            .finish()
    }
}
