//! `hold`: many raw TCP + JSON connections from one loopback source address, spread over
//! several gates, each logged in (uids `first_uid..`) and watching one of `rooms` rooms, then
//! held while they count what arrives: `S2C_Message`s whose text is `b<round>` (a broadcast:
//! how many connections have it and when the last one got it) or starts with `p` (a push).
//! The counts go to a status file, rewritten ten times a second, that `scripts/bench-scale.sh`
//! reads from several of these processes at once.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use clap::Args;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;

use crate::{CONNECTS_IN_FLIGHT, DEV_SECRET, IO_TIMEOUT, check_fd_limit, loopback, sign_token};

/// Broadcast rounds counted (`b0` .. `b63`).
const ROUNDS: usize = 64;

#[derive(Args)]
pub(crate) struct HoldArgs {
    /// The gates, comma-separated (127.0.0.0/8 or ::1 only); connection i goes to gate i mod n.
    #[arg(long, value_delimiter = ',', value_parser = loopback, required = true)]
    gates: Vec<SocketAddr>,
    /// The loopback address to connect from (one address has about 28,000 ephemeral ports).
    #[arg(long, default_value = "127.0.0.1")]
    source: IpAddr,
    /// The first uid; connection i logs in as first_uid + i.
    #[arg(long, default_value_t = 1)]
    first_uid: u64,
    /// Connections.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    conns: u32,
    /// Rooms: uid u watches room u mod rooms + 1.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    rooms: u64,
    /// Seconds to hold them at most (the bench stops the process sooner).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    hold: u64,
    /// Where to write the counts (JSON), ten times a second.
    #[arg(long)]
    status: PathBuf,
    /// The token secret the server checks logins with.
    #[arg(long, default_value = DEV_SECRET)]
    secret: String,
}

