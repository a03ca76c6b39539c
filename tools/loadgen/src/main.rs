//! `longlink-bench`: a small load generator for longlink servers, loopback targets only.
//!
//! ```text
//! longlink-bench echo --addr 127.0.0.1:3563 --conns 100 --duration 5 --warmup 1
//! longlink-bench echo --transport ws --addr 127.0.0.1:3653 --conns 100 --duration 5
//! longlink-bench echo --encoding protobuf --addr 127.0.0.1:3563 --conns 100 --duration 5
//! longlink-bench idle --addr 127.0.0.1:3563 --conns 1000 --hold 5 --pid SERVER_PID
//! longlink-bench fanout --transport ws --addr 127.0.0.1:3653 --watchers 200 --rounds 20
//! longlink-bench bare-echo --addr 127.0.0.1:4000 --duration 30 &
//! longlink-bench echo --addr 127.0.0.1:4000 --conns 100 --duration 5 --raw
//! longlink-bench bare-echo --transport ws --addr 127.0.0.1:4001 --duration 30 &
//! longlink-bench echo --transport ws --addr 127.0.0.1:4001 --conns 100 --duration 5 --raw
//! longlink-bench bare-fanout --addr 127.0.0.1:4002 --duration 60 &
//! longlink-bench fanout --addr 127.0.0.1:4002 --watchers 1000 --rounds 30
//! longlink-bench echo --resume --addr 127.0.0.1:3563 --conns 100 --duration 5
//! longlink-bench reconnect --addr 127.0.0.1:3563 --iterations 200
//! longlink-bench soak --addr 127.0.0.1:3563 --workers 200 --duration 600 --pid SERVER_PID
//! longlink-bench hold --gates 127.0.0.1:3563,127.0.0.1:3564 --source 127.0.0.2 --conns 20000 --status s.json
//! longlink-bench presence --addr 127.0.0.1:3563 --watchers 1000 --stuck 10 --pid SERVER_PID
//! longlink-bench storm --gates 127.0.0.1:3563,127.0.0.1:3564 --sessions 10000 --status s.json
//! ```
//!
//! `echo`, `idle` and `fanout` speak the chat example's protocol through `longlink-client`:
//! over TCP (`| len u16 BE | payload |`) or WebSocket (one binary message per payload), in JSON
//! (`{"Name":{...}}`) or protobuf (`| id u16 BE | body |`), as `--transport` and `--encoding`
//! say (they must match the server). `echo` ping-pongs heartbeats (or, with `--raw`, 32
//! arbitrary bytes that a bare echo server sends back); `idle` opens and holds many live
//! connections and, given the server's pid, reports its resident memory per connection;
//! `fanout` measures how long one room message takes to reach every watcher; `bare-echo` is a
//! framework-free tokio echo server (TCP, or WebSocket with tokio-tungstenite) to compare
//! with; `soak` churns raw TCP + JSON connections; `presence` holds a room with some watchers
//! that stopped reading while typing signals and count changes flow. Each mode shows a progress bar on stderr
//! (unless stderr is not a terminal, or with `--quiet`), prints a short summary to stderr and
//! one JSON line of results to stdout.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Prints one JSON object on a line to stdout, its keys in the order given.
macro_rules! print_result {
    ($($key:literal: $value:expr),* $(,)?) => {{
        let fields: Vec<String> =
            vec![$(format!("{}:{}", serde_json::json!($key), serde_json::json!($value))),*];
        println!("{{{}}}", fields.join(","));
    }};
}

mod bare;
mod bare_fanout;
mod hold;
mod load;
mod presence;
mod resume;
mod session;
mod soak;
mod storm;

use load::{Target, TransportArg};

/// Longest wait for a connect, a write or an expected answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Connects (with their handshake) in flight at once.
const CONNECTS_IN_FLIGHT: usize = 200;
/// File descriptors kept in reserve beyond the connections themselves.
const FD_MARGIN: u64 = 64;
/// Count bound on any per-connection loop (the time bound normally ends it first).
const MAX_FRAMES_PER_CONN: u64 = 1 << 32;
/// Unrelated frames skipped while waiting for an expected answer.
const MAX_SKIPPED_FRAMES: usize = 1000;
/// Count bound on the bare echo server's accept loop.
const MAX_ACCEPTS: u64 = 1 << 32;
/// The chat example's development token secret.
const DEV_SECRET: &str = "longlink-dev-secret";

