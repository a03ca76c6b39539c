//! `longlink-bench`: a small load generator for longlink servers, loopback targets only.
//!
//! ```text
//! longlink-bench echo --addr 127.0.0.1:3563 --conns 100 --duration 5 --warmup 1
//! longlink-bench idle --addr 127.0.0.1:3563 --conns 1000 --hold 5 --pid SERVER_PID
//! longlink-bench fanout --addr 127.0.0.1:3563 --watchers 200 --rounds 20
//! longlink-bench bare-echo --addr 127.0.0.1:4000 --duration 30 &
//! longlink-bench echo --addr 127.0.0.1:4000 --conns 100 --duration 5 --raw
//! longlink-bench soak --addr 127.0.0.1:3563 --workers 200 --duration 600 --pid SERVER_PID
//! ```
//!
//! Frames are `| len u16 BE | payload |` with leaf's JSON payloads (`{"Name":{...}}`), as the
//! chat example speaks them. `echo` ping-pongs heartbeats (or, with `--raw`, 32 arbitrary bytes
//! that a bare echo server sends back); `idle` opens and holds many live connections and, given
//! the server's pid, reports its resident memory per connection; `fanout` measures how long one
//! room message takes to reach every watcher; `bare-echo` is a framework-free tokio echo server
//! to compare with. Each mode prints a short summary to stderr and one JSON line to stdout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Parser, Subcommand};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, timeout_at};

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

/// The chat example's heartbeat, answered by the same message with the server's time.
const HEARTBEAT: &str = r#"{"C2S_UserHeartBeat":{"ptime":0}}"#;

#[derive(Parser)]
#[command(
    name = "longlink-bench",
    version,
    about = "Load generator for longlink servers (loopback only)"
)]
struct Cli {
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
    /// A bare tokio echo server (no framework) as a baseline.
    BareEcho(BareEchoArgs),
    /// Churns connections (connect, log in, watch, talk, drop without a goodbye, again) and
    /// samples the server's memory and open descriptors.
    Soak(SoakArgs),
}

#[derive(Args)]
struct EchoArgs {
    /// Server address (127.0.0.0/8 or ::1 only).
    #[arg(long, default_value = "127.0.0.1:3563", value_parser = loopback)]
    addr: SocketAddr,
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
}

#[derive(Args)]
struct IdleArgs {
    /// Server address (127.0.0.0/8 or ::1 only).
    #[arg(long, default_value = "127.0.0.1:3563", value_parser = loopback)]
    addr: SocketAddr,
    /// Connections.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    conns: u32,
    /// Seconds to hold them open.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3600))]
    hold: u64,
    /// The server's pid, to read its VmRSS before and after.
    #[arg(long)]
    pid: Option<u32>,
}

