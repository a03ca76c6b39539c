//! Runs the C# test program under `mono` and answers its control lines: the program prints
//! `CTL VERB NAME` on its stdout when the test must act (cut a proxy's connections, stop a
//! gate) and waits for `OK` on its stdin. A run that has not ended within `RUN_LIMIT` is
//! killed and fails the test with its output.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// How long one run of the program may take, its exit included.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Runs `mono <exe> <args>`, calling `on_ctl(verb, name)` for each control line before its
/// `OK`; returns the program's other stdout lines once it exits with success, panics with
/// its output otherwise.
pub(crate) async fn converse(
    exe: &Path,
    args: &[String],
    mut on_ctl: impl FnMut(&str, &str),
) -> String {
    let mut child = tokio::process::Command::new("mono")
        .arg(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mono runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s)
            .await
            .ok();
        s
    });
    let mut log = String::new();
    let talk = async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            let Some(ctl) = line.strip_prefix("CTL ") else {
                eprintln!("{line}");
                log.push_str(&line);
                log.push('\n');
                continue;
            };
            let (verb, name) = ctl.split_once(' ').expect("CTL verb name");
            on_ctl(verb, name);
            stdin.write_all(b"OK\n").await.expect("answer");
            stdin.flush().await.expect("answer");
        }
    };
    // The whole run is bounded: a program that hangs (also after its last line, on its way
    // out) is killed, and the test fails with what it said.
    let status = tokio::time::timeout(RUN_LIMIT, async {
        talk.await;
        child.wait().await.expect("mono exits")
    })
    .await;
    let what = format!(
        "mono {} {}",
        exe.display(),
        args.first().map_or("", String::as_str)
    );
    let Ok(status) = status else {
        child.kill().await.ok();
        let errors = errors.await.expect("stderr");
        panic!("{what}: still running after {RUN_LIMIT:?}, killed\n{log}\n{errors}");
    };
    let errors = errors.await.expect("stderr");
    assert!(status.success(), "{what}: {status}\n{log}\n{errors}");
    log
}
