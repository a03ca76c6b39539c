//! How a record file is read: leaf's `Comma` and `Comment`, and header mapping.

use crate::read::DEFAULT_MAX_BYTES;

/// How to read a record file. The default is leaf's: cells separated by tabs,
/// lines starting with `#` are comments, columns map to fields by position; and
/// a file is at most [`DEFAULT_MAX_BYTES`] (64 MiB) and must be a regular file.
///
/// ```
/// use longlink_recordfile::{Options, Table};
///
/// #[derive(serde::Deserialize)]
/// struct Level { exp: u64, level: u8 }
/// impl longlink_recordfile::Record for Level {}
///
/// // Semicolons, `%` comments, columns found by header name.
/// let text = "level;exp\n% starting levels\n1;0\n2;100\n";
/// let table: Table<Level> = Options::new()
///     .separator(';')
///     .comment(Some('%'))
///     .header_names(true)
///     .parse("levels.txt", text)?;
/// assert_eq!(table.record(1).unwrap().exp, 100);
/// # Ok::<(), longlink_recordfile::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) separator: char,
    pub(crate) comment: Option<char>,
    pub(crate) header_names: bool,
    pub(crate) max_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            separator: '\t',
            comment: Some('#'),
            header_names: false,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Go's `validDelim`: what may separate cells or start a comment.
fn valid_delim(c: char) -> bool {
    !matches!(c, '\0' | '"' | '\r' | '\n' | '\u{fffd}')
}

impl Options {
    /// leaf's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cell separator (leaf's `Comma`; default tab).
    ///
    /// # Panics
    /// If `c` is `"`, `\r`, `\n`, NUL or U+FFFD, or is the comment character
    /// (Go's `encoding/csv` refuses these too).
    pub fn separator(mut self, c: char) -> Self {
        assert!(valid_delim(c), "invalid record file separator {c:?}");
        assert!(
            self.comment != Some(c),
            "the separator {c:?} is also the comment character"
        );
        self.separator = c;
        self
    }

    /// The comment character (leaf's `Comment`; default `#`); `None` for none.
    /// A line whose first character is this one is skipped.
    ///
    /// # Panics
    /// As [`separator`](Options::separator), for the same characters and for
    /// the separator itself.
    pub fn comment(mut self, c: Option<char>) -> Self {
        if let Some(c) = c {
            assert!(
                valid_delim(c),
                "invalid record file comment character {c:?}"
            );
            assert!(
                c != self.separator,
                "the comment character {c:?} is also the separator"
            );
        }
        self.comment = c;
        self
    }

    /// Map columns to fields by the header's names (the fields' serde names,
    /// spaces around header cells ignored) instead of by position. Every field
    /// needs a column; columns no field names are ignored. Off by default
    /// (leaf maps by position and its headers are free text).
    pub fn header_names(mut self, on: bool) -> Self {
        self.header_names = on;
        self
    }

    /// The most bytes a file may hold (default [`DEFAULT_MAX_BYTES`], 64 MiB). A longer
    /// one, or one that never ends, is refused with
    /// [`Error::TooLarge`](crate::Error::TooLarge) after reading at most one byte past the
    /// limit; a reloaded one keeps the old table.
    pub fn max_bytes(mut self, limit: u64) -> Self {
        self.max_bytes = limit;
        self
    }
}
