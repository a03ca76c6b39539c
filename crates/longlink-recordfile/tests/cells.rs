//! Every kind of cell: Go's integer, float and bool rules, strings, JSON,
//! options, enums, ignored columns.

use std::collections::BTreeMap;

use longlink_recordfile::{Error, Record, Table};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Quotes a cell as a spreadsheet exports one holding `"`: `"{""a"":1}"`.
fn q(cell: &str) -> String {
    format!("\"{}\"", cell.replace('"', "\"\""))
}

/// Parses `row` as the only data row, under a header of the same width. An
/// empty row becomes one quoted empty cell (an empty line would be skipped).
fn one<T: Record>(row: &str) -> Result<T, Error> {
    let row = if row.is_empty() { "\"\"" } else { row };
    let header = vec!["h"; row.split('\t').count()].join("\t");
    let table = Table::<T>::parse("t.txt", &format!("{header}\n{row}\n"))?;
    Ok(table.into_records().remove(0))
}

/// The error message for `row`, without the location.
fn fails<T: Record + std::fmt::Debug>(row: &str) -> String {
    match one::<T>(row) {
        Ok(v) => panic!("{row:?} parsed as {v:?}"),
        Err(Error::Cell { message, .. }) => message,
        Err(e) => panic!("{row:?}: not a cell error: {e}"),
    }
}

#[derive(Debug, PartialEq, Deserialize)]
struct I64 {
    v: i64,
}
impl Record for I64 {}

#[derive(Debug, PartialEq, Deserialize)]
struct Small {
    a: i8,
    b: u8,
    c: i16,
    d: u16,
    e: i32,
    f: u32,
    g: u64,
    h: i128,
}
impl Record for Small {}

#[test]
fn integers_parse_as_go_parse_int_base_zero() {
    for (cell, want) in [
        ("0", 0),
        ("42", 42),
        ("+42", 42),
        ("-42", -42),
        ("0x1F", 31),
        ("0X1f", 31),
        ("-0x1F", -31),
        ("0o17", 15),
        ("017", 15),
        ("-017", -15),
        ("0b101", 5),
        ("1_000", 1000),
        ("0x_ff", 255),
        ("9223372036854775807", i64::MAX),
        ("-9223372036854775808", i64::MIN),
    ] {
        assert_eq!(one::<I64>(cell).unwrap().v, want, "{cell}");
    }
}

#[test]
fn integer_syntax_errors() {
    for cell in [
        "abc", "", " 1", "1.0", "08", "0x", "1__0", "_1", "1_", "0b2", "--1", "1e3",
    ] {
        assert_eq!(
            fails::<I64>(cell),
            format!("expected an integer (i64), found {cell:?}"),
            "{cell:?}"
        );
    }
}

#[test]
fn integer_widths_and_ranges() {
    let s = one::<Small>("-128\t255\t-0x8000\t0xFFFF\t0b1\t4294967295\t18446744073709551615\t-1")
        .unwrap();
    assert_eq!(
        s,
        Small {
            a: -128,
            b: 255,
            c: i16::MIN,
            d: u16::MAX,
            e: 1,
            f: u32::MAX,
            g: u64::MAX,
            h: -1
        }
    );
    assert_eq!(
        fails::<Small>("128\t0\t0\t0\t0\t0\t0\t0"),
        "expected an integer that fits in i8, found \"128\""
    );
    assert_eq!(
        fails::<Small>("0\t256\t0\t0\t0\t0\t0\t0"),
        "expected an unsigned integer that fits in u8, found \"256\""
    );
    // Unsigned fields take no sign (Go's ParseUint).
    assert_eq!(
        fails::<Small>("0\t-1\t0\t0\t0\t0\t0\t0"),
        "expected an unsigned integer (u8), found \"-1\""
    );
    assert_eq!(
        fails::<Small>("0\t+1\t0\t0\t0\t0\t0\t0"),
        "expected an unsigned integer (u8), found \"+1\""
    );
    assert_eq!(
        fails::<I64>("9223372036854775808"),
        "expected an integer that fits in i64, found \"9223372036854775808\""
    );
}

#[derive(Debug, PartialEq, Deserialize)]
struct Floats {
    a: f64,
    b: f32,
}
impl Record for Floats {}

#[test]
fn floats() {
    for (row, a, b) in [
        ("1.5\t-2", 1.5, -2.0f32),
        ("1e3\t.25", 1000.0, 0.25),
        ("-0.5\t1_0.5", -0.5, 10.5),
        ("0x1p-2\tInf", 0.25, f32::INFINITY),
        ("+3.\t-infinity", 3.0, f32::NEG_INFINITY),
    ] {
        assert_eq!(one::<Floats>(row).unwrap(), Floats { a, b }, "{row}");
    }
    assert!(one::<Floats>("NaN\t0").unwrap().a.is_nan());
    assert_eq!(
        fails::<Floats>("x\t0"),
        "expected a number (f64), found \"x\""
    );
    assert_eq!(
        fails::<Floats>("1,5\t0"),
        "expected a number (f64), found \"1,5\""
    );
    assert_eq!(
        fails::<Floats>("1e400\t0"),
        "expected a number that fits in f64, found \"1e400\""
    );
    assert_eq!(
        fails::<Floats>("0\t1e39"),
        "expected a number that fits in f32, found \"1e39\""
    );
}

#[derive(Debug, PartialEq, Deserialize)]
struct Flag {
    on: bool,
}
impl Record for Flag {}

