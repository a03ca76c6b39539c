//! A profile of real work: both files written, the protobuf readable, one at a time.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::io::Read;
use std::time::{Duration, Instant};

use flate2::read::GzDecoder;
use prost::Message;

use super::pprof_file::proto;
use super::*;

/// Burns CPU for `duration` on this thread.
fn burn(duration: Duration) -> u64 {
    let end = Instant::now() + duration;
    let mut acc = 0u64;
    while Instant::now() < end {
        for i in 0..10_000u64 {
            let mut hasher = DefaultHasher::new();
            black_box(i ^ acc).hash(&mut hasher);
            acc = black_box(hasher.finish());
        }
    }
    acc
}

#[test]
fn start_stop_writes_a_flame_graph_and_a_pprof_profile() {
    let root = std::env::temp_dir().join(format!("longlink-profile-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    // A directory that does not exist yet: `start` creates it.
    let profiler = Profiler::new(root.join("profiles"));
    assert!(!profiler.is_running());
    assert!(matches!(profiler.stop(), Err(ProfileError::NotRunning)));

    let line = profiler.start().expect("start");
    assert!(line.contains("99 Hz"), "{line}");
    assert!(profiler.is_running());
    assert!(matches!(
        profiler.start(),
        Err(ProfileError::AlreadyRunning)
    ));
    // Process-wide: a second profiler cannot start either.
    let other = Profiler::new(root.join("other"));
    assert!(matches!(other.start(), Err(ProfileError::AlreadyRunning)));

    black_box(burn(Duration::from_millis(300)));

    let files = profiler.stop().expect("stop");
    assert!(!profiler.is_running());
    assert!(matches!(profiler.stop(), Err(ProfileError::NotRunning)));
    for path in [&files.svg, &files.pprof] {
        assert!(path.starts_with(&profiler.dir), "{}", path.display());
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("cpu-"), "{name}");
    }

    let svg = fs::read(&files.svg).expect("read svg");
    assert!(!svg.is_empty());
    assert!(
        svg.starts_with(b"<?xml") || svg.starts_with(b"<svg"),
        "{}",
        String::from_utf8_lossy(&svg[..svg.len().min(80)])
    );

    let compressed = fs::read(&files.pprof).expect("read pprof");
    assert!(!compressed.is_empty());
    let mut raw = Vec::new();
    GzDecoder::new(&compressed[..])
        .read_to_end(&mut raw)
        .expect("gunzip");
    let profile = proto::Profile::decode(&raw[..]).expect("decode profile");
    assert_eq!(profile.string_table[0], "");
    let string = |i: i64| profile.string_table[i as usize].as_str();
    let types: Vec<_> = profile
        .sample_type
        .iter()
        .map(|t| (string(t.r#type), string(t.unit)))
        .collect();
    assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
    assert_eq!(profile.period, 1_000_000_000 / 99);
    assert!(!profile.sample.is_empty(), "no sample in 300 ms of CPU");
    for sample in &profile.sample {
        assert_eq!(sample.value.len(), 2);
        for id in &sample.location_id {
            assert!(profile.location.iter().any(|l| l.id == *id));
        }
    }
    for location in &profile.location {
        for line in &location.line {
            assert!(profile.function.iter().any(|f| f.id == line.function_id));
        }
    }
    assert!(
        profile
            .function
            .iter()
            .any(|f| string(f.name).contains("burn")),
        "the burning function is in the profile"
    );

    // Restartable after a stop; a profile of the same second gets another name.
    profiler.start().expect("restart");
    let again = profiler.stop().expect("stop again");
    assert_ne!(again, files);
    assert!(again.svg.exists() && again.pprof.exists());

    fs::remove_dir_all(&root).expect("remove the temp dir");
}