#[derive(Parser)]
#[command(
    name = "longlink-bench",
    version,
    about = "Load generator for longlink servers (loopback only)"
)]
struct Cli {
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long, global = true)]
    quiet: bool,
    /// Run on tokio's current-thread runtime (tasks polled in the order they were woken)
    /// instead of the multi-thread one, whose LIFO slot lets a just-woken task run before
    /// older ones: with one core for the load, the multi-thread runtime serves a few
    /// connections over and over while others wait.
    #[arg(long, global = true)]
    current_thread: bool,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// N connections ping-pong heartbeats (or raw frames) for a while: throughput and latency.
    Echo(EchoArgs),
    /// Opens N live connections, holds them, and reports the server's memory per connection.
    Idle(IdleArgs),
    /// N watchers of room 1; a sender says K messages; time until all watchers have each.
    Fanout(FanoutArgs),
    /// A bare tokio echo server (no framework) as a baseline: TCP, or WebSocket.
    BareEcho(BareEchoArgs),
    /// A bare tokio room server (tokio's chat example shape) as `fanout`'s baseline: TCP and
    /// JSON only.
    BareFanout(BareFanoutArgs),
    /// A resumable session drops with an answer unread, then resumes on a new socket: the
    /// time from that socket's connect to the replayed answer (the server's resume_window on).
    Reconnect(ReconnectArgs),
    /// Churns connections (connect, log in, watch, talk, drop without a goodbye, again) and
    /// samples the server's memory and open descriptors. TCP and JSON only.
    Soak(SoakArgs),
    /// Holds many logged-in watchers from one source address over several gates and counts
    /// the broadcasts and pushes they receive, in a status file (scripts/bench-scale.sh).
    Hold(hold::HoldArgs),
    /// A room with stuck watchers while typing signals and count changes flow (raw TCP,
    /// JSON): the healthy watchers' latency, the stuck ones' fate, the server's memory.
    Presence(PresenceArgs),
    /// Resumable sessions over several gates while their rooms stream numbered messages:
    /// they follow `LL_Move`, resume on random gates after a cut (SIGUSR1), and count what
    /// is lost or doubled, in a status file (scripts/bench_storm.py).
    Storm(storm::StormArgs),
}

#[derive(Args)]
struct EchoArgs {
    #[command(flatten)]
    target: Target,
    /// Connections.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    conns: u32,
    /// Measured seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// Seconds of unmeasured traffic before the measurement.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600))]
    warmup: u64,
    /// Send 32 arbitrary bytes per frame and expect them back (for a bare echo server).
    #[arg(long)]
    raw: bool,
    /// What to ping with: `heartbeat` (answered by the gate itself) or `watch` (log in, then
    /// `C2S_UpdateWatchRoom{room_id: 0}`, answered by the chat module: on a cluster gate node
    /// it crosses NATS to a chat node and back).
    #[arg(long, value_enum, default_value_t = EchoMessage::Heartbeat)]
    message: EchoMessage,
    /// The token secret the server checks logins with (`--message watch`).
    #[arg(long, default_value = DEV_SECRET)]
    secret: String,
}

/// The request `echo` sends.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EchoMessage {
    /// `C2S_UserHeartBeat`, answered with the same type.
    Heartbeat,
    /// `C2S_UpdateWatchRoom{0}` after a login, answered with `S2C_UpdateWatchRoom`.
    Watch,
}

#[derive(Args)]
struct IdleArgs {
    #[command(flatten)]
    target: Target,
    /// Connections.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    conns: u32,
    /// Seconds to hold them open (over WebSocket, keep it under the server's
    /// ws_ping_interval + ws_pong_timeout: held connections do not answer pings).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3600))]
    hold: u64,
    /// The server's pid, to read its VmRSS before and after.
    #[arg(long)]
    pid: Option<u32>,
    /// After its heartbeat, each connection also logs in (uid index+1) and watches room 1.
    #[arg(long)]
    watch: bool,
    /// The token secret the server checks logins with (`--watch`).
    #[arg(long, default_value = DEV_SECRET)]
    secret: String,
}

#[derive(Args)]
struct ReconnectArgs {
    #[command(flatten)]
    target: Target,
    /// Resumes, one after another.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    iterations: u32,
}

#[derive(Args)]
struct FanoutArgs {
    #[command(flatten)]
    target: Target,
    /// Watchers (uids 1..=N; the sender is uid N+1).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    watchers: u32,
    /// Messages, one at a time.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rounds: u32,
    /// The token secret the server checks logins with.
    #[arg(long, default_value = DEV_SECRET)]
    secret: String,
}

