//! `--resume`: the chat protocol with a resumable session on each connection (the `LL_`
//! messages of `longlink_wire::resume`), and `reconnect`: how long a resume takes, from the
//! new socket's connect to the first replayed message.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use longlink_chat::msg::C2sUserHeartBeat;
use longlink_client::{Client, Encoding, Messages};
use longlink_wire::resume::{
    LlAck, LlResume, LlResumeRefused, LlResumed, LlSession, LlSessionStart, MESSAGES,
};
use tokio::time::timeout;

use crate::load::{Target, chat_messages, is_heartbeat};
use crate::{Histogram, IO_TIMEOUT, MAX_SKIPPED_FRAMES, ReconnectArgs, progress};

/// Registers the six `LL_` messages with their names and ids.
pub(crate) fn register(m: &mut Messages) -> Result<()> {
    let name = |i: usize| MESSAGES[i].0;
    let id = |i: usize| MESSAGES[i].1;
    m.register_with::<LlSessionStart>(name(0), id(0))?
        .register_with::<LlSession>(name(1), id(1))?
        .register_with::<LlResume>(name(2), id(2))?
        .register_with::<LlResumed>(name(3), id(3))?
        .register_with::<LlResumeRefused>(name(4), id(4))?
        .register_with::<LlAck>(name(5), id(5))?;
    Ok(())
}

/// Whether a payload is one of the protocol's, by its envelope only (ids in big-endian order,
/// as the chat sends them).
pub(crate) fn is_protocol(encoding: Encoding, payload: &[u8]) -> bool {
    longlink_wire::resume::is_protocol_payload(payload, encoding, false)
}

/// Makes the client's session resumable; its token.
pub(crate) async fn start_session(client: &mut Client) -> Result<String> {
    timeout(IO_TIMEOUT, client.send(&LlSessionStart {}))
        .await
        .context("timed out writing")??;
    for _ in 0..MAX_SKIPPED_FRAMES {
        let msg = timeout(IO_TIMEOUT, client.recv())
            .await
            .context("timed out waiting for LL_Session")??;
        if let Some(s) = msg.downcast_ref::<LlSession>() {
            ensure!(s.window_s > 0, "the server's resume window is 0");
            return Ok(s.token.clone());
        }
    }
    bail!("no LL_Session (is the server's resume_window on?)")
}

/// Counts application messages received and says when to acknowledge them.
pub(crate) struct Acks {
    received: u64,
    encoded: Messages,
}

/// Acknowledge every this many messages.
const ACK_EVERY: u64 = 32;

impl Acks {
    pub(crate) fn new() -> Result<Acks> {
        let mut encoded = Messages::new();
        register(&mut encoded)?;
        Ok(Acks {
            received: 0,
            encoded,
        })
    }

    /// One more application message received: the acknowledgement to send, if one is due.
    pub(crate) fn received(&mut self, encoding: Encoding) -> Option<Bytes> {
        self.received += 1;
        self.received
            .is_multiple_of(ACK_EVERY)
            .then(|| {
                self.encoded
                    .encode(&LlAck { seq: self.received }, encoding, false)
            })
            .and_then(Result::ok)
            .map(Bytes::from)
    }
}

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
