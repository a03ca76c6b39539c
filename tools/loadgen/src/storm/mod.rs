//! `storm`: many resumable sessions (raw TCP + JSON) over several gates of a cluster, each
//! logged in and watching one of the process's rooms, while one sender per room streams
//! numbered messages to it; each session checks that it gets every one exactly once and in
//! order. A session follows `LL_Move` (a stopping gate: it waits `after_ms` and resumes on a
//! random other gate); on SIGUSR1 every session drops its socket at once (a reset) and
//! resumes on a random gate (a resume storm); SIGUSR2 stops the streams. The counts go to a
//! status file, rewritten ten times a second, that `scripts/bench_storm.py` reads from one or
//! more of these processes.
//!
//! ```text
//! longlink-bench storm --gates 127.0.0.1:3563 --resume-to 127.0.0.1:3564,127.0.0.1:3565 \
//!     --stream-gate 127.0.0.1:3565 --sessions 10000 --source 127.10.0.1 --sources 200 \
//!     --status load1.json
//! ```

mod session;
mod stream;
mod wire;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use clap::Args;
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};

use crate::{CONNECTS_IN_FLIGHT, DEV_SECRET, check_fd_limit, loopback};

#[derive(Args)]
pub(crate) struct StormArgs {
    /// The gates the sessions start on, comma-separated (loopback only); session i goes to
    /// gate i mod n.
    #[arg(long, value_delimiter = ',', value_parser = loopback, required = true)]
    gates: Vec<SocketAddr>,
    /// The gates a session resumes on after a cut or a move, drawn at random (a move draws
    /// among those it is not on) [default: --gates].
    #[arg(long, value_delimiter = ',', value_parser = loopback)]
    resume_to: Vec<SocketAddr>,
    /// The gate the room senders connect to [default: the last of --resume-to].
    #[arg(long, value_parser = loopback)]
    stream_gate: Option<SocketAddr>,
    /// Resumable sessions.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    sessions: u32,
    /// The first loopback source address (IPv4: 127.x.y.z).
    #[arg(long, default_value = "127.0.0.1")]
    source: IpAddr,
    /// Source addresses, counting up from --source; session i connects from the
    /// (i mod n)-th. Many keep each address under the gates' `max_waiting_per_ip`, as
    /// clients of their own addresses would be.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    sources: u32,
    /// The first uid: session i logs in as first_uid + i, room r's sender as
    /// first_uid + sessions + r.
    #[arg(long, default_value_t = 1)]
    first_uid: u64,
    /// Rooms, numbered from --first-room: session i watches room first_room + i mod rooms.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    rooms: u64,
    /// The first room's id.
    #[arg(long, default_value_t = 1)]
    first_room: u64,
    /// Numbered messages a second to each room (the chat allows 20 a second per sender).
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// The gates' resume_window, in seconds: a session not resumed within it is lost.
    #[arg(long, default_value_t = 30)]
    window: u64,
    /// Seconds to run at most (the bench stops the process sooner).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    hold: u64,
    /// Where to write the counts (JSON), ten times a second.
    #[arg(long)]
    status: PathBuf,
    /// The token secret the server checks logins with.
    #[arg(long, default_value = DEV_SECRET)]
    secret: String,
}

/// What every session adds to.
#[derive(Default)]
struct Counts {
    ready: AtomicU64,
    failed: AtomicU64,
    /// Sessions cut by SIGUSR1, and those of them resumed since (and when the last one was).
    cut: AtomicU64,
    resumed: AtomicU64,
    last_resumed_ns: AtomicU64,
    /// `LL_Move`s heard (the first one's time), and sessions moved since (the last one's).
    moves_told: AtomicU64,
    first_move_ns: AtomicU64,
    moved: AtomicU64,
    last_moved_ns: AtomicU64,
    /// Drops no cut or move caused (each is resumed like a cut), resumes refused `"retry"`,
    /// failed reconnection attempts, sessions lost (refused for good, or the window passed).
    drops: AtomicU64,
    retries: AtomicU64,
    reconnect_errors: AtomicU64,
    lost_sessions: AtomicU64,
    /// Stream messages received, received again, and skipped over.
    stream_received: AtomicU64,
    dups: AtomicU64,
    gaps: AtomicU64,
    sender_errors: AtomicU64,
}

