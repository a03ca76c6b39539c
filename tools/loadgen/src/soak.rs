//! `soak`: churns raw TCP + JSON connections (its own minimal framing, independent of
//! `longlink-client`, so that it can drop sockets with a reset) and samples the server's memory
//! and open descriptors.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, timeout_at};

use crate::{
    IO_TIMEOUT, MAX_FRAMES_PER_CONN, MAX_SKIPPED_FRAMES, SoakArgs, check_fd_limit, rss_bytes,
    sign_token,
};

/// One frame: big-endian u16 length, then the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("payloads here are far below 64 KiB");
    let mut out = Vec::with_capacity(2 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A frame carrying a JSON message.
pub(crate) fn json_frame(msg: &Value) -> Vec<u8> {
    frame(msg.to_string().as_bytes())
}

/// Reads one frame's payload into `buf`, waiting at most `wait`.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
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
pub(crate) async fn send<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<()> {
    timeout(IO_TIMEOUT, w.write_all(bytes))
        .await
        .context("timed out writing")?
        .context("writing")
}

/// Reads frames until a JSON message named `name` arrives; returns its body. An error or
/// kick from the server, or more than [`MAX_SKIPPED_FRAMES`] other frames, is a failure.
pub(crate) async fn expect_msg(conn: &mut Conn, name: &str) -> Result<Value> {
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

/// Logs `conn` in as `uid` (a token valid for an hour) and checks `ret == 1`.
pub(crate) async fn login(conn: &mut Conn, secret: &str, uid: u64) -> Result<()> {
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

/// A client connection; reads are buffered, writes go straight through.
pub(crate) type Conn = BufReader<TcpStream>;

pub(crate) async fn connect(addr: SocketAddr) -> Result<Conn> {
    let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .with_context(|| format!("connecting to {addr}: timed out"))?
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

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

pub(crate) async fn soak(args: SoakArgs) -> Result<()> {
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
