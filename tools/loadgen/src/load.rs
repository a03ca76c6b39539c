//! `echo`, `idle` and `fanout`: the chat protocol through `longlink-client`, over TCP or
//! WebSocket, in JSON or protobuf.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use clap::Args;
use longlink_chat::msg::{
    C2sMessage, C2sUpdateWatchRoom, C2sUserHeartBeat, C2sUserLogin, S2cError, S2cKick, S2cMessage,
    S2cUpdateWatchRoom, S2cUserLogin,
};
use longlink_client::{Client, ClientConfig, ClientReader, Encoding, Messages, Transport};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, timeout_at};

use crate::{
    CONNECTS_IN_FLIGHT, EchoArgs, EchoMessage, FanoutArgs, Histogram, IO_TIMEOUT, IdleArgs,
    MAX_FRAMES_PER_CONN, MAX_SKIPPED_FRAMES, check_fd_limit, loopback, millis, progress, rss_bytes,
    sign_token,
};

/// `--transport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TransportArg {
    /// A 2-byte big-endian length before each payload.
    Tcp,
    /// One binary WebSocket message per payload.
    Ws,
}

/// `--encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EncodingArg {
    /// `{"Name":{...}}`.
    Json,
    /// `| id u16 BE | body |`.
    Protobuf,
}

/// The server to load, and how to speak to it.
#[derive(Args, Clone)]
pub(crate) struct Target {
    /// Server address, 127.0.0.0/8 or ::1 only [default: 127.0.0.1:3563 with tcp,
    /// 127.0.0.1:3653 with ws].
    #[arg(long, value_parser = loopback)]
    addr: Option<SocketAddr>,
    /// How to reach the server.
    #[arg(long, value_enum, default_value_t = TransportArg::Tcp)]
    transport: TransportArg,
    /// The payload encoding; must be the server's `encoding`.
    #[arg(long, value_enum, default_value_t = EncodingArg::Json)]
    encoding: EncodingArg,
    /// Make each connection's session resumable (`LL_SessionStart`) and acknowledge what it
    /// receives (`LL_Ack` every 32 messages); the server's `resume_window` must be on.
    #[arg(long)]
    resume: bool,
}

impl Target {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr.unwrap_or_else(|| match self.transport {
            TransportArg::Tcp => SocketAddr::from(([127, 0, 0, 1], 3563)),
            TransportArg::Ws => SocketAddr::from(([127, 0, 0, 1], 3653)),
        })
    }

    fn transport(&self) -> Transport {
        match self.transport {
            TransportArg::Tcp => Transport::Tcp,
            TransportArg::Ws => Transport::Ws,
        }
    }

    pub(crate) fn encoding(&self) -> Encoding {
        match self.encoding {
            EncodingArg::Json => Encoding::Json,
            EncodingArg::Protobuf => Encoding::Protobuf,
        }
    }

    pub(crate) fn config(&self) -> ClientConfig {
        ClientConfig {
            addr: self.addr().to_string(),
            transport: self.transport(),
            encoding: self.encoding(),
            connect_timeout: IO_TIMEOUT,
            ..ClientConfig::default()
        }
    }
}

/// The chat protocol's registry: names and ids of `examples/chat/proto/chat.proto`.
pub(crate) fn chat_messages() -> Result<Arc<Messages>> {
    let mut m = Messages::new();
    m.register_with::<C2sUserHeartBeat>("C2S_UserHeartBeat", 0)?
        .register_with::<C2sUserLogin>("C2S_UserLogin", 1)?
        .register_with::<S2cUserLogin>("S2C_UserLogin", 2)?
        .register_with::<C2sUpdateWatchRoom>("C2S_UpdateWatchRoom", 3)?
        .register_with::<S2cUpdateWatchRoom>("S2C_UpdateWatchRoom", 4)?
        .register_with::<C2sMessage>("C2S_Message", 5)?
        .register_with::<S2cMessage>("S2C_Message", 6)?
        .register_with::<S2cKick>("S2C_Kick", 7)?
        .register_with::<S2cError>("S2C_Error", 8)?;
    crate::session::register(&mut m)?;
    Ok(Arc::new(m))
}