#[test]
fn bools_take_go_parse_bool_spellings() {
    for cell in ["1", "t", "T", "TRUE", "true", "True"] {
        assert!(one::<Flag>(cell).unwrap().on, "{cell}");
    }
    for cell in ["0", "f", "F", "FALSE", "false", "False"] {
        assert!(!one::<Flag>(cell).unwrap().on, "{cell}");
    }
    for cell in ["yes", "tRuE", "", "2", "on"] {
        assert_eq!(
            fails::<Flag>(cell),
            format!(
                "expected a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False), found {cell:?}"
            )
        );
    }
}

#[derive(Debug, PartialEq, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Json {
    list: Vec<u32>,
    map: BTreeMap<String, i32>,
    nested: Vec<Vec<u8>>,
    point: Point,
    pair: (String, bool),
    fixed: [i8; 3],
}
impl Record for Json {}

#[test]
fn nested_types_are_json_cells() {
    let row = [
        "[1,2,3]".to_owned(),
        q(r#"{"a":1}"#),
        "[[1,2],[3]]".to_owned(),
        q(r#"{"x":1,"y":-2}"#),
        q(r#"["k",true]"#),
        "[1, 2, 3]".to_owned(),
    ];
    let j = one::<Json>(&row.join("\t")).unwrap();
    assert_eq!(j.list, [1, 2, 3]);
    assert_eq!(j.map, BTreeMap::from([("a".to_owned(), 1)]));
    assert_eq!(j.nested, [vec![1, 2], vec![3]]);
    assert_eq!(j.point, Point { x: 1, y: -2 });
    assert_eq!(j.pair, ("k".to_owned(), true));
    assert_eq!(j.fixed, [1, 2, 3]);
}

#[test]
fn bad_json_says_what_was_expected() {
    let row = |list: &str, point: &str, fixed: &str| {
        [list, "{}", "[]", &q(point), &q(r#"["k",true]"#), fixed].join("\t")
    };
    let good_point = r#"{"x":1,"y":2}"#;
    let m = fails::<Json>(&row("[1,2", good_point, "[1,2,3]"));
    assert!(m.starts_with("expected JSON for a sequence ("), "{m}");
    assert!(m.ends_with(r#"found "[1,2""#), "{m}");
    let m = fails::<Json>(&row("[]", r#"{"x":1}"#, "[1,2,3]"));
    assert!(
        m.contains("struct Point") && m.contains("missing field `y`"),
        "{m}"
    );
    let m = fails::<Json>(&row("[]", good_point, "[1,2,3] x"));
    assert!(m.contains("trailing characters"), "{m}");
    let m = fails::<Json>(&row("[-1]", good_point, "[1,2,3]"));
    assert!(m.contains("invalid value: integer `-1`"), "{m}");
    let m = fails::<Json>(&row("[]", good_point, "[1,2]"));
    assert!(m.contains("invalid length 2"), "{m}");
}

#[derive(Debug, PartialEq, Deserialize)]
enum Kind {
    Sword,
    Bow,
    Potion { heal: u32 },
}

#[derive(Debug, PartialEq, Deserialize)]
struct Misc {
    name: String,
    note: Option<String>,
    count: Option<u16>,
    list: Option<Vec<u8>>,
    kind: Kind,
    letter: char,
    _skip: IgnoredAny,
    #[serde(rename = "renamed")]
    field: u8,
}
impl Record for Misc {}

#[test]
fn strings_options_enums_chars_and_ignored_columns() {
    let row = format!(" a b \t\t\t\tSword\tx\t{}\t7", q("anything \"at\" all"));
    let m = one::<Misc>(&row).unwrap();
    assert_eq!(m.name, " a b ");
    assert_eq!((m.note, m.count, m.list), (None, None, None));
    assert_eq!((m.kind, m.letter, m.field), (Kind::Sword, 'x', 7));
    let row = format!(
        "名字\tsome\t0x10\t[1]\t{}\t字\t\t0",
        q(r#"{"Potion":{"heal":5}}"#)
    );
    let m = one::<Misc>(&row).unwrap();
    assert_eq!(m.name, "名字");
    assert_eq!(m.note.as_deref(), Some("some"));
    assert_eq!(m.count, Some(16));
    assert_eq!(m.list, Some(vec![1]));
    assert_eq!(m.kind, Kind::Potion { heal: 5 });
    let row = format!("a\t\t\t\t{}\tx\t\t0", q("\"Bow\""));
    assert_eq!(one::<Misc>(&row).unwrap().kind, Kind::Bow);
    let e = fails::<Misc>("a\t\tx\t\tSword\tx\t\t0");
    assert_eq!(e, "expected an unsigned integer (u16), found \"x\"");
    let e = fails::<Misc>("a\t\t\t\tAxe\tx\t\t0");
    assert!(e.contains("unknown variant `Axe`"), "{e}");
    let e = fails::<Misc>("a\t\t\t\tBow\txy\t\t0");
    assert_eq!(e, "expected a single character, found \"xy\"");
}

#[derive(Debug, PartialEq, Deserialize)]
struct Id(u32);

#[derive(Debug, PartialEq, Deserialize)]
struct Tuple(Id, String);
impl Record for Tuple {}

#[test]
fn tuple_structs_and_newtypes() {
    assert_eq!(
        one::<Tuple>("0x10\tten").unwrap(),
        Tuple(Id(16), "ten".into())
    );
}