#[derive(Args)]
struct FanoutArgs {
    /// Server address (127.0.0.0/8 or ::1 only).
    #[arg(long, default_value = "127.0.0.1:3563", value_parser = loopback)]
    addr: SocketAddr,
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
    /// Stop after this many seconds (default: at Ctrl-C).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration: Option<u64>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = match Cli::parse().mode {
        Mode::Echo(a) => echo(a).await,
        Mode::Idle(a) => idle(a).await,
        Mode::Fanout(a) => fanout(a).await,
        Mode::BareEcho(a) => bare_echo(a).await,
        Mode::Soak(a) => soak(a).await,
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
// Checks, frames, tokens, output

/// Prints one JSON object on a line to stdout, its keys in the order given.
macro_rules! print_result {
    ($($key:literal: $value:expr),* $(,)?) => {{
        let fields: Vec<String> = vec![$(format!("{}:{}", json!($key), json!($value))),*];
        println!("{{{}}}", fields.join(","));
    }};
}

/// Seconds rounded to milliseconds.
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

/// One frame: big-endian u16 length, then the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("payloads here are far below 64 KiB");
    let mut out = Vec::with_capacity(2 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A frame carrying a JSON message.
fn json_frame(msg: &Value) -> Vec<u8> {
    frame(msg.to_string().as_bytes())
}

/// Reads one frame's payload into `buf`, waiting at most `wait`.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    wait: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    let len = timeout_at(deadline, r.read_u16())
        .await
        .context("timed out waiting for a frame")?
        .context("reading a frame header")?;
    buf.resize(usize::from(len), 0);
    timeout_at(deadline, r.read_exact(buf))
        .await
        .context("timed out reading a frame body")?
        .context("reading a frame body")?;
    Ok(())
}

/// Writes all of `bytes`, waiting at most [`IO_TIMEOUT`].
async fn send<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<()> {
    timeout(IO_TIMEOUT, w.write_all(bytes))
        .await
        .context("timed out writing")?
        .context("writing")
}

/// Reads frames until a JSON message named `name` arrives; returns its body. An error or
/// kick from the server, or more than [`MAX_SKIPPED_FRAMES`] other frames, is a failure.
async fn expect_msg(conn: &mut Conn, name: &str) -> Result<Value> {
    let mut buf = Vec::new();
    for _ in 0..MAX_SKIPPED_FRAMES {
        read_frame(conn, &mut buf, IO_TIMEOUT)
            .await
            .with_context(|| format!("waiting for {name}"))?;
        let mut msg: Value = serde_json::from_slice(&buf).with_context(|| {
            format!(
                "non-JSON frame while waiting for {name}: {:?}",
                String::from_utf8_lossy(&buf)
            )
        })?;
        if let Some(body) = msg.get_mut(name) {
            return Ok(body.take());
        }
        if msg.get("S2C_Error").is_some() || msg.get("S2C_Kick").is_some() {
            bail!("the server answered {msg} while we waited for {name}");
        }
    }
    bail!("no {name} within {MAX_SKIPPED_FRAMES} frames")
}

/// An HS256 JWT with claims `uid` and `exp`, as the chat example's `token::sign` makes it.
fn sign_token(secret: &[u8], uid: u64, exp: i64) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(format!(r#"{{"uid":{uid},"exp":{exp}}}"#), &mut token);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut token);
    token
}

/// Logs `conn` in as `uid` (a token valid for an hour) and checks `ret == 1`.
async fn login(conn: &mut Conn, secret: &str, uid: u64) -> Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let exp = i64::try_from(now.as_secs()).unwrap_or(i64::MAX - 3600) + 3600;
    let token = sign_token(secret.as_bytes(), uid, exp);
    let msg = json!({"C2S_UserLogin": {"token": token, "login_plat": 1}});
    send(conn, &json_frame(&msg)).await?;
    let answer = expect_msg(conn, "S2C_UserLogin").await?;
    ensure!(answer["ret"] == 1, "login of uid {uid} refused: {answer}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Connections

/// A client connection; reads are buffered, writes go straight through.
type Conn = BufReader<TcpStream>;

/// What a new connection does before it counts as open.
#[derive(Clone, Copy)]
enum Handshake {
    /// Nothing.
    Plain,
    /// One heartbeat, answered.
    Heartbeat,
    /// Log in as uid index+1 and watch room 1.
    Watch,
}

async fn connect(addr: SocketAddr) -> Result<Conn> {
    let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .with_context(|| format!("connecting to {addr}: timed out"))?
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

async fn handshake(conn: &mut Conn, kind: Handshake, index: usize, secret: &str) -> Result<()> {
    match kind {
        Handshake::Plain => {}
        Handshake::Heartbeat => {
            send(conn, &frame(HEARTBEAT.as_bytes())).await?;
            expect_msg(conn, "C2S_UserHeartBeat").await?;
        }
        Handshake::Watch => {
            login(conn, secret, index as u64 + 1).await?;
            send(
                conn,
                &json_frame(&json!({"C2S_UpdateWatchRoom": {"room_id": 1}})),
            )
            .await?;
            expect_msg(conn, "S2C_UpdateWatchRoom").await?;
        }
    }
    Ok(())
}

/// Opens `n` connections, at most [`CONNECTS_IN_FLIGHT`] connecting at once, each through its
/// handshake; returns them in index order. The first failure fails the whole set.
async fn open_all(addr: SocketAddr, n: usize, kind: Handshake, secret: &str) -> Result<Vec<Conn>> {
    let permits = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let mut conns: Vec<Option<Conn>> = (0..n).map(|_| None).collect();
    for index in 0..n {
        let permit = permits.clone().acquire_owned().await?;
        let secret = secret.to_owned();
        tasks.spawn(async move {
            let mut conn = connect(addr).await?;
            handshake(&mut conn, kind, index, &secret)
                .await
                .with_context(|| format!("connection #{index}"))?;
            drop(permit);
            Ok::<_, anyhow::Error>((index, conn))
        });
        // Collect what is done so far: a failure stops the rest early.
        while let Some(done) = tasks.try_join_next() {
            let (index, conn) = done.context("a connect task panicked")??;
            conns[index] = Some(conn);
        }
    }
    while let Some(done) = tasks.join_next().await {
        let (index, conn) = done.context("a connect task panicked")??;
        conns[index] = Some(conn);
    }
    let conns: Vec<Conn> = conns.into_iter().flatten().collect();
    ensure!(
        conns.len() == n,
        "opened {} connections, not {n}",
        conns.len()
    );
    Ok(conns)
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

// ---------------------------------------------------------------------------------------------
// Modes

/// The raw mode's payload: 32 arbitrary bytes.
const RAW_PAYLOAD: [u8; 32] = *b"longlink-bench raw echo payload!";

async fn echo(args: EchoArgs) -> Result<()> {
    let (addr, conns, raw) = (args.addr, args.conns as usize, args.raw);
    let (duration, warmup) = (args.duration, args.warmup);
    check_fd_limit(conns)?;
    let conns_open = open_all(addr, conns, Handshake::Plain, "").await?;
    let request: Arc<[u8]> = if raw {
        frame(&RAW_PAYLOAD).into()
    } else {
        frame(HEARTBEAT.as_bytes()).into()
    };
    let measure_from = Instant::now() + Duration::from_secs(warmup);
    let end = measure_from + Duration::from_secs(duration);
    eprintln!(
        "echo: {conns} connections to {addr} open; warmup {warmup} s, measuring {duration} s"
    );

    let mut tasks = JoinSet::new();
    for conn in conns_open {
        tasks.spawn(ping_loop(conn, request.clone(), raw, measure_from, end));
    }
    let mut hist = Histogram::new();
    let (mut errors, mut first_error) = (0u64, None);
    while let Some(done) = tasks.join_next().await {
        match done.context("a ping task panicked")? {
            Ok(h) => hist.merge(&h),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let measured = Instant::now()
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    let rate = hist.total as f64 / measured.max(1e-9);
    let (p50, p90, p99) = (hist.quantile(0.5), hist.quantile(0.9), hist.quantile(0.99));
    eprintln!(
        "echo: {} round trips in {measured:.2} s = {rate:.0}/s; latency µs p50 {p50} p90 {p90} \
         p99 {p99} max {}; failed connections {errors}",
        hist.total, hist.max
    );
    if let Some(e) = &first_error {
        eprintln!("echo: first failure: {e}");
    }
    print_result!("mode": "echo", "raw": raw, "addr": addr.to_string(), "conns": conns,
        "duration_s": millis(measured), "warmup_s": warmup, "round_trips": hist.total,
        "rtt_per_sec": rate.round(), "p50_us": p50, "p90_us": p90, "p99_us": p99,
        "max_us": hist.max, "failed_conns": errors, "first_error": first_error);
    ensure!(errors < conns as u64, "every connection failed");
    Ok(())
}

/// One connection's ping-pong until `end`; round trips sent from `measure_from` on are
/// recorded.
async fn ping_loop(
    mut conn: Conn,
    request: Arc<[u8]>,
    raw: bool,
    measure_from: Instant,
    end: Instant,
) -> Result<Histogram> {
    let mut hist = Histogram::new();
    let mut buf = Vec::with_capacity(128);
    for _ in 0..MAX_FRAMES_PER_CONN {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        send(&mut conn, &request).await?;
        read_frame(&mut conn, &mut buf, IO_TIMEOUT).await?;
        let ok = if raw {
            buf[..] == request[2..]
        } else {
            buf.starts_with(br#"{"C2S_UserHeartBeat":"#)
        };
        ensure!(ok, "unexpected answer: {:?}", String::from_utf8_lossy(&buf));
        if sent >= measure_from {
            hist.record(sent.elapsed());
        }
    }
    Ok(hist)
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

async fn idle(args: IdleArgs) -> Result<()> {
    let (addr, n, hold, pid) = (args.addr, args.conns as usize, args.hold, args.pid);
    check_fd_limit(n)?;
    let before = pid.map(rss_bytes).transpose()?;
    let started = Instant::now();
    let mut conns = open_all(addr, n, Handshake::Heartbeat, "").await?;
    let open_s = started.elapsed().as_secs_f64();
    eprintln!("idle: {n} live connections to {addr} in {open_s:.2} s");
    let after = match pid {
        Some(pid) => {
            sleep(Duration::from_secs(1)).await;
            Some(rss_bytes(pid)?)
        }
        None => None,
    };
    let per_conn = before
        .zip(after)
        .map(|(b, a)| (a as f64 - b as f64) / n as f64);
    if let (Some(b), Some(a), Some(p)) = (before, after, per_conn) {
        eprintln!(
            "idle: server RSS {} KiB -> {} KiB: {p:.0} bytes per connection",
            b / 1024,
            a / 1024
        );
    }
    sleep(Duration::from_secs(hold)).await;
    // Still live after the hold? One more heartbeat on each.
    let mut alive = 0usize;
    let mut buf = Vec::new();
    for conn in &mut conns {
        let _ = send(conn, &frame(HEARTBEAT.as_bytes())).await;
    }
    let (deadline, mut first_error) = (Instant::now() + IO_TIMEOUT, None);
    for conn in &mut conns {
        let left = deadline.saturating_duration_since(Instant::now());
        match read_frame(conn, &mut buf, left).await {
            Ok(()) if buf.starts_with(br#"{"C2S_UserHeartBeat":"#) => alive += 1,
            Ok(()) => drop(first_error.get_or_insert_with(|| {
                format!("unexpected answer {:?}", String::from_utf8_lossy(&buf))
            })),
            Err(e) => drop(first_error.get_or_insert_with(|| format!("{e:#}"))),
        }
    }
    drop(conns);
    eprintln!("idle: held {hold} s; {alive}/{n} answered a heartbeat afterwards; closed all");
    if let Some(e) = &first_error {
        eprintln!("idle: first failure after the hold: {e}");
    }
    print_result!("mode": "idle", "addr": addr.to_string(), "conns": n, "open_s": millis(open_s),
        "hold_s": hold, "rss_before": before, "rss_after": after,
        "bytes_per_conn": per_conn.map(f64::round), "alive_after_hold": alive, "first_error": first_error);
    Ok(())
}

/// A watcher's reader: forwards `(round, arrival)` for each `S2C_Message` whose text is
/// `round-K`, until the coordinator stops listening or `max_frames` frames.
async fn watch_reader(
    mut conn: Conn,
    tx: mpsc::Sender<(u32, Instant)>,
    max_frames: u64,
) -> Result<()> {
    let mut buf = Vec::new();
    for _ in 0..max_frames {
        read_frame(&mut conn, &mut buf, 3 * IO_TIMEOUT).await?;
        let at = Instant::now();
        let Ok(msg) = serde_json::from_slice::<Value>(&buf) else {
            continue;
        };
        let round = msg["S2C_Message"]["text"]
            .as_str()
            .and_then(|t| t.strip_prefix("round-"))
            .and_then(|k| k.parse().ok());
        if let Some(round) = round
            && tx.send((round, at)).await.is_err()
        {
            break;
        }
    }
    Ok(())
}

async fn fanout(args: FanoutArgs) -> Result<()> {
    let (addr, n, rounds, secret) = (args.addr, args.watchers as usize, args.rounds, &args.secret);
    check_fd_limit(n + 1)?;
    let watchers = open_all(addr, n, Handshake::Watch, secret).await?;
    let mut sender = connect(addr).await?;
    login(&mut sender, secret, n as u64 + 1)
        .await
        .context("the sender")?;
    eprintln!("fanout: {n} watchers of room 1 and a sender logged in to {addr}");

    let (tx, mut rx) = mpsc::channel(n.clamp(64, 65_536));
    let mut readers = JoinSet::new();
    let max_frames = u64::from(rounds) + MAX_SKIPPED_FRAMES as u64;
    for conn in watchers {
        readers.spawn(watch_reader(conn, tx.clone(), max_frames));
    }
    drop(tx);
    // The sender does not watch room 1 but gets its own copy: drain it.
    let (mut sender_rd, mut sender_wr) = tokio::io::split(sender);
    readers.spawn(async move {
        let mut buf = Vec::new();
        for _ in 0..max_frames {
            read_frame(&mut sender_rd, &mut buf, 3 * IO_TIMEOUT).await?;
        }
        Ok(())
    });

    let (mut all, mut first) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let msg =
            json!({"C2S_Message": {"room_id": 1, "to_uid": 0, "text": format!("round-{round}")}});
        let bytes = json_frame(&msg);
        let t0 = Instant::now();
        send(&mut sender_wr, &bytes).await?;
        let deadline = tokio::time::Instant::from_std(t0 + IO_TIMEOUT);
        let (mut got, mut earliest, mut latest) = (0, None, t0);
        while got < n {
            let Ok(received) = timeout_at(deadline, rx.recv()).await else {
                bail!("round {round}: only {got}/{n} watchers got it within {IO_TIMEOUT:?}");
            };
            let (r, at) = received.context("every watcher connection has closed")?;
            if r == round {
                got += 1;
                earliest = Some(earliest.unwrap_or(at).min(at));
                latest = latest.max(at);
            }
        }
        all.push(latest - t0);
        first.push(earliest.unwrap_or(t0) - t0);
    }
    readers.abort_all();

    let pct = |v: &mut Vec<Duration>, q: f64| -> u64 {
        v.sort_unstable();
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_micros() as u64
    };
    let (p50, p99, max) = (pct(&mut all, 0.5), pct(&mut all, 0.99), pct(&mut all, 1.0));
    let first_p50 = pct(&mut first, 0.5);
    eprintln!(
        "fanout: {rounds} rounds to {n} watchers; all delivered after µs p50 {p50} p99 {p99} \
         max {max}; first delivered p50 {first_p50} µs"
    );
    print_result!("mode": "fanout", "addr": addr.to_string(), "watchers": n, "rounds": rounds,
        "p50_us": p50, "p99_us": p99, "max_us": max, "first_p50_us": first_p50);
    Ok(())
}

async fn bare_echo(args: BareEchoArgs) -> Result<()> {
    let BareEchoArgs { addr, duration } = args;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    eprintln!("bare-echo: listening on {}", listener.local_addr()?);
    let stop = async {
        match duration {
            Some(s) => sleep(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(stop, ctrl_c);
    let bytes = Arc::new(AtomicU64::new(0));
    let (mut accepted, mut conns) = (0u64, JoinSet::new());
    let started = Instant::now();
    for _ in 0..MAX_ACCEPTS {
        tokio::select! {
            _ = &mut stop => break,
            _ = &mut ctrl_c => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            res = listener.accept() => match res {
                Ok((stream, _)) => {
                    accepted += 1;
                    conns.spawn(echo_conn(stream, bytes.clone()));
                }
                Err(e) => {
                    eprintln!("bare-echo: accept: {e}");
                    sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    conns.abort_all();
    let echoed = bytes.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "bare-echo: stopped after {secs:.1} s; {accepted} connections, {echoed} bytes echoed"
    );
    print_result!("mode": "bare-echo", "addr": addr.to_string(), "run_s": millis(secs),
        "accepted": accepted, "bytes_echoed": echoed);
    Ok(())
}

/// Writes back whatever it reads until EOF or an error.
async fn echo_conn(mut stream: TcpStream, bytes: Arc<AtomicU64>) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..MAX_FRAMES_PER_CONN {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
        bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// soak

/// Open descriptors of a process.
fn fd_count(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&path)
        .with_context(|| format!("reading {path}"))?
        .count() as u64)
}

/// One soak client: until `deadline`, connect, log in as `uid`, watch a room, say something
/// and see it come back, then drop the socket without a goodbye (every other time with a
/// reset). Returns the number of completed cycles.
async fn soak_worker(addr: SocketAddr, uid: u64, secret: String, deadline: Instant) -> Result<u64> {
    let room = uid % 10 + 1;
    let mut cycles = 0;
    for i in 0..MAX_FRAMES_PER_CONN {
        if Instant::now() >= deadline {
            break;
        }
        let mut conn = connect(addr).await?;
        login(&mut conn, &secret, uid).await?;
        send(
            &mut conn,
            &json_frame(&json!({"C2S_UpdateWatchRoom": {"room_id": room}})),
        )
        .await?;
        expect_msg(&mut conn, "S2C_UpdateWatchRoom").await?;
        let text = format!("soak {uid} {i}");
        send(
            &mut conn,
            &json_frame(&json!({"C2S_Message": {"room_id": room, "to_uid": 0, "text": text}})),
        )
        .await?;
        // Room traffic from other workers may come first; wait for our own line.
        let mut seen = false;
        for _ in 0..MAX_SKIPPED_FRAMES {
            let msg = expect_msg(&mut conn, "S2C_Message").await?;
            if msg["text"] == text.as_str() {
                seen = true;
                break;
            }
        }
        ensure!(seen, "uid {uid} never saw its own message");
        let stream = conn.into_inner();
        if i % 2 == 0 {
            // Drop with a reset, as a client that vanishes.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
        drop(stream);
        cycles += 1;
    }
    Ok(cycles)
}

async fn soak(args: SoakArgs) -> Result<()> {
    let (addr, pid) = (args.addr, args.pid);
    check_fd_limit(args.workers as usize)?;
    let sample = |label: &str, t0: Instant| -> Result<(u64, u64)> {
        let (rss, fds) = (rss_bytes(pid)?, fd_count(pid)?);
        eprintln!(
            "soak: {label:>6} t={:>5.0}s rss={:.1} MiB fds={fds}",
            t0.elapsed().as_secs_f64(),
            rss as f64 / (1024.0 * 1024.0)
        );
        Ok((rss, fds))
    };
    let t0 = Instant::now();
    let (start_rss, start_fds) = sample("start", t0)?;
    let deadline = t0 + Duration::from_secs(args.duration);
    let mut workers = JoinSet::new();
    for w in 0..args.workers {
        workers.spawn(soak_worker(
            addr,
            u64::from(w) + 1,
            args.secret.clone(),
            deadline,
        ));
    }
    let (mut peak_rss, mut peak_fds) = (start_rss, start_fds);
    while Instant::now() < deadline {
        sleep(Duration::from_secs(args.sample).min(deadline - Instant::now())).await;
        let (rss, fds) = sample("churn", t0)?;
        peak_rss = peak_rss.max(rss);
        peak_fds = peak_fds.max(fds);
    }
    let mut cycles = 0;
    let mut failures = 0;
    let mut first_error = None;
    while let Some(done) = workers.join_next().await {
        match done.context("soak worker")? {
            Ok(n) => cycles += n,
            Err(e) => {
                failures += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    sleep(Duration::from_secs(args.settle)).await;
    let (end_rss, end_fds) = sample("end", t0)?;
    print_result! {
        "mode": "soak",
        "addr": addr.to_string(),
        "workers": args.workers,
        "duration_s": args.duration,
        "cycles": cycles,
        "failed_workers": failures,
        "first_error": first_error,
        "start_rss": start_rss,
        "peak_rss": peak_rss,
        "end_rss": end_rss,
        "start_fds": start_fds,
        "peak_fds": peak_fds,
        "end_fds": end_fds,
    };
    ensure!(failures == 0, "{failures} soak workers failed");
    Ok(())
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
