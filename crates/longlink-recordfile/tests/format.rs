//! The file format: quoting, line numbers, BOM, comments, `\r\n`, and the
//! options (separator, comment character, header-name mapping).

use longlink_recordfile::{Error, Index, IndexDef, Options, Record, Table};
use serde::Deserialize;

#[derive(Debug, PartialEq, Deserialize)]
struct Row {
    id: u32,
    text: String,
    n: i32,
}

impl Row {
    const BY_ID: Index<Row, u32> = Index::new("id");
}

impl Record for Row {
    fn indexes() -> Vec<IndexDef<Self>> {
        vec![Self::BY_ID.key(|r| r.id)]
    }
}

fn texts(t: &Table<Row>) -> Vec<&str> {
    t.iter().map(|r| r.text.as_str()).collect()
}

#[test]
fn quoted_cells_hold_tabs_newlines_and_quotes() {
    let text = "id\ttext\tn\n\
                1\t\"a\tb\"\t1\n\
                2\t\"two\nlines\"\t2\n\
                3\t\"say \"\"hi\"\"\"\t3\n\
                4\t\"\"\t4\n";
    let t: Table<Row> = Table::parse("q.txt", text).unwrap();
    assert_eq!(texts(&t), ["a\tb", "two\nlines", "say \"hi\"", ""]);
}

#[test]
fn line_numbers_after_a_multi_line_cell_stay_right() {
    let text = "id\ttext\tn\n\
                1\t\"one\ntwo\nthree\"\t1\n\
                # comment\n\
                \n\
                2\tok\tx\n";
    let e = Table::<Row>::parse("lines.txt", text).unwrap_err();
    assert_eq!(e.location().unwrap().line, 7);
    assert_eq!(
        e.to_string(),
        "lines.txt:7: column 3 (n): expected an integer (i32), found \"x\""
    );
    // A cell that follows a multi-line cell on the same record is on the later line.
    let text = "id\ttext\tn\n1\t\"a\nb\"\tbad\n";
    let e = Table::<Row>::parse("lines.txt", text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "lines.txt:3: column 3 (n): expected an integer (i32), found \"bad\""
    );
}

#[test]
fn a_bare_quote_in_an_unquoted_cell_is_an_error() {
    let e = Table::<Row>::parse("bare.txt", "id\ttext\tn\n1\tsay \"hi\"\t1\n").unwrap_err();
    assert!(matches!(e, Error::Syntax { .. }));
    assert!(
        e.to_string()
            .starts_with("bare.txt:2: column 2 (text): bare \" in an unquoted cell"),
        "{e}"
    );
    let e = Table::<Row>::parse("q.txt", "id\ttext\tn\n1\t\"a\"b\t1\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "q.txt:2: column 2 (text): extraneous or missing \" in a quoted cell"
    );
    let e =
        Table::<Row>::parse("q.txt", "id\ttext\tn\n1\t\"never closed\t1\n2\tx\t2\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "q.txt:3: column 2 (text): extraneous or missing \" in a quoted cell"
    );
}

#[test]
fn bom_comments_blank_lines_and_crlf() {
    let text =
        "\u{feff}id\ttext\tn\r\n# a comment\r\n\r\n1\tone\t1\r\n#2\tcommented\t2\r\n3\tthree\t3";
    let t: Table<Row> = Table::parse("crlf.txt", text).unwrap();
    assert_eq!(texts(&t), ["one", "three"]);
    assert_eq!(t.get(Row::BY_ID, &3).unwrap().n, 3);
    // A quoted cell's \r\n becomes \n, as in Go.
    let t: Table<Row> = Table::parse("crlf.txt", "id\ttext\tn\r\n1\t\"a\r\nb\"\t1\r\n").unwrap();
    assert_eq!(texts(&t), ["a\nb"]);
    // The BOM does not hide a comment on the first line.
    let t: Table<Row> = Table::parse("bom.txt", "\u{feff}# about\nid\ttext\tn\n1\tx\t1\n").unwrap();
    assert_eq!(t.len(), 1);
    // A line with only spaces is not blank: it is a row (of one cell).
    let e = Table::<Row>::parse("sp.txt", "id\ttext\tn\n  \n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "sp.txt:2: expected 3 cells (one per field of Row), found 1"
    );
}

#[test]
fn the_header_only_file_is_an_empty_table() {
    let t: Table<Row> = Table::parse("h.txt", "id\ttext\tn\n").unwrap();
    assert!(t.is_empty());
    assert!(t.index(1).is_none());
}

#[test]
fn another_separator_and_comment_character() {
    let opts = Options::new().comment(Some(';')).separator(',');
    let text = "id,text,n\n;comment\n#1,hash,1\n2,\"a,b\",2\n";
    let e = opts.parse::<Row>("c.csv", text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "c.csv:3: column 1 (id): expected an unsigned integer (u32), found \"#1\""
    );
    let t: Table<Row> = opts
        .parse("c.csv", "id,text,n\n;comment\n2,\"a,b\",2\n")
        .unwrap();
    assert_eq!(texts(&t), ["a,b"]);
    // Without a comment character, `#` is data.
    let t: Table<Row> = Options::new()
        .comment(None)
        .parse("c.txt", "id\ttext\tn\n1\t#x\t1\n")
        .unwrap();
    assert_eq!(texts(&t), ["#x"]);
}

#[test]
#[should_panic(expected = "is also the comment character")]
fn the_separator_cannot_be_the_comment_character() {
    let _ = Options::new().separator('#');
}

#[test]
#[should_panic(expected = "invalid record file separator")]
fn the_separator_cannot_be_a_quote() {
    let _ = Options::new().separator('"');
}

#[test]
fn header_name_mapping() {
    let opts = Options::new().header_names(true);
    let text = "n\tnotes\t id \ttext\n5\tignored\t1\tone\n6\t\t2\ttwo\n";
    let t: Table<Row> = opts.parse("h.txt", text).unwrap();
    assert_eq!(
        t.records(),
        [
            Row {
                id: 1,
                text: "one".into(),
                n: 5
            },
            Row {
                id: 2,
                text: "two".into(),
                n: 6
            }
        ]
    );
    // Errors name the file's column and its header.
    let e = opts
        .parse::<Row>("h.txt", "n\tnotes\tid\ttext\n5\tx\tone\tone\n")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "h.txt:2: column 3 (id): expected an unsigned integer (u32), found \"one\""
    );
    let e = opts.parse::<Row>("h.txt", "n\tid\n1\t2\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "h.txt:1: no column named \"text\" in the header (it has: n, id)"
    );
    let e = opts.parse::<Row>("h.txt", "n\tid\ttext\tid\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "h.txt:1: two columns are named \"id\" (columns 2 and 4)"
    );
    let e = opts
        .parse::<Row>("h.txt", "n\tid\ttext\n1\t2\n")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "h.txt:2: expected 3 cells (as many as the header has), found 2"
    );
}
