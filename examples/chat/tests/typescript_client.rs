//! The TypeScript client (`clients/typescript`, the npm package `longlink-client`): its own
//! tests, `node --test` on `clients/typescript/test/*.test.mjs`, against this package's
//! `longlink-chat` binary, which they start themselves (JSON and protobuf, WebSocket and TCP,
//! session resume through a proxy that cuts connections, LL_Move and delivery classes against
//! a scripted server, the generated code against the golden bytes of `codegen_golden.rs`,
//! `tsc --noEmit` of an example, `npm pack` installed into an empty directory).
//!
//! Needs `node` (`CHAT_TEST_NODE`) and the package's `node_modules` (`npm ci` in
//! clients/typescript; scripts/test.sh does it). When one is missing the test is skipped with
//! the reason, or fails when `CI` is set. It builds the package first (`tsc`, into `dist/`).

use std::path::Path;
use std::process::{Command, Stdio};

const PACKAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/typescript");
const BIN: &str = env!("CARGO_BIN_EXE_longlink-chat");

/// Node and the package's node_modules, or why not.
fn node() -> Result<String, String> {
    let node = std::env::var("CHAT_TEST_NODE").unwrap_or_else(|_| "node".into());
    match Command::new(&node).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => return Err(format!("cannot run {node}")),
    }
    for needed in ["typescript/bin/tsc", "ws/package.json"] {
        if !Path::new(PACKAGE)
            .join("node_modules")
            .join(needed)
            .is_file()
        {
            return Err(format!(
                "no {needed} in {PACKAGE}/node_modules (run `npm ci` there)"
            ));
        }
    }
    Ok(node)
}

#[test]
fn the_typescript_client_passes_its_node_tests_against_the_chat_server() {
    let node = match node() {
        Ok(node) => node,
        Err(why) if std::env::var_os("CI").is_some() => panic!("{why}"),
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let build = Command::new(&node)
        .args(["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"])
        .current_dir(PACKAGE)
        .status()
        .expect("tsc runs");
    assert!(build.success(), "tsc -p clients/typescript failed");
    let mut tests: Vec<String> = std::fs::read_dir(Path::new(PACKAGE).join("test"))
        .expect("clients/typescript/test")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".test.mjs"))
        .map(|name| format!("test/{name}"))
        .collect();
    tests.sort();
    assert!(tests.len() >= 5, "{tests:?}");
    let out = Command::new(&node)
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(&tests)
        .current_dir(PACKAGE)
        .env("LONGLINK_CHAT_BIN", BIN)
        .stdin(Stdio::null())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test {tests:?}: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
}
