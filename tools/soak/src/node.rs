//! The processes of the cluster: `nats-server` and `longlink-chat` nodes, each with its log
//! in the run's directory. Every child is killed when its handle is dropped, and also when
//! the soak itself dies (`PR_SET_PDEATHSIG`), so no run leaves a process behind.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long a process may take to start serving.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A command whose process is killed with the handle, and with the soak (the signal is sent
/// when the thread that spawned it exits: the soak spawns from its main task only).
fn command(program: &Path, log: &Path) -> Result<Command> {
    let log = File::create(log).with_context(|| format!("create {}", log.display()))?;
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent's.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// A spawned process and its log.
pub(crate) struct Proc {
    /// A name for messages (`gate2-1`, `chat1-0`, `nats`).
    pub(crate) name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// The log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (a planned stop).
    pub(crate) fn terminate(&self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: a plain kill(2) of our own child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }

    /// Waits for the exit within `limit`; past it, kills the process and says so.
    pub(crate) async fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("{} did not exit within {limit:?}; killed", self.name)
            }
        }
    }

    /// Kills it (SIGKILL) and reaps it.
    pub(crate) async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// A `nats-server` with JetStream on a fixed loopback port and store directory, so that a
/// restart keeps both.
pub(crate) struct Nats {
    bin: PathBuf,
    dir: PathBuf,
    pub(crate) port: u16,
    proc: Option<Proc>,
    starts: u32,
}

impl Nats {
    pub(crate) async fn start(bin: &Path, dir: &Path) -> Result<Nats> {
        let mut nats = Nats {
            bin: bin.to_owned(),
            dir: dir.join("jetstream"),
            port: longlink_testkit::free_port(),
            proc: None,
            starts: 0,
        };
        nats.spawn().await?;
        Ok(nats)
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) -> Result<()> {
        let log = self.dir.with_file_name(format!("nats-{}.log", self.starts));
        self.starts += 1;
        let mut cmd = command(&self.bin, &log)?;
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-js",
            "-sd",
        ])
        .arg(&self.dir);
        let child = cmd
            .spawn()
            .with_context(|| format!("start {}", self.bin.display()))?;
        let mut proc = Proc {
            name: "nats".into(),
            child,
            log,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        wait_listening(&mut proc, addr).await?;
        self.proc = Some(proc);
        Ok(())
    }

    /// Kills the server (no goodbye to anyone).
    pub(crate) async fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill().await;
        }
    }

    /// Starts it again on the same port with the same store.
    pub(crate) async fn restart(&mut self) -> Result<()> {
        self.kill().await;
        self.spawn().await
    }
}

/// Waits until `addr` accepts a connection; an error with the log if the process exits
/// first or `START_LIMIT` passes.
async fn wait_listening(proc: &mut Proc, addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = proc.exited() {
            bail!(
                "{} exited ({status}) before listening:\n{}",
                proc.name,
                proc.log()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{} not listening on {addr} within {START_LIMIT:?}:\n{}",
                proc.name,
                proc.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `longlink-chat` node.
pub(crate) struct Node {
    pub(crate) proc: Proc,
    /// The client listeners of a gate.
    pub(crate) tcp: Option<SocketAddr>,
    pub(crate) ws: Option<SocketAddr>,
}

impl Node {
    /// Starts `bin --config <dir>/<name>.toml` with `toml` in it, and waits until it logs
    /// that it serves (a gate: and its listeners accept).
    pub(crate) async fn start(
        bin: &Path,
        dir: &Path,
        name: &str,
        toml: &str,
        listeners: Option<(SocketAddr, SocketAddr)>,
    ) -> Result<Node> {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, toml)?;
        let log = dir.join(format!("{name}.log"));
        let mut cmd = command(bin, &log)?;
        cmd.arg("--config").arg(&config);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LONGLINK_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
        let child = cmd
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let mut proc = Proc {
            name: name.into(),
            child,
            log,
        };
        let deadline = Instant::now() + START_LIMIT;
        while !proc.log().contains("longlink-chat serving") {
            if let Some(status) = proc.exited() {
                bail!("{name} exited ({status}) before serving:\n{}", proc.log());
            }
            if Instant::now() > deadline {
                bail!("{name} not serving within {START_LIMIT:?}:\n{}", proc.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some((tcp, ws)) = listeners {
            wait_listening(&mut proc, tcp).await?;
            wait_listening(&mut proc, ws).await?;
        }
        Ok(Node {
            proc,
            tcp: listeners.map(|l| l.0),
            ws: listeners.map(|l| l.1),
        })
    }

    /// SIGTERM, then the exit within `limit`.
    pub(crate) async fn stop(&mut self, limit: Duration) -> Result<ExitStatus> {
        self.proc.terminate();
        self.proc.wait(limit).await
    }
}
