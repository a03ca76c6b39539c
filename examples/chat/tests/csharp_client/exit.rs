//! The exit right after `Close` over WebSocket (clients/csharp/tests/ExitAfterClose.cs), run
//! many times: a program that closes its clients and returns from `Main` (or calls
//! `Environment.Exit`) must end. Over Mono's `ClientWebSocket` about 2 runs in 100 hung
//! there (the close's thread-pool work and timers against the runtime's shutdown).

use std::process::Stdio;
use std::time::Duration;

use crate::build::build;
use crate::common::{self, Enc, TestServer};

/// How many runs: each takes about a quarter of a second.
const RUNS: usize = 100;
/// A run that has not ended by then hangs.
const RUN_LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csharp_client_exits_right_after_close() {
    let dir = build();
    let server = TestServer::start(Enc::Json).await;
    let exe = dir.0.join("ChatTests.exe");
    let mut failed = Vec::new();
    for run in 0..RUNS {
        let end = if run % 2 == 0 { "return" } else { "exit" };
        let out = tokio::process::Command::new("mono")
            .arg(&exe)
            .arg("exit")
            .arg(format!("ws=ws://{}/", server.ws))
            .arg(format!("token={}", common::token(7000 + run as u64)))
            .arg(format!("end={end}"))
            // Mono writes a crash report (mono_crash.*.json) where it runs.
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(RUN_LIMIT, out).await {
            Err(_) => failed.push(format!(
                "run {run} (end={end}): still running after {RUN_LIMIT:?}"
            )),
            Ok(out) => {
                let out = out.expect("mono runs");
                let said = String::from_utf8_lossy(&out.stdout);
                if !out.status.success() || !said.contains("exit: closed") {
                    failed.push(format!(
                        "run {run} (end={end}): {}\n{said}\n{}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
        }
    }
    server.shutdown().await;
    assert!(
        failed.is_empty(),
        "{} of {RUNS} runs did not exit cleanly:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
