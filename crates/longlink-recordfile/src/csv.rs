//! A port of Go's `encoding/csv` reader as leaf configures it (`Comma`,
//! `Comment`, no `LazyQuotes`, no `TrimLeadingSpace`), that also remembers on
//! which line of the file every cell starts.
//!
//! Go's rules kept here: lines end at `\n`, a `\r` just before it is dropped
//! (inside quoted cells too), and so is a `\r` at the very end of the file; a
//! line whose first character is the comment character is skipped, and so is
//! an empty line, but only between records, never inside a quoted cell; a cell
//! that starts with `"` is quoted and may hold separators, newlines and `""`;
//! a `"` anywhere in an unquoted cell is an error, and so is a quoted cell
//! whose closing quote is followed by anything but a separator or the end of
//! the line, or that never closes. One thing differs: a UTF-8 byte order mark
//! at the start of the text is dropped (Go keeps it in the first cell).

/// One cell and the line of the file it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CsvCell {
    /// The cell's text, quotes removed and `""` unescaped.
    pub(crate) text: String,
    /// 1-based line on which the cell starts.
    pub(crate) line: usize,
}

/// One record (a line, or several when a quoted cell holds newlines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CsvRow {
    /// 1-based line on which the record starts.
    pub(crate) line: usize,
    /// The cells, in file order.
    pub(crate) cells: Vec<CsvCell>,
}

/// A syntax error: where, and Go's description of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CsvError {
    /// 1-based line of the offending character.
    pub(crate) line: usize,
    /// 1-based index of the cell being read.
    pub(crate) cell: usize,
    /// What is wrong.
    pub(crate) message: &'static str,
}

/// Go's `ErrBareQuote`, reworded.
const BARE_QUOTE: &str =
    "bare \" in an unquoted cell (quote the whole cell and double the inner quotes)";
/// Go's `ErrQuote`, reworded.
const BAD_QUOTE: &str = "extraneous or missing \" in a quoted cell";

/// Reads records one at a time from a whole file held in memory.
pub(crate) struct CsvReader<'a> {
    /// The text not read yet.
    rest: &'a str,
    /// Lines read so far (the number of the last line read).
    line: usize,
    /// The cell separator (leaf's `Comma`).
    comma: char,
    /// The comment character (leaf's `Comment`), if any.
    comment: Option<char>,
}

impl<'a> CsvReader<'a> {
    /// A reader over `text`; a leading byte order mark is skipped.
    pub(crate) fn new(text: &'a str, comma: char, comment: Option<char>) -> Self {
        let rest = text.strip_prefix('\u{feff}').unwrap_or(text);
        CsvReader {
            rest,
            line: 0,
            comma,
            comment,
        }
    }

    /// Go's `readLine`: the next line without its `\n` (and without a `\r`
    /// before it), and whether it had a `\n`. `None` at the end of the text.
    fn read_line(&mut self) -> Option<(&'a str, bool)> {
        if self.rest.is_empty() {
            return None;
        }
        self.line += 1;
        let (line, nl) = match self.rest.find('\n') {
            Some(i) => {
                let line = &self.rest[..i];
                self.rest = &self.rest[i + 1..];
                (line, true)
            }
            None => (std::mem::take(&mut self.rest), false),
        };
        Some((line.strip_suffix('\r').unwrap_or(line), nl))
    }

