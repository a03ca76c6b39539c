//! The chat server driven by a third-party WebSocket client: Python's `websockets` package
//! (tests/py/ws_client.py).
//!
//! The interpreter is `CHAT_TEST_PYTHON` if set (it must have `websockets`), else `python3`
//! if it can import `websockets`. Without one the test is skipped, or fails when `CI` is set.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/ws_client.py");

/// Whether `python` can import `websockets`.
async fn has_websockets(python: &str) -> Result<(), String> {
    let out = tokio::process::Command::new(python)
        .args(["-c", "import websockets"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(30), out).await {
        Err(_) => Err(format!("`{python} -c \"import websockets\"` timed out")),
        Ok(Err(e)) => Err(format!("cannot run {python}: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(format!(
            "{python} cannot import websockets: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        )),
    }
}

/// The interpreter to use, or None to skip.
async fn find_python() -> Option<String> {
    if let Some(python) = std::env::var_os("CHAT_TEST_PYTHON") {
        let python = python.to_string_lossy().into_owned();
        if let Err(why) = has_websockets(&python).await {
            panic!("CHAT_TEST_PYTHON={python} is unusable: {why}");
        }
        return Some(python);
    }
    match has_websockets("python3").await {
        Ok(()) => Some("python3".into()),
        Err(why) if std::env::var_os("CI").is_some() => panic!(
            "CI is set but no Python with the `websockets` package was found ({why}); set \
             CHAT_TEST_PYTHON to an interpreter that has it (e.g. a venv with \
             `pip install websockets`)"
        ),
        Err(why) => {
            eprintln!(
                "SKIPPED python_ws: {why}; set CHAT_TEST_PYTHON to a Python with `websockets` \
                 to run it"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_client_talks_to_the_chat_server() {
    bounded(TEST_TIMEOUT, async {
        let Some(python) = find_python().await else {
            return;
        };
        let server = TestServer::start(Enc::Json).await;
        // A Rust client logged in alongside, watching no room.
        let mut watcher = server.login(Transport::Tcp, 1).await;
        let room = 77;
        let uid = 4242;
        let url = format!("ws://{}/", server.ws);

        let child = tokio::process::Command::new(&python)
            .arg(SCRIPT)
            .args([
                url.as_str(),
                &token(uid),
                &uid.to_string(),
                &room.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the python client");
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("the python client did not finish within 60 s")
            .expect("python client output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("python stdout:\n{stdout}\npython stderr:\n{stderr}");
        assert!(
            out.status.success(),
            "python client failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        assert!(stdout.trim_end().ends_with("OK"), "{stdout}");

        // The watcher saw none of it, and the Python client's close took it out of the room
        // (possibly after a moment: close events are asynchronous).
        watcher.expect_quiet().await;
        watcher.watch_until(room, 1).await;
        server.shutdown().await;
    })
    .await;
}
