//! What can go wrong loading a record file, and where in the file it went wrong.

use std::fmt;
use std::path::PathBuf;

/// A place in a record file: the file, its line, and the column when known.
///
/// Displays as `items.txt:4: column 3 (price)`: lines count every line of the
/// file from 1 (the header, comments and blank lines included, and each line
/// of a quoted cell that holds newlines); columns count cells from 1, and the
/// header's text for the column follows in parentheses when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file's name as it was given to the loader.
    pub file: String,
    /// The 1-based line.
    pub line: usize,
    /// The 1-based column (cell) in the file, if the error is about one cell.
    pub column: Option<usize>,
    /// The header's text for that column, if the header has one.
    pub header: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(column) = self.column {
            write!(f, ": column {column}")?;
            if let Some(header) = self.header.as_deref().filter(|h| !h.is_empty()) {
                write!(f, " ({header})")?;
            }
        }
        Ok(())
    }
}

/// Why a record file did not load.
///
/// Every variant about the file's content carries a [`Location`], and its
/// message says what was expected, e.g.
/// `items.txt:4: column 3 (price): expected an integer (i64), found "abc"`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The path names something other than a regular file (a named pipe, a device such as
    /// `/dev/zero`, a directory, a socket), directly or through symlinks. It is refused
    /// without being read, and opening it does not block (a FIFO with no writer).
    #[error("{}: not a regular file ({kind}); a record file must be one", path.display())]
    NotAFile {
        /// The path as given.
        path: PathBuf,
        /// What it is instead: `"a named pipe (FIFO)"`, `"a character device"`, ...
        kind: &'static str,
    },
    /// The file holds more than [`Options::max_bytes`](crate::Options::max_bytes) bytes; at
    /// most one byte past the limit is read.
    #[error("{}: larger than the limit of {limit} bytes (Options::max_bytes)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The file is not UTF-8 (spreadsheets may export GBK or UTF-16: save as UTF-8).
    #[error("{at}: not valid UTF-8 (save the file as UTF-8)")]
    Encoding {
        /// The line holding the first invalid byte.
        at: Location,
    },
    /// A quoting error, as Go's `encoding/csv` reports it.
    #[error("{at}: {message}")]
    Syntax {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// The header is missing, or (with header-name mapping) lacks a field.
    #[error("{at}: {message}")]
    Header {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// A line has more or fewer cells than the record has fields.
    #[error("{at}: expected {expected} cells ({why}), found {found}")]
    FieldCount {
        /// Where.
        at: Location,
        /// Cells wanted.
        expected: usize,
        /// Cells on the line.
        found: usize,
        /// Where `expected` comes from: the record type's fields, or the header.
        why: String,
    },
    /// A cell does not parse as its field's type.
    #[error("{at}: {message}")]
    Cell {
        /// Where.
        at: Location,
        /// What was expected and what was found.
        message: String,
    },
    /// Two records have the same key in a unique index.
    #[error("{at}: duplicate key {key} in index \"{index}\" (first at line {first_line})")]
    DuplicateKey {
        /// The second occurrence.
        at: Location,
        /// The index's name.
        index: &'static str,
        /// The key, as text.
        key: String,
        /// The line of the first occurrence.
        first_line: usize,
    },
    /// The record type cannot be loaded from a record file (not a struct, an
    /// index names no field, two indexes share a name).
    #[error("record type {type_name}: {message}")]
    RecordType {
        /// The Rust type.
        type_name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The file watcher or the signal handler could not be set up.
    #[error("{}: cannot watch for changes: {message}", path.display())]
    Watch {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl Error {
    /// Where in the file the error is, if it is about the file's content.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Encoding { at }
            | Error::Syntax { at, .. }
            | Error::Header { at, .. }
            | Error::FieldCount { at, .. }
            | Error::Cell { at, .. }
            | Error::DuplicateKey { at, .. } => Some(at),
            Error::Io { .. }
            | Error::NotAFile { .. }
            | Error::TooLarge { .. }
            | Error::RecordType { .. }
            | Error::Watch { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_display() {
        let mut at = Location {
            file: "items.txt".into(),
            line: 4,
            column: Some(3),
            header: Some("price".into()),
        };
        assert_eq!(at.to_string(), "items.txt:4: column 3 (price)");
        at.header = Some(String::new());
        assert_eq!(at.to_string(), "items.txt:4: column 3");
        at.column = None;
        assert_eq!(at.to_string(), "items.txt:4");
    }
}
