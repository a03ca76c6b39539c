//! Compiles proto/chat.proto with protox (a protobuf compiler in Rust, so no `protoc` is
//! needed) and prost-build, adding serde derives so one type serves both encodings.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/chat.proto");
    let descriptors = protox::compile(["proto/chat.proto"], ["proto"])?;
    prost_build::Config::new()
        .type_attribute(
            ".",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
