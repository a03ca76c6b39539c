//! `presence`: a room of watchers, some of which stop reading, while typing signals and
//! watcher-count changes flow (the chat's `S2C_Typing`, `S2C_RoomInfo`) and a sender says a
//! timestamped room message at a steady rate: the healthy watchers' latency for those, what
//! became of the stuck ones (still connected?), and the server's resident memory.
//!
//! Raw TCP + JSON, as `soak`. A stuck watcher's socket has a 4 KB receive buffer and a
//! 536-byte MSS, so the server's kernel holds only some tens of KB for it and its queue in
//! the server fills within seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::task::JoinSet;

use crate::soak::{Conn, connect, expect_msg, json_frame, login, read_frame, send};
use crate::{Histogram, PresenceArgs, check_fd_limit, rss_bytes};

const ROOM: u64 = 1;

/// A watcher logged in as `uid`, watching [`ROOM`].
async fn watcher(mut conn: Conn, secret: &str, uid: u64) -> Result<Conn> {
    login(&mut conn, secret, uid).await?;
    send(
        &mut conn,
        &json_frame(&json!({"C2S_UpdateWatchRoom": {"room_id": ROOM}})),
    )
    .await?;
    expect_msg(&mut conn, "S2C_UpdateWatchRoom").await?;
    Ok(conn)
}

/// A connection whose server side can buffer little: see the module's doc.
async fn narrow(addr: std::net::SocketAddr) -> Result<Conn> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_recv_buffer_size(4096)?;
    socket.set_tcp_mss(536)?;
    socket.set_nonblocking(true)?;
    let std_stream: std::net::TcpStream = socket.into();
    let stream = tokio::net::TcpSocket::from_std_stream(std_stream)
        .connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// What the healthy watchers saw.
#[derive(Default)]
struct Seen {
    typing: AtomicU64,
    room_info: AtomicU64,
    messages: AtomicU64,
}

/// How long the healthy watchers read after the senders stop.
const DRAIN: Duration = Duration::from_secs(1);

