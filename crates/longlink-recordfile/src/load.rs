//! From text to a [`Table`]: the header, the rows, the cells, the indexes, and
//! an error that says where when any of them is wrong.

use std::path::Path;

use crate::csv::{CsvError, CsvReader};
use crate::de;
use crate::read::read_file;
use crate::shape::{self, Shape};
use crate::table::Slot;
use crate::{Error, Location, Options, Record, Table};

/// Everything an error message needs to say where.
struct Here<'a> {
    file: &'a str,
    header: &'a [String],
}

impl Here<'_> {
    /// `line`, and `column` (1-based) with its header text.
    fn at(&self, line: usize, column: Option<usize>) -> Location {
        Location {
            file: self.file.to_owned(),
            line,
            column,
            header: column.and_then(|c| self.header.get(c - 1)).cloned(),
        }
    }

    fn syntax(&self, e: CsvError) -> Error {
        Error::Syntax {
            at: self.at(e.line, Some(e.cell)),
            message: e.message.to_owned(),
        }
    }
}

/// Parses `text` as a record file of `T`s.
pub(crate) fn build<T: Record>(opts: &Options, file: &str, text: &str) -> Result<Table<T>, Error> {
    let type_name = std::any::type_name::<T>();
    let refuse = |message: String| Error::RecordType { type_name, message };
    let shape = shape::shape_of::<T>().map_err(refuse)?;
    let defs = T::indexes();
    // The field each index keys on, by position in the record.
    let mut index_fields = Vec::with_capacity(defs.len());
    for (i, def) in defs.iter().enumerate() {
        if defs[..i].iter().any(|d| d.name == def.name) {
            return Err(refuse(format!("two indexes are named {:?}", def.name)));
        }
        let Some(field) = shape.fields.iter().position(|f| f == def.name) else {
            return Err(refuse(format!(
                "index {:?} names no field (the fields are: {})",
                def.name,
                shape.fields.join(", ")
            )));
        };
        index_fields.push(field);
    }

    let mut reader = CsvReader::new(text, opts.separator, opts.comment);
    let no_header = Here { file, header: &[] };
    let header_row = match reader.next_row() {
        None => {
            return Err(Error::Header {
                at: no_header.at(1, None),
                message: "no header line (the first line of a record file is its header)".into(),
            });
        }
        Some(row) => row.map_err(|e| no_header.syntax(e))?,
    };
    let header: Vec<String> = header_row.cells.into_iter().map(|c| c.text).collect();
    let here = Here {
        file,
        header: &header,
    };
    let (columns, why) = map_columns(opts, &shape, &header, |message| Error::Header {
        at: here.at(header_row.line, None),
        message,
    })?;
    let width = if opts.header_names {
        header.len()
    } else {
        shape.fields.len()
    };
    if header.len() != width {
        return Err(Error::FieldCount {
            at: here.at(header_row.line, None),
            expected: width,
            found: header.len(),
            why,
        });
    }

    let mut records = Vec::new();
    // For each index, the line of each record's key cell.
    let mut key_lines: Vec<Vec<usize>> = vec![Vec::new(); defs.len()];
    while let Some(row) = reader.next_row() {
        let row = row.map_err(|e| here.syntax(e))?;
        if row.cells.len() != width {
            return Err(Error::FieldCount {
                at: here.at(row.line, None),
                expected: width,
                found: row.cells.len(),
                why: why.clone(),
            });
        }
        let cells: Vec<&str> = columns
            .iter()
            .map(|&c| row.cells[c].text.as_str())
            .collect();
        let record = de::from_cells::<T>(&cells).map_err(|e| Error::Cell {
            at: match e.cell {
                Some(field) => here.at(row.cells[columns[field]].line, Some(columns[field] + 1)),
                None => here.at(row.line, None),
            },
            message: e.message,
        })?;
        for (lines, &field) in key_lines.iter_mut().zip(&index_fields) {
            lines.push(row.cells[columns[field]].line);
        }
        records.push(record);
    }

    let mut indexes = Vec::with_capacity(defs.len());
    for ((def, lines), field) in defs.into_iter().zip(&key_lines).zip(index_fields) {
        let map = (def.build)(&records).map_err(|dup| Error::DuplicateKey {
            at: here.at(lines[dup.second], Some(columns[field] + 1)),
            index: def.name,
            key: dup.key,
            first_line: lines[dup.first],
        })?;
        indexes.push(Slot {
            name: def.name,
            map,
        });
    }
    Ok(Table {
        name: file.to_owned(),
        records,
        indexes,
    })
}

/// For each field, its column (0-based); and what sets the cell count, for
/// messages.
fn map_columns(
    opts: &Options,
    shape: &Shape,
    header: &[String],
    bad: impl Fn(String) -> Error,
) -> Result<(Vec<usize>, String), Error> {
    if !opts.header_names {
        let why = format!("one per field of {}", shape.name);
        return Ok(((0..shape.fields.len()).collect(), why));
    }
    let mut columns = Vec::with_capacity(shape.fields.len());
    for field in &shape.fields {
        let mut found = header.iter().enumerate().filter(|(_, h)| h.trim() == field);
        match (found.next(), found.next()) {
            (Some((c, _)), None) => columns.push(c),
            (None, _) => {
                return Err(bad(format!(
                    "no column named {field:?} in the header (it has: {})",
                    header.join(", ")
                )));
            }
            (Some((a, _)), Some((b, _))) => {
                return Err(bad(format!(
                    "two columns are named {field:?} (columns {} and {})",
                    a + 1,
                    b + 1
                )));
            }
        }
    }
    Ok((columns, "as many as the header has".to_owned()))
}

/// Reading a table: from a file, from text, from bytes.
impl Options {
    /// Reads and parses the file at `path` (symlinks followed). Anything but a regular
    /// file (a named pipe, a device, a directory) is refused with [`Error::NotAFile`]
    /// without blocking; a file over [`max_bytes`](Options::max_bytes) with
    /// [`Error::TooLarge`].
    pub fn load<T: Record>(&self, path: impl AsRef<Path>) -> Result<Table<T>, Error> {
        let path = path.as_ref();
        let bytes = read_file(path, self.max_bytes)?;
        self.parse_bytes(&path.display().to_string(), &bytes)
    }

    /// Parses a file's content; `name` is the file name error messages show.
    pub fn parse<T: Record>(&self, name: &str, text: &str) -> Result<Table<T>, Error> {
        build(self, name, text)
    }

    /// Parses raw bytes, which must be UTF-8.
    pub(crate) fn parse_bytes<T: Record>(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<Table<T>, Error> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let before = &bytes[..e.valid_up_to()];
            Error::Encoding {
                at: Location {
                    file: name.to_owned(),
                    line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
                    column: None,
                    header: None,
                },
            }
        })?;
        self.parse(name, text)
    }
}
