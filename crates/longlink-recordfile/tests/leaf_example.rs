//! leaf's own example (`recordfile/example_test.go`) on leaf's own file
//! (`recordfile/test.txt`: a BOM, a Chinese header, `\r\n` line endings, JSON
//! cells), with the outputs leaf's example expects.

use std::collections::HashMap;

use longlink_recordfile::{Index, IndexDef, Record, Table};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// leaf's `St struct { Name string "name"; Num int "num" }`.
#[derive(Debug, Deserialize)]
struct St {
    name: String,
    num: i64,
}

/// leaf's example `Record`; Go's `int` is 64 bits.
#[derive(Debug, Deserialize)]
struct LeafRecord {
    index_int: i64,
    index_str: String,
    /// leaf's unexported `_Number int32`: the column exists, nothing reads it.
    _number: IgnoredAny,
    str: String,
    arr1: [i64; 2],
    arr2: [[i64; 2]; 3],
    arr3: Vec<i64>,
    st: St,
    m: HashMap<String, i64>,
}

impl LeafRecord {
    const INDEX_INT: Index<LeafRecord, i64> = Index::new("index_int");
    const INDEX_STR: Index<LeafRecord, String> = Index::new("index_str");
}

impl Record for LeafRecord {
    fn indexes() -> Vec<IndexDef<Self>> {
        vec![
            Self::INDEX_INT.key(|r| r.index_int),
            Self::INDEX_STR.key(|r| r.index_str.clone()),
        ]
    }
}

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/leaf_test.txt");

#[test]
fn leaf_example_outputs() {
    let rf: Table<LeafRecord> = Table::load(FILE).unwrap();
    let mut out = Vec::new();
    for i in 0..rf.len() {
        out.push(rf.record(i).unwrap().index_int.to_string());
    }
    out.push(rf.index(2).unwrap().str.clone());
    out.push(rf.indexes(0).unwrap().get(2).unwrap().str.clone());
    let r = rf.indexes(1).unwrap().get("three").unwrap();
    out.push(r.str.clone());
    out.push(r.arr1[1].to_string());
    out.push(r.arr2[2][0].to_string());
    out.push(r.arr3[0].to_string());
    out.push(r.st.name.clone());
    out.push(r.m["key6"].to_string());
    // example_test.go's `// Output:` block.
    let want = "1 2 3 cat cat book 6 4 6 name5566 6";
    assert_eq!(out.join(" "), want);
}

#[test]
fn leaf_example_typed_lookups() {
    let rf: Table<LeafRecord> = Table::load(FILE).unwrap();
    assert_eq!(rf.num_indexes(), 2);
    assert_eq!(rf.get(LeafRecord::INDEX_INT, &1).unwrap().str, "knife");
    assert_eq!(rf.get(LeafRecord::INDEX_STR, "two").unwrap().index_int, 2);
    assert!(rf.get(LeafRecord::INDEX_INT, &4).is_none());
    assert!(rf.get(LeafRecord::INDEX_STR, "four").is_none());
    // A key of the wrong kind finds nothing through leaf's untyped lookups.
    assert!(rf.index("one").is_none());
    assert!(rf.indexes(1).unwrap().get(1).is_none());
    assert!(rf.indexes(2).is_none());
    let r = rf.get(LeafRecord::INDEX_STR, "one").unwrap();
    assert_eq!(r.arr2, [[0, 1], [1, 2], [2, 3]]);
    assert_eq!(r.st.num, 1);
    assert_eq!(r.m.len(), 2);
    let mut keys: Vec<String> = rf
        .indexes(1)
        .unwrap()
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    keys.sort();
    assert_eq!(keys, ["\"one\"", "\"three\"", "\"two\""]);
    let ids: Vec<i64> = rf.iter().map(|r| r.index_int).collect();
    assert_eq!(ids, [1, 2, 3]);
}
