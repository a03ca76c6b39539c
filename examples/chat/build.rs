//! Compiles proto/chat.proto with protox (a protobuf compiler in Rust, so no `protoc` is
//! needed) and prost-build, adding serde derives so one type serves both encodings; also
//! writes the compiled descriptors (with proto/resume.proto's) to `$OUT_DIR/chat.fds` for the
//! message manifest.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/chat.proto");
    println!("cargo:rerun-if-changed=proto/resume.proto");
    let descriptors = protox::compile(["proto/chat.proto"], ["proto"])?;
    // The descriptors themselves, for the message manifest (src/manifest.rs), with the
    // resume protocol's (whose Rust types are longlink_wire's).
    let manifest = protox::compile(["proto/chat.proto", "proto/resume.proto"], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("chat.fds"),
        prost::Message::encode_to_vec(&manifest),
    )?;
    prost_build::Config::new()
        .type_attribute(
            ".",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
