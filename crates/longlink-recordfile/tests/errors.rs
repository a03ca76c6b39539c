//! Each error, with its file, line and column checked in the message.

use longlink_recordfile::{Error, Index, IndexDef, Location, Record, Table};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Item {
    id: u32,
    name: String,
    price: i64,
    tags: Vec<String>,
    sold: bool,
}

impl Item {
    const BY_ID: Index<Item, u32> = Index::new("id");
    const BY_NAME: Index<Item, String> = Index::new("name");
}

impl Record for Item {
    fn indexes() -> Vec<IndexDef<Self>> {
        vec![
            Self::BY_ID.key(|r| r.id),
            Self::BY_NAME.key(|r| r.name.clone()),
        ]
    }
}

const HEADER: &str = "编号\t名字\tprice\t标签\t已售\n# comment\n";

fn load(rows: &str) -> Error {
    Table::<Item>::parse("items.txt", &format!("{HEADER}{rows}")).unwrap_err()
}

#[test]
fn a_good_file_loads() {
    let t = Table::<Item>::parse("items.txt", &format!("{HEADER}1\tknife\t10\t[]\t0\n")).unwrap();
    assert_eq!(t.get(Item::BY_NAME, "knife").unwrap().id, 1);
    let knife = t.get(Item::BY_ID, &1).unwrap();
    assert!(!knife.sold);
    assert_eq!((knife.price, knife.tags.len()), (10, 0));
}

#[test]
fn cell_count_mismatch() {
    let e = load("1\tknife\t10\t[]\t0\n2\tcat\t5\t[]\n");
    assert_eq!(
        e.to_string(),
        "items.txt:4: expected 5 cells (one per field of Item), found 4"
    );
    assert!(matches!(
        e,
        Error::FieldCount {
            expected: 5,
            found: 4,
            ..
        }
    ));
    let e = load("1\tknife\t10\t[]\t0\textra\n");
    assert_eq!(
        e.to_string(),
        "items.txt:3: expected 5 cells (one per field of Item), found 6"
    );
    // The header must be as wide as the rows too (Go's csv takes the first line's width).
    let e = Table::<Item>::parse("items.txt", "id\tname\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "items.txt:1: expected 5 cells (one per field of Item), found 2"
    );
}

#[test]
fn duplicate_keys_name_both_lines() {
    let e = load("1\tknife\t10\t[]\t0\n2\tcat\t5\t[]\t0\n1\tbook\t5\t[]\t0\n");
    assert_eq!(
        e.to_string(),
        "items.txt:5: column 1 (编号): duplicate key 1 in index \"id\" (first at line 3)"
    );
    let e = load("1\tknife\t10\t[]\t0\n2\tknife\t5\t[]\t0\n");
    assert_eq!(
        e.to_string(),
        "items.txt:4: column 2 (名字): duplicate key \"knife\" in index \"name\" (first at line 3)"
    );
    assert!(matches!(
        e,
        Error::DuplicateKey {
            index: "name",
            first_line: 3,
            ..
        }
    ));
}

#[test]
fn bad_integer() {
    let e = load("1\tknife\tabc\t[]\t0\n");
    assert_eq!(
        e.to_string(),
        "items.txt:3: column 3 (price): expected an integer (i64), found \"abc\""
    );
    assert_eq!(
        e.location(),
        Some(&Location {
            file: "items.txt".into(),
            line: 3,
            column: Some(3),
            header: Some("price".into())
        })
    );
    let e = load("-1\tknife\t1\t[]\t0\n");
    assert_eq!(
        e.to_string(),
        "items.txt:3: column 1 (编号): expected an unsigned integer (u32), found \"-1\""
    );
}

#[test]
fn bad_json() {
    let e = load("1\tknife\t1\t[1,2]\t0\n");
    let m = e.to_string();
    assert!(
        m.starts_with("items.txt:3: column 4 (标签): expected JSON for a sequence ("),
        "{m}"
    );
    assert!(
        m.contains("invalid type: integer `1`, expected a string"),
        "{m}"
    );
    assert!(m.ends_with("found \"[1,2]\""), "{m}");
    let e = load("1\tknife\t1\t[\t0\n");
    assert!(
        e.to_string()
            .starts_with("items.txt:3: column 4 (标签): expected JSON"),
        "{e}"
    );
}

#[test]
fn unknown_bool() {
    let e = load("1\tknife\t1\t[]\tyes\n");
    assert_eq!(
        e.to_string(),
        "items.txt:3: column 5 (已售): expected a boolean \
         (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False), found \"yes\""
    );
}

#[test]
fn empty_file_and_bad_encoding() {
    let e = Table::<Item>::parse("empty.txt", "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "empty.txt:1: no header line (the first line of a record file is its header)"
    );
    let e = Table::<Item>::parse("empty.txt", "# just a comment\n\n").unwrap_err();
    assert!(matches!(e, Error::Header { .. }));
    let dir = std::env::temp_dir().join(format!("recordfile-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gbk.txt");
    std::fs::write(
        &path,
        b"id\tname\tprice\ttags\tsold\n1\t\xc4\xe3\t1\t[]\t0\n",
    )
    .unwrap();
    let e = Table::<Item>::load(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2: not valid UTF-8 (save the file as UTF-8)",
            path.display()
        )
    );
    let missing = dir.join("missing.txt");
    let e = Table::<Item>::load(&missing).unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
    assert!(
        e.to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[derive(Debug, Deserialize)]
struct BadIndex {
    id: u32,
}

impl Record for BadIndex {
    fn indexes() -> Vec<IndexDef<Self>> {
        vec![Index::<BadIndex, u32>::new("ident").key(|r| r.id)]
    }
}

#[derive(Debug, Deserialize)]
struct TwoSameIndexes {
    id: u32,
}

impl Record for TwoSameIndexes {
    fn indexes() -> Vec<IndexDef<Self>> {
        let by_id = Index::<TwoSameIndexes, u32>::new("id");
        vec![by_id.key(|r| r.id), by_id.key(|r| r.id + 1)]
    }
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct NotAStruct(u32);

impl Record for NotAStruct {}

#[test]
fn record_types_that_cannot_load() {
    let e = Table::<BadIndex>::parse("x.txt", "id\n1\n").unwrap_err();
    assert!(matches!(e, Error::RecordType { .. }));
    assert!(
        e.to_string()
            .ends_with("index \"ident\" names no field (the fields are: id)"),
        "{e}"
    );
    let e = Table::<TwoSameIndexes>::parse("x.txt", "id\n1\n").unwrap_err();
    assert!(
        e.to_string().ends_with("two indexes are named \"id\""),
        "{e}"
    );
    let e = Table::<NotAStruct>::parse("x.txt", "id\n1\n").unwrap_err();
    assert!(e.to_string().contains("a record must be a struct"), "{e}");
}
