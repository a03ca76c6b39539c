//! The session-resume protocol as the generator speaks it (the `LL_` messages of
//! `longlink_wire::resume`): registering them, making a session resumable, and acknowledging
//! what a connection receives. Used by `--resume` (load.rs) and `reconnect` (resume.rs).

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use longlink_client::{Client, Encoding, Messages};
use longlink_wire::resume::{
    LlAck, LlResume, LlResumeRefused, LlResumed, LlSession, LlSessionStart, MESSAGES,
};
use tokio::time::timeout;

use crate::{IO_TIMEOUT, MAX_SKIPPED_FRAMES};

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