    /// Go's `readRecord`: the next record, `None` at the end of the text.
    pub(crate) fn next_row(&mut self) -> Option<Result<CsvRow, CsvError>> {
        let (mut line, mut nl) = loop {
            let (line, nl) = self.read_line()?;
            if self.comment.is_some_and(|c| line.starts_with(c)) || line.is_empty() {
                continue;
            }
            break (line, nl);
        };
        let start = self.line;
        let mut cells = Vec::new();
        loop {
            let cell_line = self.line;
            let err = |line, cells: &Vec<CsvCell>, message| CsvError {
                line,
                cell: cells.len() + 1,
                message,
            };
            let Some(quoted) = line.strip_prefix('"') else {
                let (text, rest) = match line.find(self.comma) {
                    Some(i) => (&line[..i], Some(&line[i + self.comma.len_utf8()..])),
                    None => (line, None),
                };
                if text.contains('"') {
                    return Some(Err(err(self.line, &cells, BARE_QUOTE)));
                }
                cells.push(CsvCell {
                    text: text.to_owned(),
                    line: cell_line,
                });
                match rest {
                    Some(rest) => {
                        line = rest;
                        continue;
                    }
                    None => break,
                }
            };
            line = quoted;
            let mut text = String::new();
            let more = loop {
                if let Some(i) = line.find('"') {
                    text.push_str(&line[..i]);
                    line = &line[i + 1..];
                    match line.chars().next() {
                        Some('"') => {
                            text.push('"');
                            line = &line[1..];
                        }
                        Some(c) if c == self.comma => {
                            line = &line[c.len_utf8()..];
                            break true;
                        }
                        None => break false,
                        Some(_) => return Some(Err(err(self.line, &cells, BAD_QUOTE))),
                    }
                } else if nl {
                    text.push_str(line);
                    text.push('\n');
                    match self.read_line() {
                        Some((next, next_nl)) => (line, nl) = (next, next_nl),
                        None => return Some(Err(err(self.line, &cells, BAD_QUOTE))),
                    }
                } else {
                    return Some(Err(err(self.line, &cells, BAD_QUOTE)));
                }
            };
            cells.push(CsvCell {
                text,
                line: cell_line,
            });
            if !more {
                break;
            }
        }
        Some(Ok(CsvRow { line: start, cells }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row's start line, and each cell's text and line.
    type Rows = Vec<(usize, Vec<(String, usize)>)>;

    fn rows(text: &str) -> Result<Rows, CsvError> {
        let mut r = CsvReader::new(text, '\t', Some('#'));
        let mut out = Vec::new();
        while let Some(row) = r.next_row() {
            let row = row?;
            let cells = row.cells.into_iter().map(|c| (c.text, c.line)).collect();
            out.push((row.line, cells));
        }
        Ok(out)
    }

    fn texts(text: &str) -> Vec<Vec<String>> {
        let rows = rows(text).unwrap();
        rows.into_iter()
            .map(|(_, c)| c.into_iter().map(|(t, _)| t).collect())
            .collect()
    }

    #[test]
    fn plain_rows_comments_and_blank_lines() {
        let got = rows("h1\th2\n# note\n\n1\ta\n\r\n2\tb").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].0, 4);
        assert_eq!(got[2].0, 6);
        assert_eq!(got[2].1, vec![("2".into(), 6), ("b".into(), 6)]);
    }

    #[test]
    fn crlf_and_trailing_cr_are_dropped() {
        assert_eq!(
            texts("a\tb\r\nc\td\r"),
            vec![vec!["a", "b"], vec!["c", "d"]]
        );
        // A lone \r inside a line is data, as in Go.
        assert_eq!(texts("a\rb\tc\n"), vec![vec!["a\rb", "c"]]);
    }

    #[test]
    fn quoted_cells_hold_tabs_newlines_and_quotes() {
        let got = rows("\"a\tb\"\t\"x\r\ny\"\t\"say \"\"hi\"\"\"\nnext\t\t\n").unwrap();
        assert_eq!(
            got[0].1,
            vec![
                ("a\tb".into(), 1),
                ("x\ny".into(), 1),
                ("say \"hi\"".into(), 2)
            ]
        );
        assert_eq!(got[1].0, 3);
        assert_eq!(got[1].1.len(), 3);
    }

    #[test]
    fn a_comment_inside_a_quoted_cell_is_data() {
        assert_eq!(texts("\"a\n#b\n\n\"\tc"), vec![vec!["a\n#b\n\n", "c"]]);
    }

    #[test]
    fn quote_errors() {
        let e = rows("h\n1\tab\"c\n").unwrap_err();
        assert_eq!((e.line, e.cell, e.message), (2, 2, BARE_QUOTE));
        let e = rows("\"ab\"c\n").unwrap_err();
        assert_eq!((e.line, e.cell, e.message), (1, 1, BAD_QUOTE));
        let e = rows("x\t\"open\nstill open").unwrap_err();
        assert_eq!((e.line, e.cell, e.message), (2, 2, BAD_QUOTE));
    }

    #[test]
    fn bom_and_other_separators() {
        assert_eq!(texts("\u{feff}#c\na\tb"), vec![vec!["a", "b"]]);
        let mut r = CsvReader::new("a;b|c\n;x", ';', None);
        let row = r.next_row().unwrap().unwrap();
        assert_eq!(row.cells.len(), 2);
        let row = r.next_row().unwrap().unwrap();
        assert_eq!(row.cells[0].text, "");
        assert!(r.next_row().is_none());
    }

    #[test]
    fn empty_input_has_no_rows() {
        assert!(rows("").unwrap().is_empty());
        assert!(rows("\n\n# only comments\n").unwrap().is_empty());
    }
}