/// Whether a payload is the heartbeat's answer: its name or id, without decoding the body
/// (so that the generator spends as little as possible per round trip).
pub(crate) fn is_heartbeat(encoding: Encoding, payload: &[u8]) -> bool {
    match encoding {
        Encoding::Json => payload.starts_with(br#"{"C2S_UserHeartBeat":"#),
        _ => payload.starts_with(&[0, 0]),
    }
}

/// Whether a payload is `S2C_UpdateWatchRoom` (id 4), by its name or id only.
fn is_watch_answer(encoding: Encoding, payload: &[u8]) -> bool {
    match encoding {
        Encoding::Json => payload.starts_with(br#"{"S2C_UpdateWatchRoom":"#),
        _ => payload.starts_with(&[0, 4]),
    }
}

/// Sends a message, waiting at most [`IO_TIMEOUT`].
async fn send<T: Any>(client: &mut Client, msg: &T) -> Result<()> {
    timeout(IO_TIMEOUT, client.send(msg))
        .await
        .context("timed out writing")?
        .context("writing")
}

/// Receives until a `T` arrives; an `S2C_Error` or `S2C_Kick` from the server, more than
/// [`MAX_SKIPPED_FRAMES`] other messages, or [`IO_TIMEOUT`] without one, is a failure.
async fn expect<T: Any>(client: &mut Client, what: &str) -> Result<T> {
    for _ in 0..MAX_SKIPPED_FRAMES {
        let msg = timeout(IO_TIMEOUT, client.recv())
            .await
            .with_context(|| format!("timed out waiting for {what}"))?
            .with_context(|| format!("waiting for {what}"))?;
        let msg = match msg.downcast::<T>() {
            Ok(v) => return Ok(v),
            Err(other) => other,
        };
        if let Some(e) = msg.downcast_ref::<S2cError>() {
            bail!("the server answered {e:?} while we waited for {what}");
        }
        if let Some(k) = msg.downcast_ref::<S2cKick>() {
            bail!("the server kicked us ({k:?}) while we waited for {what}");
        }
    }
    bail!("no {what} within {MAX_SKIPPED_FRAMES} messages")
}

/// Logs in as `uid` (a token valid for an hour) and checks `ret == 1`.
async fn login(client: &mut Client, secret: &str, uid: u64) -> Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let exp = i64::try_from(now.as_secs()).unwrap_or(i64::MAX - 3600) + 3600;
    let token = sign_token(secret.as_bytes(), uid, exp);
    send(
        client,
        &C2sUserLogin {
            token,
            login_plat: 1,
        },
    )
    .await?;
    let answer: S2cUserLogin = expect(client, "S2C_UserLogin").await?;
    ensure!(answer.ret == 1, "login of uid {uid} refused: {answer:?}");
    Ok(())
}

/// What a new connection does before it counts as open.
#[derive(Clone, Copy)]
enum Handshake {
    /// Nothing.
    Plain,
    /// One heartbeat, answered.
    Heartbeat,
    /// Log in as uid index+1 and watch room 1.
    Watch,
    /// Log in as uid index+1.
    Login,
    /// One heartbeat, answered; then log in as uid index+1 and watch room 1.
    HeartbeatWatch,
}

async fn handshake(
    client: &mut Client,
    (kind, resume): (Handshake, bool),
    index: usize,
    secret: &str,
) -> Result<()> {
    if resume {
        crate::session::start_session(client).await?;
    }
    match kind {
        Handshake::Plain => {}
        Handshake::Heartbeat => {
            send(client, &C2sUserHeartBeat { ptime: 0 }).await?;
            expect::<C2sUserHeartBeat>(client, "C2S_UserHeartBeat").await?;
        }
        Handshake::Login => login(client, secret, index as u64 + 1).await?,
        Handshake::Watch => watch(client, secret, index).await?,
        Handshake::HeartbeatWatch => {
            send(client, &C2sUserHeartBeat { ptime: 0 }).await?;
            expect::<C2sUserHeartBeat>(client, "C2S_UserHeartBeat").await?;
            watch(client, secret, index).await?;
        }
    }
    Ok(())
}

/// Logs in as uid index+1 and watches room 1.
async fn watch(client: &mut Client, secret: &str, index: usize) -> Result<()> {
    login(client, secret, index as u64 + 1).await?;
    send(client, &C2sUpdateWatchRoom { room_id: 1 }).await?;
    expect::<S2cUpdateWatchRoom>(client, "S2C_UpdateWatchRoom").await?;
    Ok(())
}

async fn connect(config: &ClientConfig, messages: &Arc<Messages>) -> Result<Client> {
    Client::connect(config.clone(), messages.clone())
        .await
        .with_context(|| format!("connecting {} to {}", config.transport, config.addr))
}

/// Opens `n` connections, at most [`CONNECTS_IN_FLIGHT`] connecting at once, each through its
/// handshake; returns them in index order. The first failure fails the whole set.
async fn open_all(
    config: &ClientConfig,
    messages: &Arc<Messages>,
    n: usize,
    kind: (Handshake, bool),
    secret: &str,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<Client>> {
    let permits = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let mut clients: Vec<Option<Client>> = (0..n).map(|_| None).collect();
    let mut collect = |done: Result<Result<(usize, Client)>, tokio::task::JoinError>| {
        let (index, client) = done.context("a connect task panicked")??;
        clients[index] = Some(client);
        bar.inc(1);
        Ok::<_, anyhow::Error>(())
    };
    for index in 0..n {
        let permit = permits.clone().acquire_owned().await?;
        let (config, messages, secret) = (config.clone(), messages.clone(), secret.to_owned());
        tasks.spawn(async move {
            let mut client = connect(&config, &messages).await?;
            handshake(&mut client, kind, index, &secret)
                .await
                .with_context(|| format!("connection #{index}"))?;
            drop(permit);
            Ok::<_, anyhow::Error>((index, client))
        });
        // Collect what is done so far: a failure stops the rest early.
        while let Some(done) = tasks.try_join_next() {
            collect(done)?;
        }
    }
    while let Some(done) = tasks.join_next().await {
        collect(done)?;
    }
    let clients: Vec<Client> = clients.into_iter().flatten().collect();
    ensure!(
        clients.len() == n,
        "opened {} connections, not {n}",
        clients.len()
    );
    Ok(clients)
}

/// The raw mode's payload: 32 arbitrary bytes.
const RAW_PAYLOAD: [u8; 32] = *b"longlink-bench raw echo payload!";

pub(crate) async fn echo(args: EchoArgs, quiet: bool) -> Result<()> {
    let (target, conns, raw) = (&args.target, args.conns as usize, args.raw);
    let watch = !raw && args.message == EchoMessage::Watch;
    let (duration, warmup) = (args.duration, args.warmup);
    let (addr, config, encoding) = (target.addr(), target.config(), target.encoding());
    check_fd_limit(conns)?;
    let messages = chat_messages()?;
    let bar = progress(quiet, conns as u64, "echo: connecting", "connections");
    let handshake = if watch {
        Handshake::Login
    } else {
        Handshake::Plain
    };
    let clients = open_all(
        &config,
        &messages,
        conns,
        (handshake, target.resume),
        &args.secret,
        &bar,
    )
    .await?;
    bar.finish_and_clear();
    let request = if raw {
        Bytes::from_static(&RAW_PAYLOAD)
    } else if watch {
        Bytes::from(messages.encode(&C2sUpdateWatchRoom { room_id: 0 }, encoding, false)?)
    } else {
        Bytes::from(messages.encode(&C2sUserHeartBeat { ptime: 0 }, encoding, false)?)
    };
    let measure_from = Instant::now() + Duration::from_secs(warmup);
    let own_cpu = crate::OwnCpu::start();
    let end = measure_from + Duration::from_secs(duration);
    eprintln!(
        "echo: {conns} {} connections to {addr} open ({}); warmup {warmup} s, measuring \
         {duration} s",
        config.transport,
        if raw { "raw" } else { encoding_name(encoding) },
    );

    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for client in clients {
        tasks.spawn(ping_loop(
            client,
            request.clone(),
            (raw, watch, encoding, target.resume),
            (measure_from, end),
            done.clone(),
        ));
    }
    let bar = progress(quiet, warmup + duration, "echo", "s");
    let ticker = {
        let (bar, done) = (bar.clone(), done.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            // Bounded: the run's length plus the answer timeout, at 5 ticks a second.
            for _ in 0..(warmup + duration + IO_TIMEOUT.as_secs() + 1) * 5 {
                bar.set_position(started.elapsed().as_secs().min(warmup + duration));
                bar.set_message(format!(
                    "{} round trips measured",
                    done.load(Ordering::Relaxed)
                ));
                sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let mut hist = Histogram::new();
    let (mut errors, mut first_error) = (0u64, None);
    while let Some(joined) = tasks.join_next().await {
        match joined.context("a ping task panicked")? {
            Ok(h) => hist.merge(&h),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    ticker.abort();
    let client_cpu = own_cpu.percent();
    bar.finish_and_clear();
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
    print_result!("mode": "echo", "raw": raw,
        "message": if watch { "watch" } else if raw { "raw" } else { "heartbeat" },
        "addr": addr.to_string(),
        "transport": config.transport.to_string(), "encoding": encoding.to_string(),
        "conns": conns, "duration_s": millis(measured), "warmup_s": warmup,
        "round_trips": hist.total, "rtt_per_sec": rate.round(), "p50_us": p50, "p90_us": p90,
        "p99_us": p99, "max_us": hist.max, "failed_conns": errors, "first_error": first_error,
        "client_cpu_pct": client_cpu);
    ensure!(errors < conns as u64, "every connection failed");
    Ok(())
}

fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Json => "json",
        _ => "protobuf",
    }
}

/// One connection's ping-pong until `end`; round trips sent from `measure_from` on are
/// recorded (and counted in `done`).
async fn ping_loop(
    mut client: Client,
    request: Bytes,
    (raw, watch, encoding, resume): (bool, bool, Encoding, bool),
    (measure_from, end): (Instant, Instant),
    done: Arc<AtomicU64>,
) -> Result<Histogram> {
    let mut hist = Histogram::new();
    let mut acks = crate::session::Acks::new()?;
    for _ in 0..MAX_FRAMES_PER_CONN {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        timeout(IO_TIMEOUT, client.send_raw(request.clone()))
            .await
            .context("timed out writing")??;
        let mut answer = timeout(IO_TIMEOUT, client.recv_raw())
            .await
            .context("timed out waiting for the answer")??;
        if resume {
            // The server's acknowledgements come between the answers.
            while crate::session::is_protocol(encoding, &answer) {
                answer = timeout(IO_TIMEOUT, client.recv_raw())
                    .await
                    .context("timed out waiting for the answer")??;
            }
            if let Some(ack) = acks.received(encoding) {
                timeout(IO_TIMEOUT, client.send_raw(ack))
                    .await
                    .context("timed out writing")??;
            }
        }
        let ok = if raw {
            answer == request
        } else if watch {
            is_watch_answer(encoding, &answer)
        } else {
            is_heartbeat(encoding, &answer)
        };
        ensure!(
            ok,
            "unexpected answer: {:?}",
            String::from_utf8_lossy(&answer)
        );
        if sent >= measure_from {
            hist.record(sent.elapsed());
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(hist)
}

pub(crate) async fn idle(args: IdleArgs, quiet: bool) -> Result<()> {
    let (n, hold, pid) = (args.conns as usize, args.hold, args.pid);
    let (addr, config, encoding) = (
        args.target.addr(),
        args.target.config(),
        args.target.encoding(),
    );
    check_fd_limit(n)?;
    let messages = chat_messages()?;
    let handshake = if args.watch {
        Handshake::HeartbeatWatch
    } else {
        Handshake::Heartbeat
    };
    let before = pid.map(rss_bytes).transpose()?;
    let started = Instant::now();
    let bar = progress(quiet, n as u64, "idle: connecting", "connections");
    let mut clients = open_all(
        &config,
        &messages,
        n,
        (handshake, args.target.resume),
        &args.secret,
        &bar,
    )
    .await?;
    bar.finish_and_clear();
    let open_s = started.elapsed().as_secs_f64();
    eprintln!(
        "idle: {n} live {} connections to {addr} in {open_s:.2} s",
        config.transport
    );
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
    let bar = progress(quiet, hold, "idle: holding", "s");
    for s in 0..hold {
        bar.set_position(s);
        sleep(Duration::from_secs(1)).await;
    }
    bar.finish_and_clear();
    // Still live after the hold? One more heartbeat on each.
    let heartbeat =
        Bytes::from(messages.encode(&C2sUserHeartBeat { ptime: 0 }, encoding, false)?);
    let (mut alive, mut first_error) = (0usize, None);
    let mut sent = Vec::with_capacity(n);
    for client in &mut clients {
        let res = timeout(IO_TIMEOUT, client.send_raw(heartbeat.clone())).await;
        sent.push(matches!(res, Ok(Ok(()))));
    }
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    for (client, sent) in clients.iter_mut().zip(sent) {
        if !sent {
            first_error.get_or_insert_with(|| "sending the heartbeat failed".to_owned());
            continue;
        }
        let mut answer = timeout_at(deadline, client.recv_raw()).await;
        // With --resume, the server's acknowledgements may come first.
        while let Ok(Ok(payload)) = &answer
            && crate::session::is_protocol(encoding, payload)
        {
            answer = timeout_at(deadline, client.recv_raw()).await;
        }
        match answer {
            Ok(Ok(answer)) if is_heartbeat(encoding, &answer) => alive += 1,
            Ok(Ok(answer)) => drop(first_error.get_or_insert_with(|| {
                format!("unexpected answer {:?}", String::from_utf8_lossy(&answer))
            })),
            Ok(Err(e)) => drop(first_error.get_or_insert_with(|| e.to_string())),
            Err(_) => drop(first_error.get_or_insert_with(|| "timed out".to_owned())),
        }
    }
    drop(clients);
    eprintln!("idle: held {hold} s; {alive}/{n} answered a heartbeat afterwards; closed all");
    if let Some(e) = &first_error {
        eprintln!("idle: first failure after the hold: {e}");
    }
    print_result!("mode": "idle", "addr": addr.to_string(),
        "transport": config.transport.to_string(), "encoding": encoding.to_string(),
        "conns": n, "watch": args.watch, "open_s": millis(open_s), "hold_s": hold, "rss_before": before,
        "rss_after": after, "bytes_per_conn": per_conn.map(f64::round),
        "alive_after_hold": alive, "first_error": first_error);
    Ok(())
}

/// A watcher's reader: forwards `(round, arrival)` for each `S2C_Message` whose text is
/// `round-K`, until the coordinator stops listening or `max_frames` messages.
async fn watch_reader(
    mut reader: ClientReader,
    tx: mpsc::Sender<(u32, Instant)>,
    max_frames: u64,
) -> Result<()> {
    for _ in 0..max_frames {
        let msg = timeout(3 * IO_TIMEOUT, reader.recv())
            .await
            .context("timed out waiting for a message")?;
        let at = Instant::now();
        let Ok(msg) = msg else {
            match msg {
                Err(e) if e.is_closed() => return Err(e.into()),
                _ => continue,
            }
        };
        let round = msg
            .downcast_ref::<S2cMessage>()
            .and_then(|m| m.text.strip_prefix("round-"))
            .and_then(|k| k.parse().ok());
        if let Some(round) = round
            && tx.send((round, at)).await.is_err()
        {
            break;
        }
    }
    Ok(())
}

pub(crate) async fn fanout(args: FanoutArgs, quiet: bool) -> Result<()> {
    let (n, rounds, secret) = (args.watchers as usize, args.rounds, &args.secret);
    let (addr, config) = (args.target.addr(), args.target.config());
    check_fd_limit(n + 1)?;
    let messages = chat_messages()?;
    let bar = progress(quiet, n as u64, "fanout: watchers", "logged in");
    let watchers = open_all(
        &config,
        &messages,
        n,
        (Handshake::Watch, args.target.resume),
        secret,
        &bar,
    )
    .await?;
    bar.finish_and_clear();
    let mut sender = connect(&config, &messages).await?;
    login(&mut sender, secret, n as u64 + 1)
        .await
        .context("the sender")?;
    eprintln!(
        "fanout: {n} watchers of room 1 and a sender logged in to {addr} ({}, {})",
        config.transport, config.encoding
    );

    let (tx, mut rx) = mpsc::channel(n.clamp(64, 65_536));
    let mut readers = JoinSet::new();
    let max_frames = u64::from(rounds) + MAX_SKIPPED_FRAMES as u64;
    for client in watchers {
        let (reader, writer) = client.split();
        let tx = tx.clone();
        readers.spawn(async move {
            // The writer half lives as long as the reader (dropping a TCP writer half would
            // send a FIN).
            let _writer = writer;
            watch_reader(reader, tx, max_frames).await
        });
    }
    drop(tx);
    // The sender does not watch room 1 but gets its own copy: drain it.
    let (mut sender_rd, mut sender_wr) = sender.split();
    readers.spawn(async move {
        for _ in 0..max_frames {
            let _ = timeout(3 * IO_TIMEOUT, sender_rd.recv_raw()).await??;
        }
        Ok(())
    });

    let bar = progress(quiet, u64::from(rounds), "fanout", "rounds");
    let own_cpu = crate::OwnCpu::start();
    let (mut all, mut first) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let msg = C2sMessage {
            room_id: 1,
            to_uid: 0,
            text: format!("round-{round}"),
        };
        let payload = sender_wr.encode(&msg)?;
        let t0 = Instant::now();
        timeout(IO_TIMEOUT, sender_wr.send_raw(payload))
            .await
            .context("timed out writing")??;
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
        bar.inc(1);
    }
    let client_cpu = own_cpu.percent();
    bar.finish_and_clear();
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
    print_result!("mode": "fanout", "addr": addr.to_string(),
        "transport": config.transport.to_string(), "encoding": config.encoding.to_string(),
        "watchers": n, "rounds": rounds, "p50_us": p50, "p99_us": p99, "max_us": max,
        "first_p50_us": first_p50, "client_cpu_pct": client_cpu);
    Ok(())
}
