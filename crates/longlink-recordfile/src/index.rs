//! Declaring records and their unique indexes: the [`Record`] trait, typed
//! [`Index`] handles, the sealed [`IndexKey`] trait, and leaf's untyped [`Key`].

use std::any::Any;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;

/// A row type of a record file: a struct deriving `serde::Deserialize` whose
/// fields are the file's columns, in order.
///
/// Implement [`indexes`](Record::indexes) to declare unique indexes (leaf's
/// `"index"` tag); leave the default for a table without any.
///
/// ```
/// use longlink_recordfile::{Index, IndexDef, Record};
///
/// #[derive(serde::Deserialize)]
/// struct Item { id: u32, name: String, price: i64 }
///
/// impl Item {
///     const BY_ID: Index<Item, u32> = Index::new("id");
///     const BY_NAME: Index<Item, String> = Index::new("name");
/// }
///
/// impl Record for Item {
///     fn indexes() -> Vec<IndexDef<Self>> {
///         vec![Self::BY_ID.key(|r| r.id), Self::BY_NAME.key(|r| r.name.clone())]
///     }
/// }
/// ```
pub trait Record: DeserializeOwned + 'static {
    /// The unique indexes, in leaf's order: the first one is what
    /// [`Table::index`](crate::Table::index) looks in.
    fn indexes() -> Vec<IndexDef<Self>> {
        Vec::new()
    }
}

mod sealed {
    use super::Key;
    use std::collections::HashMap;

    /// Implemented only in this crate, for the scalar key types.
    pub trait Sealed: Sized {
        fn as_key(&self) -> Key<'_>;
        fn lookup(map: &HashMap<Self, usize>, key: &Key<'_>) -> Option<usize>;
    }
}

/// A type that can key a unique index: `bool`, `char`, the integers up to 64
/// bits, `String`.
///
/// Sealed: structs, arrays, `Vec`s, maps and floats cannot be index keys, so an
/// index on such a field (which leaf refuses when the table is created) does
/// not compile here:
///
/// ```compile_fail
/// # use longlink_recordfile::Index;
/// # #[derive(serde::Deserialize)] struct Item { tags: Vec<String> }
/// const BY_TAGS: Index<Item, Vec<String>> = Index::new("tags");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot key an index",
    label = "not an index key type",
    note = "index keys are integers (up to 64 bits), `String`, `bool` or `char`; \
            leaf refuses indexes on structs, arrays, slices and maps"
)]
pub trait IndexKey:
    sealed::Sealed + Eq + Hash + Clone + fmt::Debug + Send + Sync + 'static
{
}

/// A key of any index, untyped, for leaf's [`Table::index`](crate::Table::index)
/// and [`Table::indexes`](crate::Table::indexes). Integers of every width meet
/// as [`Key::Int`], so `table.index(2)` finds a `u32` key 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Key<'a> {
    /// A `bool` key.
    Bool(bool),
    /// An integer key of any width.
    Int(i128),
    /// A `char` key.
    Char(char),
    /// A string key.
    Str(&'a str),
}

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Bool(b) => write!(f, "{b}"),
            Key::Int(i) => write!(f, "{i}"),
            Key::Char(c) => write!(f, "{c:?}"),
            Key::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl<'a> From<&'a str> for Key<'a> {
    fn from(s: &'a str) -> Self {
        Key::Str(s)
    }
}

impl<'a> From<&'a String> for Key<'a> {
    fn from(s: &'a String) -> Self {
        Key::Str(s)
    }
}

impl From<bool> for Key<'_> {
    fn from(b: bool) -> Self {
        Key::Bool(b)
    }
}

impl From<char> for Key<'_> {
    fn from(c: char) -> Self {
        Key::Char(c)
    }
}

impl sealed::Sealed for String {
    fn as_key(&self) -> Key<'_> {
        Key::Str(self)
    }
    fn lookup(map: &HashMap<Self, usize>, key: &Key<'_>) -> Option<usize> {
        match key {
            Key::Str(s) => map.get(*s).copied(),
            _ => None,
        }
    }
}
impl IndexKey for String {}

/// `Sealed` and `IndexKey` for the types a [`Key`] variant holds as is.
macro_rules! simple_keys {
    ($($ty:ty => $variant:ident),*) => {$(
        impl sealed::Sealed for $ty {
            fn as_key(&self) -> Key<'_> {
                Key::$variant(*self)
            }
            fn lookup(map: &HashMap<Self, usize>, key: &Key<'_>) -> Option<usize> {
                match key {
                    Key::$variant(k) => map.get(k).copied(),
                    _ => None,
                }
            }
        }
        impl IndexKey for $ty {}
    )*};
}
simple_keys!(bool => Bool, char => Char);