/// What every connection adds to.
struct Counts {
    connected: AtomicU64,
    logged_in: AtomicU64,
    failed: AtomicU64,
    /// When the last login completed (ns since the Unix epoch).
    last_login_ns: AtomicU64,
    pushes: AtomicU64,
    /// Per round: connections that have it, and the latest arrival (ns since the epoch).
    round_count: Vec<AtomicU64>,
    round_last_ns: Vec<AtomicU64>,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Counts {
    fn new() -> Counts {
        let zeros = || (0..ROUNDS).map(|_| AtomicU64::new(0)).collect();
        Counts {
            connected: AtomicU64::new(0),
            logged_in: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_login_ns: AtomicU64::new(0),
            pushes: AtomicU64::new(0),
            round_count: zeros(),
            round_last_ns: zeros(),
            first_error: std::sync::Mutex::new(None),
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One frame: big-endian u16 length, then the JSON payload.
fn frame(msg: &Value) -> Vec<u8> {
    let payload = msg.to_string();
    let mut out = Vec::with_capacity(2 + payload.len());
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload.as_bytes());
    out
}

async fn read_frame(r: &mut BufReader<TcpStream>, buf: &mut Vec<u8>) -> Result<()> {
    let len = r.read_u16().await.context("reading a frame header")?;
    buf.resize(usize::from(len), 0);
    r.read_exact(buf).await.context("reading a frame body")?;
    Ok(())
}

/// Reads until a frame whose JSON name is `name`; its body.
async fn expect(r: &mut BufReader<TcpStream>, buf: &mut Vec<u8>, name: &str) -> Result<Value> {
    for _ in 0..crate::MAX_SKIPPED_FRAMES {
        timeout(IO_TIMEOUT, read_frame(r, buf))
            .await
            .with_context(|| format!("timed out waiting for {name}"))??;
        let mut v: Value = serde_json::from_slice(buf).context("a frame that is not JSON")?;
        if let Some(body) = v.get_mut(name) {
            return Ok(body.take());
        }
        ensure!(v.get("S2C_Error").is_none(), "the server answered {v}");
    }
    anyhow::bail!("no {name}")
}

/// Connects from `source`, logs in as `uid` and watches `room`.
async fn open(
    source: IpAddr,
    gate: SocketAddr,
    uid: u64,
    room: u64,
    secret: &str,
    counts: &Counts,
) -> Result<BufReader<TcpStream>> {
    let socket = if gate.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket
        .bind(SocketAddr::new(source, 0))
        .context("binding the source address")?;
    let stream = timeout(IO_TIMEOUT, socket.connect(gate))
        .await
        .context("timed out connecting")?
        .with_context(|| format!("connecting to {gate}"))?;
    counts.connected.fetch_add(1, Ordering::Relaxed);
    let mut r = BufReader::with_capacity(512, stream);
    let exp = (now_ns() / 1_000_000_000) as i64 + 3600;
    let login = json!({"C2S_UserLogin": {"token": sign_token(secret.as_bytes(), uid, exp), "login_plat": 1}});
    r.get_mut().write_all(&frame(&login)).await?;
    let mut buf = Vec::new();
    let answer = expect(&mut r, &mut buf, "S2C_UserLogin").await?;
    ensure!(
        answer["ret"] == json!(1),
        "login of {uid} refused: {answer}"
    );
    r.get_mut()
        .write_all(&frame(&json!({"C2S_UpdateWatchRoom": {"room_id": room}})))
        .await?;
    expect(&mut r, &mut buf, "S2C_UpdateWatchRoom").await?;
    Ok(r)
}

/// Counts what arrives on one connection until it closes.
async fn count(mut r: BufReader<TcpStream>, counts: &Counts) {
    let mut buf = Vec::new();
    while read_frame(&mut r, &mut buf).await.is_ok() {
        if !buf.starts_with(br#"{"S2C_Message""#) {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&buf) else {
            continue;
        };
        let text = v["S2C_Message"]["text"].as_str().unwrap_or_default();
        if text.starts_with('p') {
            counts.pushes.fetch_add(1, Ordering::Relaxed);
        } else if let Some(round) = text.strip_prefix('b').and_then(|k| k.parse::<usize>().ok())
            && round < ROUNDS
        {
            counts.round_count[round].fetch_add(1, Ordering::Relaxed);
            counts.round_last_ns[round].fetch_max(now_ns(), Ordering::Relaxed);
        }
    }
}

fn status(counts: &Counts, conns: u32, started_ns: u64) -> Value {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let rounds: Vec<[u64; 2]> = (0..ROUNDS)
        .map(|i| [load(&counts.round_count[i]), load(&counts.round_last_ns[i])])
        .collect();
    let first_error = counts.first_error.lock().ok().and_then(|e| e.clone());
    json!({
        "conns": conns, "started_ns": started_ns, "connected": load(&counts.connected),
        "logged_in": load(&counts.logged_in), "failed": load(&counts.failed),
        "last_login_ns": load(&counts.last_login_ns), "pushes": load(&counts.pushes),
        "rounds": rounds, "first_error": first_error,
    })
}

fn write_status(path: &PathBuf, v: &Value) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, v.to_string())?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

pub(crate) async fn hold(args: HoldArgs) -> Result<()> {
    ensure!(
        args.source.is_loopback(),
        "--source must be a loopback address"
    );
    check_fd_limit(args.conns as usize)?;
    let counts = Arc::new(Counts::new());
    let started_ns = now_ns();
    let permits = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let secret: Arc<str> = args.secret.clone().into();
    for i in 0..u64::from(args.conns) {
        let permit = permits.clone().acquire_owned().await?;
        let (counts, secret) = (counts.clone(), secret.clone());
        let gate = args.gates[(i as usize) % args.gates.len()];
        let uid = args.first_uid + i;
        let (source, room) = (args.source, uid % args.rooms + 1);
        tokio::spawn(async move {
            let opened = open(source, gate, uid, room, &secret, &counts).await;
            drop(permit);
            match opened {
                Ok(r) => {
                    counts.logged_in.fetch_add(1, Ordering::Relaxed);
                    counts.last_login_ns.fetch_max(now_ns(), Ordering::Relaxed);
                    count(r, &counts).await;
                }
                Err(e) => {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut first) = counts.first_error.lock() {
                        first.get_or_insert_with(|| format!("uid {uid} via {gate}: {e:#}"));
                    }
                }
            }
        });
    }
    let end = tokio::time::Instant::now() + Duration::from_secs(args.hold);
    while tokio::time::Instant::now() < end {
        write_status(&args.status, &status(&counts, args.conns, started_ns))?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