#[derive(Args)]
struct PresenceArgs {
    /// Server address (127.0.0.0/8 or ::1 only), TCP with JSON.
    #[arg(long, default_value = "127.0.0.1:3563", value_parser = loopback)]
    addr: SocketAddr,
    /// Watchers of room 1 (uids 1..=N; the sender is N+1, the toggler N+2).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    watchers: u32,
    /// Of them, how many stop reading (the last ones).
    #[arg(long, default_value_t = 10)]
    stuck: u32,
    /// Of the healthy ones, how many send C2S_Typing, 5 a second each.
    #[arg(long, default_value_t = 20)]
    typers: u32,
    /// Watcher-count changes a second (a connection joining and leaving the room).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    toggles: u32,
    /// Timestamped room messages a second (their latency is measured).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    msg_rate: u32,
    /// Seconds of flow.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// The server's pid (its VmRSS is sampled).
    #[arg(long)]
    pid: Option<u32>,
    /// The token secret the server checks logins with.
    #[arg(long, default_value = DEV_SECRET)]
    secret: String,
}

#[derive(Args)]
struct SoakArgs {
    /// Server address (127.0.0.0/8 or ::1 only).
    #[arg(long, default_value = "127.0.0.1:3563", value_parser = loopback)]
    addr: SocketAddr,
    /// Concurrent clients, each reconnecting over and over.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    workers: u32,
    /// Seconds of churn.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration: u64,
    /// The server's pid (its VmRSS and /proc/PID/fd are sampled).
    #[arg(long)]
    pid: u32,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    sample: u64,
    /// Seconds to wait after the churn before the last sample.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=600))]
    settle: u64,
    /// The token secret the server checks logins with.
    #[arg(long, default_value = DEV_SECRET)]
    secret: String,
}

#[derive(Args)]
struct BareEchoArgs {
    /// Listen address (127.0.0.0/8 or ::1 only).
    #[arg(long, default_value = "127.0.0.1:4000", value_parser = loopback)]
    addr: SocketAddr,
    /// tcp: echo bytes as they come; ws: accept WebSocket and echo each message (as binary).
    #[arg(long, value_enum, default_value_t = TransportArg::Tcp)]
    transport: TransportArg,
    /// Stop after this many seconds (default: at Ctrl-C).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration: Option<u64>,
}

