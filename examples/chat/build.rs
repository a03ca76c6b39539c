//! Compiles proto/chat.proto with protox (a protobuf compiler in Rust, so no `protoc` is
//! needed) and prost-build, adding serde derives so one type serves both encodings; writes
//! the compiled descriptors to `$OUT_DIR/chat.fds` for the message manifest; and builds the
//! TypeScript client (`clients/typescript`, the npm package `longlink-client`) into
//! `$OUT_DIR/longlink-client/` for the demo page, listed in `$OUT_DIR/web_client.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/chat.proto");
    let descriptors = protox::compile(["proto/chat.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("chat.fds"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    prost_build::Config::new()
        .type_attribute(
            ".",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        )
        .compile_fds(descriptors)?;
    kinds(&out)?;
    web_client(&out)
}

/// proto/kinds.proto (every kind of field, for tests/codegen_golden.rs): `$OUT_DIR/kinds.rs`
/// and `$OUT_DIR/kinds.fds`. Maps are `BTreeMap`s, so that encodings are deterministic.
fn kinds(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/kinds.proto");
    let descriptors = protox::compile(["proto/kinds.proto"], ["proto"])?;
    std::fs::write(
        out.join("kinds.fds"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    prost_build::Config::new()
        .btree_map(["."])
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .message_attribute(".", "#[serde(default)]")
        .compile_fds(descriptors)?;
    Ok(())
}

/// `tsc` of `clients/typescript` into `out/longlink-client`, and `out/web_client.rs` listing
/// the files. Without node or the package's `node_modules` (`npm ci` there; scripts/test.sh
/// does it) the list is empty and the page says how to build it.
fn web_client(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-env-changed=CHAT_TEST_NODE");
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/typescript");
    for watched in [
        "src",
        "tsconfig.json",
        "package.json",
        "node_modules/typescript/package.json",
    ] {
        println!("cargo:rerun-if-changed={}", package.join(watched).display());
    }
    let dir = out.join("longlink-client");
    let _ = std::fs::remove_dir_all(&dir);
    let tsc = package.join("node_modules/typescript/bin/tsc");
    let built = tsc.is_file()
        && Command::new(std::env::var("CHAT_TEST_NODE").unwrap_or_else(|_| "node".into()))
            .arg(&tsc)
            .args(["-p", &package.join("tsconfig.json").to_string_lossy()])
            .args(["--declaration", "false", "--outDir", &dir.to_string_lossy()])
            .status()
            .is_ok_and(|s| s.success());
    let mut files = Vec::new();
    if built {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "js") {
                files.push(path);
            }
        }
        files.sort();
    } else {
        println!(
            "cargo:warning=clients/typescript was not built (run `npm ci` in clients/typescript): \
             the demo page will not work"
        );
    }
    let list: String = files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            format!(
                "    ({name:?}, include_str!({:?})),\n",
                p.display().to_string()
            )
        })
        .collect();
    std::fs::write(
        out.join("web_client.rs"),
        format!(
            "/// The files of the built TypeScript client, by name.\npub const CLIENT_FILES: &[(&str, &str)] = &[\n{list}];\n"
        ),
    )?;
    Ok(())
}