/// What the sessions share.
struct Shared {
    counts: Counts,
    resume_to: Vec<SocketAddr>,
    window: Duration,
    secret: String,
    cut: watch::Receiver<u64>,
    /// Per session, the next stream number expected (`u64::MAX`: failed or lost).
    next: Vec<AtomicU64>,
    /// Per room, the stream messages said so far.
    sent: Vec<AtomicU64>,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    fn error(&self, e: String) {
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(e);
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub(crate) async fn storm(args: StormArgs) -> Result<()> {
    ensure!(
        args.source.is_loopback(),
        "--source must be a loopback address"
    );
    ensure!(
        args.rate > 0.0 && args.rate <= 1000.0,
        "--rate must be in (0, 1000]"
    );
    let last = wire::nth_source(args.source, args.sources - 1);
    ensure!(last.is_loopback(), "--sources runs past 127.255.255.255");
    check_fd_limit(args.sessions as usize + args.rooms as usize)?;
    let resume_to = match args.resume_to.is_empty() {
        true => args.gates.clone(),
        false => args.resume_to.clone(),
    };
    let stream_gate = args.stream_gate.unwrap_or(resume_to[resume_to.len() - 1]);
    let (cut_tx, cut) = watch::channel(0u64);
    let (stop_tx, stop) = watch::channel(false);
    let n = args.sessions as usize;
    let sh = Arc::new(Shared {
        counts: Counts {
            first_move_ns: AtomicU64::new(u64::MAX),
            ..Counts::default()
        },
        resume_to,
        window: Duration::from_secs(args.window),
        secret: args.secret.clone(),
        cut,
        next: (0..n).map(|_| AtomicU64::new(0)).collect(),
        sent: (0..args.rooms).map(|_| AtomicU64::new(0)).collect(),
        first_error: std::sync::Mutex::new(None),
    });
    let started_ns = now_ns();
    open_sessions(&args, &sh).await?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("SIGUSR1")?;
    let mut usr2 = signal(SignalKind::user_defined2()).context("SIGUSR2")?;
    let mut state = State {
        started_ns,
        ..State::default()
    };
    let end = tokio::time::Instant::now() + Duration::from_secs(args.hold);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while tokio::time::Instant::now() < end {
        tokio::select! {
            _ = tick.tick() => {}
            _ = usr1.recv() => {
                state.cut_ns = now_ns();
                cut_tx.send_modify(|g| *g += 1);
            }
            _ = usr2.recv() => {
                state.stopped_ns = now_ns();
                let _ = stop_tx.send(true);
            }
        }
        let c = &sh.counts;
        let settled = c.ready.load(Ordering::Relaxed) + c.failed.load(Ordering::Relaxed);
        if state.stream_ns == 0 && settled >= n as u64 {
            state.stream_ns = now_ns();
            start_streams(&args, &sh, stream_gate, &stop).await;
        }
        write_status(&args.status, &status(&args, &sh, &state))?;
    }
    Ok(())
}

/// When things happened (ns since the Unix epoch; 0: not yet).
#[derive(Default)]
struct State {
    started_ns: u64,
    stream_ns: u64,
    cut_ns: u64,
    stopped_ns: u64,
}

/// Starts every session's task (at most `CONNECTS_IN_FLIGHT` opening at once); returns once
/// they have all been started.
async fn open_sessions(args: &StormArgs, sh: &Arc<Shared>) -> Result<()> {
    let permits = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    for i in 0..args.sessions as usize {
        let permit = permits.clone().acquire_owned().await?;
        let uid = args.first_uid + i as u64;
        let room = args.first_room + i as u64 % args.rooms;
        let source = wire::nth_source(args.source, i as u32 % args.sources);
        let gate = args.gates[i % args.gates.len()];
        let sh = sh.clone();
        tokio::spawn(async move {
            let mut s = session::Session::new(i, uid, room, source, gate);
            let opened = s.open(&sh).await;
            drop(permit);
            let c = &sh.counts;
            let why = match opened {
                Ok(conn) => {
                    c.ready.fetch_add(1, Ordering::Relaxed);
                    let why = s.serve(conn, sh.clone()).await;
                    c.lost_sessions.fetch_add(1, Ordering::Relaxed);
                    why
                }
                Err(e) => {
                    c.failed.fetch_add(1, Ordering::Relaxed);
                    format!("{e:#}")
                }
            };
            sh.next[i].store(u64::MAX, Ordering::Relaxed);
            sh.error(format!("uid {uid} via {gate}: {why}"));
        });
    }
    Ok(())
}

/// Connects one sender per room to `gate` and starts its stream.
async fn start_streams(
    args: &StormArgs,
    sh: &Arc<Shared>,
    gate: SocketAddr,
    stop: &watch::Receiver<bool>,
) {
    for r in 0..args.rooms {
        let uid = args.first_uid + u64::from(args.sessions) + r;
        let room = args.first_room + r;
        match stream::connect(sh, args.source, gate, uid).await {
            Ok(conn) => {
                let (sh, stop) = (sh.clone(), stop.clone());
                tokio::spawn(stream::run(conn, sh, r as usize, room, args.rate, stop));
            }
            Err(e) => sh.error(format!("the sender of room {room}: {e:#}")),
        }
    }
}

fn status(args: &StormArgs, sh: &Shared, state: &State) -> Value {
    let c = &sh.counts;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    // Stream messages said to each session's room that it has not had (yet).
    let mut behind = 0u64;
    for (i, next) in sh.next.iter().enumerate() {
        let next = load(next);
        if next != u64::MAX {
            let said = load(&sh.sent[i % args.rooms as usize]);
            behind += said.saturating_sub(next);
        }
    }
    let first_move_ns = Some(load(&c.first_move_ns)).filter(|&t| t != u64::MAX);
    let first_error = sh.first_error.lock().ok().and_then(|e| e.clone());
    json!({
        "sessions": args.sessions, "started_ns": state.started_ns,
        "ready": load(&c.ready), "failed": load(&c.failed),
        "stream_ns": state.stream_ns, "cut_ns": state.cut_ns, "stopped_ns": state.stopped_ns,
        "cut": load(&c.cut), "resumed": load(&c.resumed), "last_resumed_ns": load(&c.last_resumed_ns),
        "moves_told": load(&c.moves_told), "first_move_ns": first_move_ns.unwrap_or(0),
        "moved": load(&c.moved), "last_moved_ns": load(&c.last_moved_ns),
        "drops": load(&c.drops), "retries": load(&c.retries),
        "reconnect_errors": load(&c.reconnect_errors), "lost_sessions": load(&c.lost_sessions),
        "stream_sent": sh.sent.iter().map(load).sum::<u64>(),
        "stream_received": load(&c.stream_received), "dups": load(&c.dups),
        "gaps": load(&c.gaps), "behind": behind, "sender_errors": load(&c.sender_errors),
        "first_error": first_error,
    })
}

fn write_status(path: &PathBuf, v: &Value) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, v.to_string())?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