#[derive(Args)]
struct BareFanoutArgs {
    /// Listen address (127.0.0.0/8 or ::1 only).
    #[arg(long, default_value = "127.0.0.1:4002", value_parser = loopback)]
    addr: SocketAddr,
    /// Stop after this many seconds (default: at Ctrl-C).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration: Option<u64>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut runtime = if cli.current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    match runtime.enable_all().build() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("longlink-bench: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> std::process::ExitCode {
    let quiet = cli.quiet;
    let result = match cli.mode {
        Mode::Echo(a) => load::echo(a, quiet).await,
        Mode::Idle(a) => load::idle(a, quiet).await,
        Mode::Fanout(a) => load::fanout(a, quiet).await,
        Mode::Reconnect(a) => resume::reconnect(a, quiet).await,
        Mode::BareEcho(a) => bare::bare_echo(a).await,
        Mode::BareFanout(a) => bare_fanout::bare_fanout(a).await,
        Mode::Soak(a) => soak::soak(a).await,
        Mode::Hold(a) => hold::hold(a).await,
        Mode::Presence(a) => presence::presence(a).await,
        Mode::Storm(a) => storm::storm(a).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("longlink-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checks, tokens, output

/// A progress bar on stderr (`len` steps of `unit`), or a hidden one with `quiet` or when
/// stderr is not a terminal.
fn progress(quiet: bool, len: u64, prefix: &'static str, unit: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template =
        format!("{{prefix}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} {{msg}}");
    let style =
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar =
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()).with_style(style);
    bar.set_prefix(prefix);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Seconds rounded to milliseconds.
/// This process's CPU time so far (user + system), in seconds: `/proc/self/stat` counts in
/// USER_HZ ticks, 100 a second on Linux.
fn own_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Measures this process's own CPU use over a span: percent of one core.
struct OwnCpu {
    wall: std::time::Instant,
    cpu: f64,
}

impl OwnCpu {
    fn start() -> OwnCpu {
        OwnCpu {
            wall: std::time::Instant::now(),
            cpu: own_cpu_secs(),
        }
    }

    /// Percent of one core used since `start` (100: the load generator is the limit).
    fn percent(&self) -> f64 {
        let wall = self.wall.elapsed().as_secs_f64().max(1e-9);
        ((own_cpu_secs() - self.cpu) / wall * 1000.0).round() / 10.0
    }
}

fn millis(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

/// Parses `IP:PORT` and refuses anything that is not a loopback address.
fn loopback(addr: &str) -> Result<SocketAddr, String> {
    let sa: SocketAddr = addr
        .parse()
        .map_err(|_| format!("expected IP:PORT such as 127.0.0.1:3563, not {addr:?}"))?;
    if !sa.ip().is_loopback() {
        return Err(format!(
            "refusing {sa}: only loopback targets (127.0.0.0/8 or ::1) are allowed"
        ));
    }
    Ok(sa)
}

/// Fails clearly if `conns` connections (plus a margin) exceed the open-files soft limit.
fn check_fd_limit(conns: usize) -> Result<()> {
    let limits =
        std::fs::read_to_string("/proc/self/limits").context("reading /proc/self/limits")?;
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .context("no \"Max open files\" line in /proc/self/limits")?;
    if soft == "unlimited" {
        return Ok(());
    }
    let soft: u64 = soft.parse().context("parsing the open-files soft limit")?;
    let need = conns as u64 + FD_MARGIN;
    ensure!(
        need <= soft,
        "{conns} connections need {need} open files but the soft limit is {soft}; \
         raise it first (e.g. `ulimit -n {need}`) or use fewer connections"
    );
    Ok(())
}

/// An HS256 JWT with claims `uid` and `exp`, signed by the chat example's `token::sign`.
fn sign_token(secret: &[u8], uid: u64, exp: i64) -> String {
    longlink_chat::token::sign(secret, &longlink_chat::token::Claims { uid, exp })
}

/// A process's resident set size in bytes, from `/proc/PID/status`.
fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .with_context(|| format!("no VmRSS in {path}"))?;
    Ok(kb.trim().parse::<u64>().context("parsing VmRSS")? * 1024)
}

// ---------------------------------------------------------------------------------------------
// Latency statistics

/// Latencies in microseconds, log-linear buckets: exact below 256 µs, then 128 buckets per
/// power of two (under 1% error). Its size is fixed whatever the number of samples.
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

/// Values are clamped below 2^40 µs (about 12 days).
const HIST_MAX: u64 = (1 << 40) - 1;

fn bucket_of(v: u64) -> usize {
    let v = v.min(HIST_MAX);
    if v < 256 {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - 7; // keep the top 8 bits: 128..=255
    (u64::from(shift) * 128 + (v >> shift)) as usize
}

/// The largest value that falls in bucket `i`.
fn bucket_top(i: usize) -> u64 {
    if i < 256 {
        return i as u64;
    }
    let shift = i / 128 - 1;
    (((i % 128 + 128 + 1) as u64) << shift) - 1
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; bucket_of(HIST_MAX) + 1],
            total: 0,
            max: 0,
        }
    }

    fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket_of(us)] += 1;
        self.total += 1;
        self.max = self.max.max(us);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The `q` quantile (0..=1), as its bucket's upper bound; 0 when empty.
    fn quantile(&self, q: f64) -> u64 {
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total.max(1));
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank && c > 0 {
                return bucket_top(i).min(self.max);
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_matches_the_chat_example() {
        // The known-good token of examples/chat/src/token.rs.
        let expected = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                        eyJ1aWQiOjQyLCJleHAiOjQxMDI0NDQ4MDB9.\
                        h530e2Pt2PzJTuPO1Y7AtwZ9HY1ha69AtMWaVFtinNM";
        assert_eq!(
            sign_token(DEV_SECRET.as_bytes(), 42, 4_102_444_800),
            expected
        );
    }

    #[test]
    fn only_loopback() {
        assert!(loopback("127.0.0.1:3563").is_ok());
        assert!(loopback("127.9.8.7:1").is_ok());
        assert!(loopback("[::1]:3563").is_ok());
        assert!(loopback("10.0.0.1:3563").is_err());
        assert!(loopback("0.0.0.0:3563").is_err());
        assert!(loopback("[::ffff:127.0.0.1]:1").is_err());
        assert!(loopback("localhost:3563").is_err());
    }

    #[test]
    fn histogram_buckets_and_quantiles() {
        let mut last = 0;
        for v in [0, 1, 255, 256, 257, 511, 512, 1000, 123_456, HIST_MAX] {
            let b = bucket_of(v);
            assert!(b >= last, "{v}");
            last = b;
            assert!(bucket_top(b) >= v && bucket_top(b) - v <= v / 128, "{v}");
        }
        let mut h = Histogram::new();
        for us in 1..=1000 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5);
        assert!((500..=504).contains(&p50), "{p50}");
        assert_eq!(h.quantile(1.0), 1000);
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }
}