/// Reads a healthy watcher's frames until `end`: latency of each `lat:<µs since t0>` room
/// message, and counts.
async fn read_healthy(
    mut r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    t0: Instant,
    end: Instant,
    seen: Arc<Seen>,
) -> Result<Histogram> {
    let mut hist = Histogram::new();
    let mut buf = Vec::new();
    while Instant::now() < end {
        let wait = end.saturating_duration_since(Instant::now());
        if read_frame(&mut r, &mut buf, wait).await.is_err() {
            break;
        }
        if buf.starts_with(br#"{"S2C_Typing""#) {
            seen.typing.fetch_add(1, Ordering::Relaxed);
        } else if buf.starts_with(br#"{"S2C_RoomInfo""#) {
            seen.room_info.fetch_add(1, Ordering::Relaxed);
        } else if buf.starts_with(br#"{"S2C_Message""#) {
            let v: serde_json::Value = serde_json::from_slice(&buf)?;
            let text = v["S2C_Message"]["text"].as_str().unwrap_or("");
            if let Some(us) = text
                .strip_prefix("lat:")
                .and_then(|s| s.parse::<u64>().ok())
            {
                let now = t0.elapsed().as_micros() as u64;
                hist.record(Duration::from_micros(now.saturating_sub(us)));
                seen.messages.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(hist)
}

/// Reads and drops everything (the sender's and the toggler's own traffic).
async fn discard(mut r: BufReader<tokio::net::tcp::OwnedReadHalf>) {
    let mut buf = vec![0; 64 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

fn split(conn: Conn) -> (BufReader<tokio::net::tcp::OwnedReadHalf>, OwnedWriteHalf) {
    let (r, w) = conn.into_inner().into_split();
    (BufReader::new(r), w)
}

/// Every `every`, until `end`, sends what `make(i)` gives on `w`.
async fn pace(
    mut w: OwnedWriteHalf,
    every: Duration,
    end: Instant,
    make: impl Fn(u64) -> Vec<u8>,
) -> Result<()> {
    let mut tick = tokio::time::interval(every);
    let mut i = 0;
    while Instant::now() < end {
        tick.tick().await;
        send(&mut w, &make(i)).await?;
        i += 1;
    }
    Ok(())
}

/// Whether a stuck watcher's connection is still open: what is buffered for it is read
/// (without waiting) until the socket has nothing more (open) or ends (closed by the server).
fn still_open(conn: &Conn) -> bool {
    let stream: &TcpStream = conn.get_ref();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..100_000 {
        match stream.try_read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::WouldBlock,
        }
    }
    true
}

pub(crate) async fn presence(args: PresenceArgs) -> Result<()> {
    let (addr, n, stuck) = (args.addr, args.watchers as usize, args.stuck as usize);
    check_fd_limit(n + 2)?;
    let secret = args.secret.clone();
    let healthy_n = n.saturating_sub(stuck);
    let mut healthy = Vec::with_capacity(healthy_n);
    for i in 0..healthy_n {
        healthy.push(watcher(connect(addr).await?, &secret, i as u64 + 1).await?);
    }
    let mut stuck_conns = Vec::with_capacity(stuck);
    for i in 0..stuck {
        let uid = (healthy_n + i) as u64 + 1;
        stuck_conns.push(watcher(narrow(addr).await?, &secret, uid).await?);
    }
    let mut sender = connect(addr).await?;
    login(&mut sender, &secret, n as u64 + 1).await?;
    let mut toggler = connect(addr).await?;
    login(&mut toggler, &secret, n as u64 + 2).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_start = args.pid.map(rss_bytes).transpose()?;
    eprintln!(
        "presence: {healthy_n} healthy and {stuck} stuck watchers of room {ROOM} at {addr}; \
         {} typers at 5/s, the count changing {}/s, {} room messages/s, for {} s",
        args.typers, args.toggles, args.msg_rate, args.duration
    );

    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(args.duration);
    let seen = Arc::new(Seen::default());
    let mut readers = JoinSet::new();
    let mut writers = JoinSet::new();
    for (i, conn) in healthy.into_iter().enumerate() {
        let (r, w) = split(conn);
        // The readers go on a moment past `end`, so that the last message sent before it,
        // still in flight then, is counted as received, not as missed.
        readers.spawn(read_healthy(r, t0, end + DRAIN, Arc::clone(&seen)));
        if i < args.typers as usize {
            let typing = json_frame(&json!({"C2S_Typing": {"room_id": ROOM}}));
            writers.spawn(pace(w, Duration::from_millis(200), end, move |_| {
                typing.clone()
            }));
        } else {
            // Kept open (dropping a writer half sends a FIN).
            writers.spawn(async move {
                tokio::time::sleep_until(end.into()).await;
                drop(w);
                Ok(())
            });
        }
    }
    let (r, w) = split(sender);
    tokio::spawn(discard(r));
    let every = Duration::from_secs_f64(1.0 / f64::from(args.msg_rate.max(1)));
    writers.spawn(pace(w, every, end, move |_| {
        let us = t0.elapsed().as_micros() as u64;
        json_frame(
            &json!({"C2S_Message": {"room_id": ROOM, "to_uid": 0, "text": format!("lat:{us}")}}),
        )
    }));
    let (r, w) = split(toggler);
    tokio::spawn(discard(r));
    let every = Duration::from_secs_f64(1.0 / f64::from(args.toggles.max(1)));
    writers.spawn(pace(w, every, end, |i| {
        let room = if i % 2 == 0 { ROOM } else { ROOM + 1 };
        json_frame(&json!({"C2S_UpdateWatchRoom": {"room_id": room}}))
    }));

    let mut rss_max = rss_start.unwrap_or(0);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(pid) = args.pid {
            rss_max = rss_max.max(rss_bytes(pid)?);
        }
    }
    let mut hist = Histogram::new();
    while let Some(done) = readers.join_next().await {
        hist.merge(&done.context("a reader panicked")??);
    }
    while let Some(done) = writers.join_next().await {
        if let Err(e) = done.context("a writer panicked")? {
            eprintln!("presence: a writer stopped: {e:#}");
        }
    }
    let open = stuck_conns.iter().filter(|c| still_open(c)).count();
    let rss_end = args.pid.map(rss_bytes).transpose()?;
    let (p50, p99, max) = (hist.quantile(0.5), hist.quantile(0.99), hist.quantile(1.0));
    let per = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / healthy_n.max(1) as f64;
    eprintln!(
        "presence: room message latency at the healthy watchers µs p50 {p50} p99 {p99} max \
         {max} ({} received); per healthy watcher {:.0} typing, {:.1} room info; stuck still \
         connected {open}/{stuck}; server RSS {} -> max {} MiB",
        seen.messages.load(Ordering::Relaxed),
        per(&seen.typing),
        per(&seen.room_info),
        rss_start.map_or(0, |b| b >> 20),
        rss_max >> 20,
    );
    print_result!("mode": "presence", "watchers": n, "stuck": stuck,
        "typers": args.typers, "toggles": args.toggles, "msg_rate": args.msg_rate,
        "p50_us": p50, "p99_us": p99, "max_us": max,
        "typing_per_watcher": per(&seen.typing), "room_info_per_watcher": per(&seen.room_info),
        "stuck_open": open, "rss_start": rss_start, "rss_max": rss_max, "rss_end": rss_end);
    Ok(())
}