/// `Sealed`, `IndexKey` and `From<int> for Key` for the integer types.
macro_rules! int_keys {
    ($($ty:ty),*) => {$(
        impl sealed::Sealed for $ty {
            fn as_key(&self) -> Key<'_> {
                Key::Int(*self as i128)
            }
            fn lookup(map: &HashMap<Self, usize>, key: &Key<'_>) -> Option<usize> {
                match key {
                    Key::Int(i) => <$ty>::try_from(*i).ok().and_then(|k| map.get(&k).copied()),
                    _ => None,
                }
            }
        }
        impl IndexKey for $ty {}
        impl From<$ty> for Key<'_> {
            fn from(i: $ty) -> Self {
                Key::Int(i as i128)
            }
        }
    )*};
}
int_keys!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

/// A typed handle on one unique index of `T`, keyed by `K`: declare it as a
/// constant, register it in [`Record::indexes`] with [`Index::key`], and look
/// up with [`Table::get`](crate::Table::get). A key of another type does not
/// compile.
pub struct Index<T, K: IndexKey> {
    name: &'static str,
    _marker: PhantomData<fn(&T) -> K>,
}

impl<T, K: IndexKey> Index<T, K> {
    /// A handle on the index called `name`: the serde name of the field it
    /// indexes (its column in error messages; for tuple structs `"0"`, `"1"`...).
    pub const fn new(name: &'static str) -> Self {
        Index {
            name,
            _marker: PhantomData,
        }
    }

    /// The index's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<T: 'static, K: IndexKey> Index<T, K> {
    /// Declares this index, taking each record's key with `key` (usually a
    /// field: `|r| r.id`, or `|r| r.name.clone()`). Runs only while loading.
    pub fn key<F>(self, key: F) -> IndexDef<T>
    where
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        IndexDef {
            name: self.name,
            build: Box::new(move |records| {
                let mut map = HashMap::with_capacity(records.len());
                for (row, record) in records.iter().enumerate() {
                    match map.entry(key(record)) {
                        Entry::Vacant(slot) => {
                            slot.insert(row);
                        }
                        Entry::Occupied(first) => {
                            return Err(Duplicate {
                                first: *first.get(),
                                second: row,
                                key: first.key().as_key().to_string(),
                            });
                        }
                    }
                }
                Ok(Box::new(KeyMap(map)))
            }),
        }
    }
}

impl<T, K: IndexKey> Clone for Index<T, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, K: IndexKey> Copy for Index<T, K> {}

impl<T, K: IndexKey> fmt::Debug for Index<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Index").field(&self.name).finish()
    }
}

/// Builds one index over the loaded records.
type Build<T> = dyn Fn(&[T]) -> Result<Box<dyn ErasedIndex>, Duplicate> + Send + Sync;

/// One index as [`Record::indexes`] declares it; made by [`Index::key`].
pub struct IndexDef<T> {
    pub(crate) name: &'static str,
    pub(crate) build: Box<Build<T>>,
}

impl<T> fmt::Debug for IndexDef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexDef")
            .field("name", &self.name)
            .finish()
    }
}

/// Two records (by position) with the same key.
#[derive(Debug)]
pub(crate) struct Duplicate {
    pub(crate) first: usize,
    pub(crate) second: usize,
    pub(crate) key: String,
}

/// An index with its key type erased, so a table can hold several.
pub(crate) trait ErasedIndex: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn get_dyn(&self, key: &Key<'_>) -> Option<usize>;
    fn len(&self) -> usize;
    fn entries(&self) -> Box<dyn Iterator<Item = (Key<'_>, usize)> + '_>;
}

/// An index: key to record position.
pub(crate) struct KeyMap<K>(pub(crate) HashMap<K, usize>);

impl<K: IndexKey> ErasedIndex for KeyMap<K> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn get_dyn(&self, key: &Key<'_>) -> Option<usize> {
        K::lookup(&self.0, key)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn entries(&self) -> Box<dyn Iterator<Item = (Key<'_>, usize)> + '_> {
        Box::new(self.0.iter().map(|(k, &i)| (k.as_key(), i)))
    }
}

/// One index of a loaded table, untyped, as leaf's `Indexes(i)` map.
pub struct IndexView<'a, T> {
    pub(crate) name: &'static str,
    pub(crate) index: &'a dyn ErasedIndex,
    pub(crate) records: &'a [T],
}

impl<'a, T> IndexView<'a, T> {
    /// The index's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How many keys (as many as records).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record with this key; a key of the wrong kind finds nothing.
    pub fn get<'k>(&self, key: impl Into<Key<'k>>) -> Option<&'a T> {
        let records = self.records;
        self.index.get_dyn(&key.into()).map(|i| &records[i])
    }

    /// Every key with its record, in no particular order (as a Go map).
    pub fn iter(&self) -> impl Iterator<Item = (Key<'a>, &'a T)> + 'a {
        let records = self.records;
        self.index.entries().map(move |(k, i)| (k, &records[i]))
    }
}

impl<T> fmt::Debug for IndexView<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexView")
            .field("name", &self.name)
            .field("len", &self.len())
            .finish()
    }
}
