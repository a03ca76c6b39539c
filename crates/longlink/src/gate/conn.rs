//! One connection's life: the new event, the reader (frames to messages to their
//! destination), the writer (queue to socket), then the close event.
//!
//! Each transport supplies a [`FrameReader`] and a [`FrameWriter`]; the life cycle is shared.

use std::sync::Arc;

use bytes::Bytes;
use tracing::Instrument;

use super::Shared;
use crate::agent::{Agent, State};

/// Why the reader stopped. Peer misbehaviour is logged at debug level only.
#[derive(Debug)]
pub(crate) enum ReadEnd {
    /// The peer closed its side.
    Eof,
    /// The application closed or destroyed the connection.
    Local,
    /// The peer broke the protocol (bad frame, bad message).
    Protocol(String),
    /// A WebSocket message over `max_msg_len` (closed with code 1009).
    TooBig(String),
    /// The socket failed.
    Io(std::io::Error),
}

/// The incoming half of a transport: whole payloads, one at a time.
pub(crate) trait FrameReader: Send {
    /// The next payload; `Ok(None)` at a clean end of stream.
    fn read_frame(&mut self) -> impl Future<Output = Result<Option<Bytes>, ReadEnd>> + Send;
    /// Makes the close that follows a reset (linger 0), for [`Agent::destroy`].
    fn set_reset_on_close(&self) {}
}

/// The outgoing half of a transport. It gathers payloads, then writes them out together.
pub(crate) trait FrameWriter: Send + 'static {
    /// Gathers one payload for the next flush.
    fn push(&mut self, payload: Bytes);
    /// Whether anything is gathered.
    fn has_pending(&self) -> bool;
    /// Writes out what `push` gathered, and releases buffers it no longer needs.
    fn flush(&mut self) -> impl Future<Output = std::io::Result<()>> + Send;
    /// Ends the stream gracefully after the last flush (FIN, or a WebSocket close frame
    /// with `close_code`).
    fn finish(&mut self, close_code: u16) -> impl Future<Output = ()> + Send;
}

/// Most bytes gathered into one write.
const BATCH_BYTES: usize = 64 * 1024;

/// Drains the agent's queue into the socket, several frames per write, until the
/// connection closes (after a final flush) or is destroyed.
async fn write_loop<W: FrameWriter>(mut w: W, agent: Agent) {
    loop {
        let state = {
            let mut q = agent.lock_queue();
            let mut gathered = 0;
            while let Some(item) = q.items.front() {
                if gathered > 0 && gathered + item.len() > BATCH_BYTES {
                    break;
                }
                gathered += item.len();
                if let Some(item) = q.items.pop_front() {
                    w.push(item);
                }
            }
            if q.items.is_empty() && q.items.capacity() > 64 {
                q.items.shrink_to_fit();
            }
            q.state
        };
        if w.has_pending() {
            // A peer that does not read can block the flush; destroy must still end it.
            let flushed = tokio::select! {
                flushed = w.flush() => flushed,
                _ = until_destroyed(&agent) => return,
            };
            if let Err(e) = flushed {
                tracing::debug!(error = %e, "write failed");
                agent.destroy();
                return;
            }
            continue;
        }
        match state {
            State::Open => agent.inner.writer_wake.notified().await,
            State::Closing => {
                w.finish(agent.close_code()).await;
                return;
            }
            State::Destroyed => return,
        }
    }
}

/// Returns once the agent is destroyed. Other wake-ups (new items) are consumed harmlessly:
/// the writer drains the queue after every flush anyway.
async fn until_destroyed(agent: &Agent) {
    loop {
        if agent.lock_queue().state == State::Destroyed {
            return;
        }
        agent.inner.writer_wake.notified().await;
    }
}

/// Reads payloads and hands them to the processor until the connection ends.
async fn read_loop<R: FrameReader>(reader: &mut R, agent: &Agent, shared: &Shared) -> ReadEnd {
    let processor = &shared.processor;
    loop {
        let frame = tokio::select! {
            biased;
            _ = agent.inner.reader_wake.notified() => {
                if agent.is_open() { continue } else { return ReadEnd::Local }
            }
            frame = reader.read_frame() => frame,
        };
        let payload = match frame {
            Ok(Some(payload)) => payload,
            Ok(None) => return ReadEnd::Eof,
            Err(end) => return end,
        };
        match processor.decode(&payload) {
            Ok(decoded) => {
                if let Some(pending) = processor.dispatch(decoded, agent) {
                    // Boxed: rare, and it keeps every idle reader small.
                    Box::pin(pending.send()).await;
                }
            }
            Err(e) => return ReadEnd::Protocol(e.to_string()),
        }
        if !agent.is_open() {
            return ReadEnd::Local;
        }
    }
}

/// Spawns a connection's task on the gate's tracker, in its own tracing span.
pub(crate) fn spawn<R: FrameReader + 'static, W: FrameWriter>(
    shared: Arc<Shared>,
    agent: Agent,
    reader: R,
    writer: W,
    slot: super::Slot,
) {
    let span = tracing::debug_span!("conn", id = agent.id(), transport = %agent.transport(), remote = %agent.remote_addr());
    let tracker = shared.tracker().clone();
    tracker.spawn(serve(shared, agent, reader, writer, slot).instrument(span));
}

/// Runs a connection from its new event to its close event. `slot` is its place under
/// `max_conn_num`, given back when the socket is closed.
async fn serve<R: FrameReader, W: FrameWriter>(
    shared: Arc<Shared>,
    agent: Agent,
    mut reader: R,
    writer: W,
    slot: super::Slot,
) {
    tracing::debug!("connection opened");
    shared.register(&agent);
    if shared.is_shutting_down() {
        // Registered after the gate's stop took its list of connections: close now.
        shared.close_for_shutdown(&agent);
    }
    if let Some(events) = &shared.on_new {
        events.send(&agent).await;
    }
    let mut writer_task = tokio::spawn(write_loop(writer, agent.clone()));
    let end = read_loop(&mut reader, &agent, &shared).await;
    match &end {
        ReadEnd::Eof | ReadEnd::Local => {}
        ReadEnd::Protocol(why) => tracing::debug!(reason = %why, "protocol error, closing"),
        ReadEnd::TooBig(why) => {
            tracing::debug!(reason = %why, "message too big, closing");
            agent.set_close_code(super::ws::CLOSE_TOO_BIG);
        }
        ReadEnd::Io(e) => tracing::debug!(error = %e, "read failed, closing"),
    }
    // Flush what is queued, then close; give up after close_timeout (a peer that does not
    // read) and reset instead.
    agent.close();
    if tokio::time::timeout(shared.close_timeout, &mut writer_task)
        .await
        .is_err()
    {
        tracing::debug!("flush timed out, resetting");
        agent.destroy();
        writer_task.abort();
        let _ = writer_task.await;
    }
    if agent.lock_queue().state == State::Destroyed {
        reader.set_reset_on_close();
    }
    drop(reader);
    shared.unregister(&agent);
    drop(slot);
    if let Some(events) = &shared.on_close {
        events.send(&agent).await;
    }
    tracing::debug!("connection closed");
}
