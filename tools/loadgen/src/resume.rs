//! `reconnect`: how long a session resume takes, from the new socket's connect to the first
//! replayed message (the `LL_` messages as session.rs speaks them).

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use longlink_chat::msg::C2sUserHeartBeat;
use longlink_client::Client;
use longlink_wire::resume::{LlAck, LlResume, LlResumeRefused, LlResumed};
use tokio::time::timeout;

use crate::load::{Target, chat_messages, is_heartbeat};
use crate::session::start_session;
use crate::{Histogram, IO_TIMEOUT, MAX_SKIPPED_FRAMES, ReconnectArgs, progress};

/// `reconnect`: `iterations` times, a session whose socket drops after an answer, then a
/// resume on a new socket that says it received nothing; the time from that socket's connect
/// to the replayed answer.
pub(crate) async fn reconnect(args: ReconnectArgs, quiet: bool) -> Result<()> {
    let target: &Target = &args.target;
    let (addr, config, encoding) = (target.addr(), target.config(), target.encoding());
    let messages = chat_messages()?;
    let bar = progress(quiet, u64::from(args.iterations), "reconnect", "resumes");
    let mut hist = Histogram::new();
    for _ in 0..args.iterations {
        let mut client = Client::connect(config.clone(), messages.clone()).await?;
        let token = start_session(&mut client).await?;
        // A heartbeat, answered (the server has numbered the answer 1); then the socket drops
        // and the resume says nothing was received, so the answer is replayed.
        timeout(IO_TIMEOUT, client.send(&C2sUserHeartBeat { ptime: 0 })).await??;
        let mut answered = false;
        for _ in 0..MAX_SKIPPED_FRAMES {
            let payload = timeout(IO_TIMEOUT, client.recv_raw()).await??;
            if is_heartbeat(encoding, &payload) {
                answered = true;
                break;
            }
        }
        ensure!(answered, "no answer to the heartbeat");
        drop(client);
        let started = Instant::now();
        let mut client = Client::connect(config.clone(), messages.clone()).await?;
        let resume = LlResume { token, last_seq: 0 };
        timeout(IO_TIMEOUT, client.send(&resume)).await??;
        replayed(&mut client, addr).await?;
        hist.record(started.elapsed());
        bar.inc(1);
        drop(client);
    }
    bar.finish_and_clear();
    let (p50, p99) = (hist.quantile(0.5), hist.quantile(0.99));
    eprintln!(
        "reconnect: {} resumes to {addr}; connect to first replayed message µs p50 {p50} p99 \
         {p99} max {}",
        hist.total, hist.max
    );
    print_result!("mode": "reconnect", "addr": addr.to_string(),
        "transport": config.transport.to_string(), "encoding": encoding.to_string(),
        "resumes": hist.total, "p50_us": p50, "p99_us": p99, "max_us": hist.max);
    Ok(())
}

/// Reads the answer to `LL_Resume`, then the replayed heartbeat answer.
async fn replayed(client: &mut Client, addr: SocketAddr) -> Result<()> {
    let mut resumed = false;
    for _ in 0..MAX_SKIPPED_FRAMES {
        let msg = timeout(IO_TIMEOUT, client.recv())
            .await
            .context("timed out waiting for the replay")??;
        if msg.downcast_ref::<LlResumeRefused>().is_some() {
            bail!("{addr} refused the resume");
        }
        if msg.downcast_ref::<LlResumed>().is_some() {
            resumed = true;
            continue;
        }
        if msg.downcast_ref::<LlAck>().is_some() {
            continue;
        }
        ensure!(resumed, "an application message before LL_Resumed");
        ensure!(
            msg.downcast_ref::<C2sUserHeartBeat>().is_some(),
            "not the heartbeat's answer"
        );
        return Ok(());
    }
    bail!("no replayed message")
}
