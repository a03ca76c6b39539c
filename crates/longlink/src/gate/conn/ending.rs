//! The end of a connection's life: waiting for the modules' last replies while writing them
//! out, the flush before the close, the lingering close, and the close event.

use super::flush::{Phase, flush_all};
use crate::agent::{Agent, Local};
use crate::gate::shared::Shared;
use crate::gate::transport::{FrameReader, FrameWriter, Incoming};

/// How long the peer may stay quiet before a lingering close ends.
const LINGER_QUIET: std::time::Duration = std::time::Duration::from_millis(100);

/// Discards input until the peer closes, goes quiet for [`LINGER_QUIET`], or `limit` passes.
pub(super) async fn lingering_close<R: FrameReader>(reader: &mut R, limit: std::time::Duration) {
    let discard = async {
        loop {
            match tokio::time::timeout(LINGER_QUIET, reader.read_frame()).await {
                Ok(Ok(
                    Incoming::Payload(_)
                    | Incoming::Control
                    | Incoming::Ping(_)
                    | Incoming::Partial,
                )) => continue,
                Ok(Ok(Incoming::End | Incoming::Final) | Err(_)) | Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(limit, discard).await;
}

/// Flushes what is queued, then ends the stream (FIN or a close frame).
pub(super) async fn finish<W: FrameWriter>(writer: &mut W, agent: &Agent, local: &Local) {
    if flush_all(writer, agent, local, Phase::Closing)
        .await
        .is_ok()
    {
        writer.finish(local.outbox.close_code()).await;
    }
}

/// Writes out what is queued, as it comes, until `done` (or the connection is destroyed): the
/// replies that modules produce while the connection waits for them do not pile up.
pub(super) async fn flush_until<W: FrameWriter>(
    done: impl Future<Output = ()>,
    writer: &mut W,
    agent: &Agent,
    local: &Local,
) {
    let mut done = std::pin::pin!(done);
    loop {
        tokio::select! {
            () = &mut done => return,
            flushed = flush_all(writer, agent, local, Phase::Closing) => {
                if flushed.is_err() {
                    return;
                }
            }
        }
        // A push after the flush left a wake-up for this wait (`notify_one` keeps one).
        tokio::select! {
            () = &mut done => return,
            () = local.outbox.changed() => {}
        }
    }
}

/// Waits (within `close_timeout`) until the modules have handled every message taken so far,
/// writing out their replies meanwhile.
pub(super) async fn await_replies<W: FrameWriter>(
    shared: &Shared,
    writer: &mut W,
    agent: &Agent,
    local: &Local,
) {
    let modules = async {
        if tokio::time::timeout(shared.settings.close_timeout, shared.barrier())
            .await
            .is_err()
        {
            tracing::debug!("modules busy; closing without waiting for replies");
        }
    };
    flush_until(modules, writer, agent, local).await;
}

/// The end of an agent's life: out of the gate's tables and the cluster's, then its close
/// event.
pub(super) async fn unregister_and_close_event(shared: &Shared, agent: &Agent) {
    shared.live.unregister(agent);
    close_event(shared, agent).await;
}

/// The end of an agent's life but for the gate's table: out of the cluster's, then its close
/// event.
pub(super) async fn close_event(shared: &Shared, agent: &Agent) {
    shared.live.membership.forget(agent.id());
    if let Some(link) = &shared.services.cluster {
        link.closed(agent);
    }
    if let Some(events) = &shared.hooks.on_close {
        events.send(agent).await;
    }
    tracing::debug!(conn = agent.id(), "connection closed");
}
