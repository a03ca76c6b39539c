//! Builds the C# test program: the code `longlink-codegen --lang csharp` writes from the
//! golden manifest, the library and `clients/csharp/tests`, with `mcs`; the console sample;
//! the Unity sample scene's script (against `UnityEngine.cs`, two stand-ins); and the library
//! with `UNITY_WEBGL` defined, as a WebGL build compiles it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

pub(crate) const CSHARP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/csharp");
const TYPESCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/typescript");

/// A tool that must run, or the test fails with what to do.
pub(crate) fn require(tool: &str, arg: &str) {
    let ok = std::process::Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "cannot run `{tool}`: the C# client's tests need Debian's mono-devel and node with \
         clients/typescript/node_modules; run scripts/test.sh (it installs them)"
    );
}

pub(crate) fn run(cmd: &mut std::process::Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The `.cs` files under `dir`, its folders' too.
pub(crate) fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|x| x == "cs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Generates Messages.cs from the golden manifest and compiles the test program; returns
/// the scratch directory (with ChatTests.exe and kinds.json).
pub(crate) fn build() -> tempdir::Scratch {
    // One build at a time: both tests write clients/typescript/dist.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    require("mcs", "--version");
    require("mono", "--version");
    let node = std::env::var("CHAT_TEST_NODE").unwrap_or_else(|_| "node".into());
    require(&node, "--version");
    let tsc = Path::new(TYPESCRIPT).join("node_modules/typescript/bin/tsc");
    assert!(
        tsc.is_file(),
        "no {}: run scripts/test.sh (npm ci in clients/typescript)",
        tsc.display()
    );
    run(
        std::process::Command::new(&node)
            .arg(&tsc)
            .args(["-p", "tsconfig.json"])
            .current_dir(TYPESCRIPT),
        "tsc -p clients/typescript",
    );
    let dir = tempdir::Scratch::new("longlink-csharp");
    let golden = Path::new(TYPESCRIPT).join("test/golden/kinds.json");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&golden).expect("golden file")).expect("json");
    let manifest = dir.0.join("manifest.json");
    std::fs::write(&manifest, doc["manifest"].to_string()).expect("write manifest");
    run(
        std::process::Command::new(&node)
            .arg(Path::new(TYPESCRIPT).join("dist/codegen/cli.js"))
            .args(["--manifest".as_ref(), manifest.as_os_str()])
            .args(["--lang", "csharp", "--namespace", "Chat", "--out"])
            .arg(&dir.0),
        "longlink-codegen --lang csharp",
    );
    let mut mcs = std::process::Command::new("mcs");
    mcs.args(["-langversion:7.2", "-warnaserror", "-nologo"])
        .arg(format!("-out:{}", dir.0.join("ChatTests.exe").display()))
        .args(sources(&Path::new(CSHARP).join("src")))
        .arg(dir.0.join("Messages.cs"))
        .args(sources(&Path::new(CSHARP).join("tests")));
    run(
        &mut mcs,
        "mcs (the library, the generated messages, the test program)",
    );
    let mut sample = std::process::Command::new("mcs");
    sample
        .args(["-langversion:7.2", "-warnaserror", "-nologo"])
        .arg(format!("-out:{}", dir.0.join("ChatSample.exe").display()))
        .args(sources(&Path::new(CSHARP).join("src")))
        .arg(dir.0.join("Messages.cs"))
        .args(sources(&Path::new(CSHARP).join("samples/Chat")));
    run(&mut sample, "mcs (the console sample)");
    // The Unity sample scene's script, against two stand-ins of UnityEngine's (a compile check).
    let mut unity = std::process::Command::new("mcs");
    unity
        .args([
            "-langversion:7.2",
            "-warnaserror",
            "-nologo",
            "-target:library",
        ])
        .arg(format!("-out:{}", dir.0.join("UnitySample.dll").display()))
        .args(sources(&Path::new(CSHARP).join("src")))
        .arg(dir.0.join("Messages.cs"))
        .args(sources(&Path::new(CSHARP).join("samples/Unity")))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/csharp_client/UnityEngine.cs"
        ));
    run(&mut unity, "mcs (the Unity sample scene's script)");
    // The library as a WebGL build compiles it (UNITY_WEBGL: threadless over WebGLSocket).
    let mut webgl = std::process::Command::new("mcs");
    webgl
        .args([
            "-langversion:7.2",
            "-warnaserror",
            "-nologo",
            "-target:library",
        ])
        .arg("-define:UNITY_WEBGL")
        .arg(format!(
            "-out:{}",
            dir.0.join("LonglinkWebGL.dll").display()
        ))
        .args(sources(&Path::new(CSHARP).join("src")));
    run(
        &mut webgl,
        "mcs -define:UNITY_WEBGL (the library as a WebGL build has it)",
    );
    std::fs::copy(&golden, dir.0.join("kinds.json")).expect("copy golden");
    dir
}

pub(crate) mod tempdir {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory removed when dropped.
    pub(crate) struct Scratch(pub(crate) PathBuf);

    impl Scratch {
        pub(crate) fn new(prefix: &str) -> Scratch {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
