//! The admin console: one command per line, an answer, then the prompt again.
//!
//! ```text
//! $ nc 127.0.0.1 9091
//! longlink> stats
//! connections: 2
//! messages_per_sec: 14.0
//! sessions: 2
//! longlink> kick 42
//! kicked 1
//! longlink> quit
//! bye
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Shared;

/// The prompt written before each command.
pub(super) const PROMPT: &str = "longlink> ";
/// Longest command line; a longer one closes the session.
const MAX_LINE: usize = 4096;
/// Most console sessions at once; a new one beyond them closes the longest-idle one, so
/// idle sessions never lock the operator out.
const MAX_SESSIONS: usize = 8;
/// A session that has not sent its first command this long is closed.
const FIRST_IDLE: Duration = Duration::from_secs(60);
/// A session silent this long after a command is closed.
const IDLE: Duration = Duration::from_secs(15 * 60);

/// The built-in commands and their help.
const BUILTINS: &[(&str, &str)] = &[
    ("help", "help: lists the commands"),
    (
        "stats",
        "stats: connections, messages per second, and the application's numbers",
    ),
    (
        "kick",
        "kick <uid> [reason]: kicks <uid> with the application's goodbye, wherever it is connected",
    ),
    (
        "cpuprof",
        "cpuprof start|stop: a CPU profile; stop writes a flame graph and a pprof file",
    ),
    (
        "prof",
        "prof heap [start|stop]: heap sampling on or off; without an argument writes a heap profile (pprof)",
    ),
    ("quit", "quit: closes this console session"),
];

pub(super) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    let places = Arc::new(Places::default());
    while let Some((stream, remote)) = super::server::accept(&listener, &token, "console").await {
        let seat = Places::take(&places);
        tracing::info!(%remote, "console session opened");
        let shared = Arc::clone(&shared);
        let token = token.clone();
        tracker.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = session(stream, &shared, &seat) => {}
            }
            drop(seat);
            tracing::info!(%remote, "console session closed");
        });
    }
}

/// The open sessions, at most [`MAX_SESSIONS`], each with when it last sent a command.
#[derive(Default)]
struct Places {
    open: std::sync::Mutex<(u64, Vec<Place>)>,
}

struct Place {
    id: u64,
    active: Instant,
    evict: CancellationToken,
}

/// A session's place: dropping it gives the place back.
struct Seat {
    id: u64,
    places: Arc<Places>,
    evict: CancellationToken,
}

impl Places {
    /// A place for a new session; when all are taken, the longest-idle session is told to
    /// close and its place is given to the new one.
    fn take(places: &Arc<Places>) -> Seat {
        let mut open = places.open.lock().unwrap_or_else(|e| e.into_inner());
        let (next, list) = &mut *open;
        if list.len() >= MAX_SESSIONS
            && let Some(i) = (0..list.len()).min_by_key(|&i| list[i].active)
        {
            let idlest = list.swap_remove(i);
            tracing::info!(
                idle_secs = idlest.active.elapsed().as_secs(),
                "console full: closing the longest-idle session"
            );
            idlest.evict.cancel();
        }
        *next += 1;
        let evict = CancellationToken::new();
        list.push(Place {
            id: *next,
            active: Instant::now(),
            evict: evict.clone(),
        });
        Seat {
            id: *next,
            places: Arc::clone(places),
            evict,
        }
    }
}

impl Seat {
    /// The session sent a command (or finished one): it is not idle.
    fn touch(&self) {
        let mut open = self.places.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(place) = open.1.iter_mut().find(|p| p.id == self.id) {
            place.active = Instant::now();
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut open = self.places.open.lock().unwrap_or_else(|e| e.into_inner());
        open.1.retain(|p| p.id != self.id);
    }
}

/// What reading a line gave.
enum Line {
    Text(String),
    TooLong,
    End,
}

/// Reads one line of at most [`MAX_LINE`] bytes.
async fn read_line(reader: &mut BufReader<OwnedReadHalf>) -> Line {
    let mut line = Vec::new();
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) | Err(_) => return Line::End,
            Ok(buf) => buf,
        };
        let (taken, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..taken]);
        reader.consume(taken);
        if line.len() > MAX_LINE + 2 || (!done && line.len() > MAX_LINE) {
            return Line::TooLong;
        }
        if done {
            let text = String::from_utf8_lossy(&line);
            return Line::Text(text.trim_end_matches(['\r', '\n']).to_owned());
        }
    }
}

async fn session(stream: TcpStream, shared: &Shared, seat: &Seat) {
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let mut idle = FIRST_IDLE;
    loop {
        if w.write_all(PROMPT.as_bytes()).await.is_err() {
            return;
        }
        let line = tokio::select! {
            line = tokio::time::timeout(idle, read_line(&mut reader)) => line,
            _ = seat.evict.cancelled() => {
                let _ = w
                    .write_all(
                        format!(
                            "\ntoo many console sessions (at most {MAX_SESSIONS}): \
                             closing this one, the longest idle\n"
                        )
                        .as_bytes(),
                    )
                    .await;
                return;
            }
        };
        let Ok(line) = line else {
            let _ = w.write_all(b"\nidle, bye\n").await;
            return;
        };
        seat.touch();
        idle = IDLE;
        let line = match line {
            Line::Text(line) => line,
            Line::TooLong => {
                let _ = w
                    .write_all(format!("error: line longer than {MAX_LINE} bytes\n").as_bytes())
                    .await;
                return;
            }
            Line::End => return,
        };
        let mut words = line.split_whitespace().map(str::to_owned);
        let Some(name) = words.next() else {
            continue;
        };
        let args: Vec<String> = words.collect();
        if name == "quit" || name == "exit" {
            let _ = w.write_all(b"bye\n").await;
            let _ = w.shutdown().await;
            return;
        }
        let mut answer = run(shared, &name, args).await;
        if !answer.ends_with('\n') {
            answer.push('\n');
        }
        if w.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        seat.touch();
    }
}

