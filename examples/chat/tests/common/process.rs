//! Running the real `longlink-chat` binary in tests: a scratch directory, a spawned process
//! whose output goes to files, signals, exit within a bound, and [`serve`]: the binary with a
//! config file on fresh ports, serving.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{Client, Enc, Reply, TIMEOUT, Transport, assert_near_now, free_addr};

const BIN: &str = env!("CARGO_BIN_EXE_longlink-chat");

/// How long the binary may take to start serving, or to exit.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);

/// A scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "longlink-chat-test-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A spawned `longlink-chat`, killed if the test ends before it exits. Its stdout and stderr
/// go to files (a pipe nobody reads could fill up and block it).
pub struct Proc {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Proc {
    /// Runs the binary with `args` and `env` (and no `LONGLINK_*` variables of ours).
    pub fn spawn(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Proc {
        Proc::spawn_via(dir, &[], args, env)
    }

    /// As [`Proc::spawn`], run through `wrapper` (e.g. `["bash", "-c", "ulimit -n 256 &&
    /// exec \"$@\"", "sh"]`): the wrapper's words, then the binary and `args`.
    pub fn spawn_via(dir: &TempDir, wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Proc {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let stdout = dir.0.join(format!("stdout-{n}"));
        let stderr = dir.0.join(format!("stderr-{n}"));
        let mut cmd = match wrapper.split_first() {
            Some((program, words)) => {
                let mut cmd = Command::new(program);
                cmd.args(words).arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LONGLINK_") {
                cmd.env_remove(key);
            }
        }
        // Binaries run in parallel: the admin listener on a free port, not the default 9090.
        cmd.env("LONGLINK_ADMIN__ADDR", "127.0.0.1:0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn longlink-chat");
        Proc {
            child: Some(child),
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .expect("running")
            .try_wait()
            .expect("try_wait")
    }

    /// Waits for the exit within [`PROCESS_TIMEOUT`].
    pub async fn wait(&mut self) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + PROCESS_TIMEOUT;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "longlink-chat did not exit within {PROCESS_TIMEOUT:?}; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a signal with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A heartbeat on `addr` over `t`, or why not (refused, closed, timed out).
pub async fn try_heartbeat(t: Transport, enc: Enc, addr: SocketAddr) -> Result<(), String> {
    let mut c = Client::try_connect(t, enc, addr).await?;
    c.send(&longlink_chat::msg::C2sUserHeartBeat { ptime: 0 })
        .await;
    match c.try_recv(TIMEOUT).await {
        Ok(Reply::HeartBeat(hb)) => {
            assert_near_now(hb.ptime, "heartbeat");
            Ok(())
        }
        Ok(other) => panic!("{t:?}: expected a heartbeat answer, got {other:?}"),
        Err(end) => Err(format!("{end:?}")),
    }
}

/// Waits until the server answers a heartbeat on both transports. Err with its stderr if it
/// exited first.
pub async fn wait_serving(
    p: &mut Proc,
    enc: Enc,
    tcp: SocketAddr,
    ws: SocketAddr,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + PROCESS_TIMEOUT;
    for (t, addr) in [(Transport::Tcp, tcp), (Transport::Ws, ws)] {
        loop {
            if let Some(status) = p.try_wait() {
                return Err(format!(
                    "exited with {status} before serving; stderr:\n{}",
                    p.stderr()
                ));
            }
            match try_heartbeat(t, enc, addr).await {
                Ok(()) => break,
                Err(why) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "longlink-chat not serving {t:?} on {addr} within {PROCESS_TIMEOUT:?} \
                         ({why}); stderr:\n{}",
                        p.stderr()
                    );
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
    }
    Ok(())
}

/// As [`serve`], the binary run under `bash -c '<ulimit> && exec "$@"'`, e.g.
/// `ulimit -S -H -n 256`.
pub async fn serve_with_ulimit(enc: Enc, extra_gate: &str, ulimit: &str) -> Served {
    let script = format!("{ulimit} && exec \"$@\"");
    serve_via(enc, extra_gate, &["bash", "-c", &script, "longlink-chat"]).await
}

/// The address the binary's admin HTTP listener reports on stderr (`admin http listening
/// addr=Some(...)`), once it does.
pub async fn admin_addr(p: &Proc) -> SocketAddr {
    let deadline = tokio::time::Instant::now() + PROCESS_TIMEOUT;
    loop {
        let stderr = p.stderr();
        if let Some(rest) = stderr.split("admin http listening addr=Some(").nth(1) {
            let addr = rest.split(')').next().unwrap_or_default();
            return addr.parse().expect("an admin address");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no admin address on stderr:\n{stderr}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running binary with a config file on fresh ports.
pub struct Served {
    pub proc: Proc,
    pub tcp: SocketAddr,
    pub ws: SocketAddr,
    _dir: TempDir,
}

/// Starts the binary with a config file (`enc`, fresh ports, `extra_gate` TOML lines in
/// `[gate]`) and no `[chat] max_msgs_per_sec`, and waits until it serves. Retries with new ports if one was taken meanwhile.
pub async fn serve(enc: Enc, extra_gate: &str) -> Served {
    serve_via(enc, extra_gate, &[]).await
}

/// As [`serve`], the binary run through `wrapper` (see [`Proc::spawn_via`]).
pub async fn serve_via(enc: Enc, extra_gate: &str, wrapper: &[&str]) -> Served {
    let encoding = match enc {
        Enc::Json => "json",
        Enc::Protobuf => "protobuf",
    };
    let mut last = String::new();
    for _ in 0..3 {
        let dir = TempDir::new("serve");
        let (tcp, ws) = (free_addr(), free_addr());
        let config = dir.write(
            "chat.toml",
            &format!(
                "[gate]\ntcp_addr = \"{tcp}\"\nws_addr = \"{ws}\"\nencoding = \"{encoding}\"\n{extra_gate}\n"
            ),
        );
        let config = config.to_str().expect("a UTF-8 temp path");
        // No [chat] max_msgs_per_sec, as the in-process TestServer: storms say far more.
        let env = [("LONGLINK_CHAT__MAX_MSGS_PER_SEC", "0")];
        let mut proc = Proc::spawn_via(&dir, wrapper, &["--config", config], &env);
        match wait_serving(&mut proc, enc, tcp, ws).await {
            Ok(()) => {
                return Served {
                    proc,
                    tcp,
                    ws,
                    _dir: dir,
                };
            }
            Err(why) if why.to_lowercase().contains("in use") => last = why,
            Err(why) => panic!("longlink-chat did not start: {why}"),
        }
    }
    panic!("longlink-chat did not start (ports taken?): {last}");
}