/// Runs one command; a command the application registered replaces a built-in of the same
/// name (except `help` and `quit`).
async fn run(shared: &Shared, name: &str, args: Vec<String>) -> String {
    if name != "help"
        && let Some(cmd) = shared.commands.get(name)
    {
        let run = Arc::clone(&cmd.run);
        // A panicking command answers with an error; the console keeps serving.
        return match tokio::spawn(async move { run(args).await }).await {
            Ok(answer) => answer,
            Err(_) => format!("error: command {name} failed"),
        };
    }
    match name {
        "help" => help(shared),
        "stats" => stats(shared).await,
        "kick" => kick(shared, &args).await,
        "cpuprof" => cpuprof(shared, &args).await,
        "prof" => prof(shared, &args).await,
        _ => format!("unknown command: {name} (try help)"),
    }
}

fn help(shared: &Shared) -> String {
    let mut out = String::new();
    for (name, text) in BUILTINS {
        if !shared.commands.contains_key(*name) {
            out.push_str(text);
            out.push('\n');
        }
    }
    for (name, cmd) in &shared.commands {
        if name != "help" {
            out.push_str(&cmd.help);
            out.push('\n');
        }
    }
    out
}

async fn stats(shared: &Shared) -> String {
    let connections: usize = shared.gates.iter().map(|g| g.connections()).sum();
    let mut out = format!(
        "connections: {connections}\nmessages_per_sec: {:.1}\n",
        shared.rate.per_sec()
    );
    if let Some(stats) = &shared.stats {
        let stats = Arc::clone(stats);
        match tokio::spawn(async move { stats().await }).await {
            Ok(lines) => {
                for (key, value) in lines {
                    out.push_str(&format!("{key}: {value}\n"));
                }
            }
            Err(_) => out.push_str("error: the stats hook failed\n"),
        }
    }
    for mailbox in &shared.mailboxes {
        out.push_str(&format!(
            "mailbox {}: {}\n",
            mailbox.name(),
            mailbox.depth()
        ));
    }
    out
}

/// `kick <uid> [reason]`: through the server API's path, so in a cluster it reaches the gate
/// holding the uid, and the application says its goodbye first.
async fn kick(shared: &Shared, args: &[String]) -> String {
    let Some((uid, reason)) = args.split_first() else {
        return "usage: kick <uid> [reason]".into();
    };
    let Ok(uid) = uid.parse::<u64>() else {
        return format!("bad uid: {uid}");
    };
    let reason = match reason.join(" ") {
        r if r.is_empty() => "kicked".to_owned(),
        r => r,
    };
    match shared.api.kick(uid, &reason).await {
        Ok(kicked) => {
            tracing::info!(uid, kicked, %reason, "console kick");
            format!("kicked {kicked}")
        }
        Err(e) => format!("error: {}", e.reason),
    }
}

/// `prof heap [start|stop]`, leaf's other profile.
#[cfg(feature = "heap-profiler")]
async fn prof(shared: &Shared, args: &[String]) -> String {
    let said = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["heap"] => super::heap::write(&shared.profile_dir)
            .await
            .map(|path| format!("wrote {}", path.display())),
        ["heap", "start"] => super::heap::start().await,
        ["heap", "stop"] => super::heap::stop().await,
        _ => return "usage: prof heap [start|stop]".into(),
    };
    said.unwrap_or_else(|e| format!("error: {e}"))
}

/// `prof` without the heap profiler: says so.
#[cfg(not(feature = "heap-profiler"))]
async fn prof(_: &Shared, _: &[String]) -> String {
    "error: this server is built without longlink's `heap-profiler` feature".into()
}

/// `cpuprof` without the profiler: says so.
#[cfg(not(feature = "profiler"))]
async fn cpuprof(_: &Shared, _: &[String]) -> String {
    "error: this server is built without longlink's `profiler` feature".into()
}

/// `cpuprof start` / `cpuprof stop` (leaf's console has the same).
#[cfg(feature = "profiler")]
async fn cpuprof(shared: &Shared, args: &[String]) -> String {
    match args.first().map(String::as_str) {
        Some("start") => match shared.profiler.start() {
            Ok(line) => line,
            Err(e) => format!("error: {e}"),
        },
        Some("stop") => {
            // Symbolizing takes a while: off the async threads.
            let profiler = Arc::clone(&shared.profiler);
            match tokio::task::spawn_blocking(move || profiler.stop()).await {
                Ok(Ok(files)) => format!(
                    "wrote {}
wrote {}",
                    files.svg.display(),
                    files.pprof.display()
                ),
                Ok(Err(e)) => format!("error: {e}"),
                Err(_) => "error: the profiler failed".into(),
            }
        }
        _ => "usage: cpuprof start|stop".into(),
    }
}
