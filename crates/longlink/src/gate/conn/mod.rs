//! One connection's life, in one task: the new event; then frames in (to the processor and
//! on to their destination) and the queue out (to the socket, coalesced); then the close
//! event. One task rather than a reader and a writer keeps an idle connection small and
//! saves a task switch per reply.
//!
//! Each transport supplies a [`FrameReader`] and a [`FrameWriter`]; the life cycle is shared:
//! `drive` serves (the loop and the flush), `ending` ends (the last replies, the flush before
//! the close, the lingering close, the close event), `resume` keeps a resumable session.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use tracing::Instrument;

mod drive;
mod ending;
mod handback;
mod resume;

pub(crate) use handback::keep_waiting;
pub(crate) use resume::claim;

use super::accept::Slot;
use super::{Goodbye, Shared};
use crate::agent::Agent;
use crate::agent::outbox::State;
use drive::drive;
use ending::{await_replies, close_event, farewell, finish, flush_until, lingering_close};
use resume::SessionSlot;

/// Why the reader stopped. Peer misbehaviour is logged at debug level only.
#[derive(Debug)]
pub(crate) enum ReadEnd {
    /// The peer closed its side.
    Eof,
    /// The peer ended the connection for good (a WebSocket close with code 1000, "normal
    /// closure"): as `Eof`, except that a resumable session ends with it.
    Finished,
    /// The application closed or destroyed the connection.
    Local,
    /// The gate is stopping: no more reading; wait for the modules, then say goodbye.
    Draining,
    /// The peer sent faster than `max_msg_rate`: no more reading; let the modules answer
    /// what was taken, then say goodbye.
    RateLimited,
    /// The peer broke the protocol (bad frame, bad message).
    Protocol(String),
    /// A WebSocket peer broke the protocol, or sent a message over `max_msg_len`: closed
    /// with this close code (1002, 1007, or 1009).
    WsRefused(u16, String),
    /// The socket failed.
    Io(std::io::Error),
    /// Another socket resumed this socket's session: stop serving it, quietly.
    TakenOver,
    /// Drop the socket and keep its session for a resume (an idle or ping timeout).
    DropSocket,
    /// This socket resumed a session: serve that one from now on.
    Resumed(Box<resume::Resumed>),
}

/// What a transport read.
pub(crate) enum Incoming {
    /// One application payload.
    Payload(Bytes),
    /// A control frame (WebSocket pong): the peer is alive, nothing to decode.
    Control,
    /// A WebSocket ping, with its payload: the peer is alive and wants it back in a pong.
    Ping(Bytes),
    /// Part of a frame came, and the reader waits for the rest (once per frame begun).
    Partial,
    /// A clean end of stream.
    End,
    /// A clean end of stream that also ends a resumable session ([`ReadEnd::Finished`]).
    Final,
}

/// The incoming half of a transport: whole payloads, one at a time.
pub(crate) trait FrameReader: Send {
    /// The next payload or control frame.
    fn read_frame(&mut self) -> impl Future<Output = Result<Incoming, ReadEnd>> + Send;
    /// Whether a frame may be ready without reading the socket.
    fn has_buffered(&self) -> bool {
        false
    }
    /// Whether part of a frame is held, waiting for the rest.
    fn partial(&self) -> bool {
        false
    }
    /// Makes the close that follows a reset (linger 0), for [`Agent::destroy`].
    fn set_reset_on_close(&self) {}
}

/// The outgoing half of a transport. It gathers payloads, then writes them out together.
pub(crate) trait FrameWriter: Send + 'static {
    /// Gathers one payload for the next flush.
    fn push(&mut self, payload: Bytes);
    /// Writes one payload now, with nothing gathered before it, if the socket takes it at
    /// once; what it does not take is gathered as [`push`](Self::push) would (so
    /// [`has_pending`](Self::has_pending) says whether a flush must follow).
    fn write_now(&mut self, payload: Bytes) {
        self.push(payload);
    }
    /// Gathers a keep-alive ping (WebSocket only).
    fn push_ping(&mut self) {}
    /// Gathers the answer to the peer's ping (WebSocket only).
    fn push_pong(&mut self, _payload: &[u8]) {}
    /// Whether anything is gathered.
    fn has_pending(&self) -> bool;
    /// Writes out what `push` gathered, and releases buffers it no longer needs. Keeps its
    /// progress in `self`: a flush interrupted at `Pending` resumes where it stopped, and
    /// polling with a waker that does nothing, then again with the task's, is allowed.
    ///
    /// A poll function rather than an `async fn`: the connection keeps no write future in
    /// its state, and the common flush that completes at once is tried inline.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>>;
    /// Ends the stream gracefully after the last flush (FIN, or a WebSocket close frame
    /// with `close_code`).
    fn finish(&mut self, close_code: u16) -> impl Future<Output = ()> + Send;
}

/// Spawns a connection's task on the gate's tracker, in its own tracing span.
pub(crate) fn spawn<R: FrameReader + 'static, W: FrameWriter>(
    shared: Arc<Shared>,
    agent: Agent,
    reader: R,
    writer: W,
    slot: Slot,
) {
    let tracker = shared.tracker.clone();
    // The span only when debug logging is on: a disabled span still takes 40 bytes in every
    // connection's task.
    if tracing::enabled!(tracing::Level::DEBUG) {
        let span = tracing::debug_span!("conn", id = agent.id(), transport = %agent.transport(), remote = %agent.remote_addr());
        tracker.spawn(serve(shared, agent, reader, writer, slot).instrument(span));
    } else {
        tracker.spawn(serve(shared, agent, reader, writer, slot));
    }
}

/// Runs a connection from its new event to its close event. `slot` is its place under
/// `max_conn_num`, given back when the socket is closed.
///
/// With `resume_window` on, a socket may resume another session (then it serves that one,
/// and its own agent gets its close event at once), and a resumable session whose socket
/// drops waits here, without the socket, for its client.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn stores its arguments twice in every idle connection's task"
)]
fn serve<R: FrameReader, W: FrameWriter>(
    shared: Arc<Shared>,
    mut agent: Agent,
    mut reader: R,
    mut writer: W,
    slot: Slot,
) -> impl Future<Output = ()> + Send {
    // A block rather than an `async fn`: the arguments of an `async fn` are moved into its
    // body and take room in the task's state twice (rust-lang/rust#62958); the block uses
    // them in place. Every idle connection holds this state.
    async move {
        if agent.local().is_none() {
            return; // the gate makes only local agents
        }
        tracing::debug!("connection opened");
        // The socket's transport (a resumed session's agent may have had another).
        let transport = agent.transport();
        // Looked up again where needed (a static's load) rather than kept across the waits.
        if let Some(m) = crate::metrics::gate() {
            m.opened(transport);
        }
        shared.register(&agent);
        if let Some(events) = &shared.on_new {
            // Not boxed: a short-lived box at every connect leaves holes in the heap, and
            // this state is smaller than the serving one anyway.
            events.send(&agent).await;
        }
        if let Some(link) = &shared.cluster {
            link.opened(&agent).await;
        }
        let mut session = SessionSlot::new();
        shared.reading.fetch_add(1, Ordering::AcqRel);
        let end = loop {
            let Some(local) = agent.local() else { return };
            match drive(
                &mut reader,
                &mut writer,
                &agent,
                local,
                &shared,
                &mut session,
            )
            .await
            {
                ReadEnd::Resumed(resumed) => {
                    let resume::Resumed {
                        agent: theirs,
                        socket,
                        guard,
                    } = *resumed;
                    // This socket's own agent merges into the session: its life ends here.
                    agent.close();
                    Box::pin(farewell(&shared, &agent)).await;
                    agent = theirs;
                    // The former socket's silence or unanswered ping is not this one's.
                    if let Some(local) = agent.local() {
                        local.liveness.reset(shared.now_ms());
                    }
                    session.socket = socket;
                    session.guard = Some(guard);
                    session.unconfirmed = true;
                    if let Some(events) = &shared.on_resume {
                        Box::pin(events.send(&agent)).await;
                    }
                }
                end => break end,
            }
        };
        shared.reading.fetch_sub(1, Ordering::AcqRel);
        let Some(local) = agent.local() else { return };
        let dropped = matches!(end, ReadEnd::Eof | ReadEnd::Io(_) | ReadEnd::DropSocket);
        if let (true, Some(resumption)) = (dropped, &shared.resume)
            && session.socket != 0
            && local.outbox.detach(session.socket)
        {
            // The socket is gone, the session stays: no close event unless the client
            // does not come back in time. It keeps the socket's place under the limits.
            tracing::debug!("socket dropped; the session waits for its client");
            drop(session);
            drop(writer);
            drop(reader);
            let place = shared.admission.wait(slot, agent.remote_addr().ip());
            if let Some(m) = crate::metrics::gate() {
                m.closed(transport);
            }
            match Box::pin(resume::wait_detached(
                local,
                &shared,
                resumption.window,
                place,
            ))
            .await
            {
                resume::Waited::Resumed => {}
                resume::Waited::Ended(why) => {
                    tracing::debug!(reason = ?why, "session ended without its client");
                    resumption.ended(&agent, why, shared.now_ms());
                    Box::pin(farewell(&shared, &agent)).await;
                }
            }
            return;
        }
        if matches!(end, ReadEnd::Eof | ReadEnd::Finished) {
            // The peer sent its last request (a TCP half-close, a WebSocket close) and may
            // still read: the replies being produced go out before the close. The agent stays
            // open for them until the modules are through.
            Box::pin(await_replies(&shared, &mut writer, &agent, local)).await;
        }
        // A socket that lost its session to another (a resume that came before this socket's
        // end was noticed) just goes: closing would end the session it no longer serves.
        // Checked and closed in one step, so that a resume cannot slip in between.
        let taken_over = match &end {
            ReadEnd::TakenOver => true,
            ReadEnd::Draining | ReadEnd::RateLimited => false,
            _ => !local.outbox.close_from(session.socket),
        };
        if taken_over {
            tracing::debug!("session taken over by another socket");
            reader.set_reset_on_close();
            drop(session);
            drop(writer);
            drop(reader);
            drop(slot);
            if let Some(m) = crate::metrics::gate() {
                m.closed(transport);
            }
            return;
        }
        match &end {
            ReadEnd::Eof | ReadEnd::Finished | ReadEnd::Local | ReadEnd::DropSocket => {}
            ReadEnd::TakenOver | ReadEnd::Resumed(_) => {}
            ReadEnd::Draining => {
                // Replies to what this connection sent are being produced: written out as
                // they come (a socket that does not take them waits here alone); once the
                // modules are through, say goodbye after them.
                let drained = shared.drained.cancelled();
                Box::pin(flush_until(drained, &mut writer, &agent, local)).await;
                shared.goodbye(&agent, Goodbye::Shutdown);
            }
            ReadEnd::RateLimited => {
                Box::pin(await_replies(&shared, &mut writer, &agent, local)).await;
                shared.goodbye(&agent, Goodbye::RateLimit);
            }
            ReadEnd::Protocol(why) => tracing::debug!(reason = %why, "protocol error, closing"),
            ReadEnd::WsRefused(code, why) => {
                tracing::debug!(reason = %why, code, "websocket peer refused, closing");
                local.outbox.set_close_code(*code);
            }
            ReadEnd::Io(e) => tracing::debug!(error = %e, "socket failed, closing"),
        }
        // Flush what is queued, then close; give up after close_timeout (a peer that does not
        // read) and reset instead.
        agent.close();
        if let (Some(resumption), true) = (&shared.resume, session.socket != 0) {
            resumption.ended(&agent, None, shared.now_ms());
        }
        drop(session);
        // The close event now, as leaf sends it once the read loop ends: the connection is
        // closed for the application (a room's count drops) while its socket still flushes
        // and, for a peer that keeps sending, lingers up to close_timeout. The agent stays in
        // the gate's table until the socket is gone, where the stop's deadline finds it.
        // Boxed, as every wait of the end of a connection's life: an idle connection's task
        // keeps room only for the states it can idle in.
        Box::pin(close_event(&shared, &agent)).await;
        let flushed =
            tokio::time::timeout(shared.close_timeout, finish(&mut writer, &agent, local));
        if Box::pin(flushed).await.is_err() {
            tracing::debug!("flush timed out, resetting");
            agent.destroy();
        }
        if local.outbox.state() == State::Destroyed {
            reader.set_reset_on_close();
        } else if !matches!(end, ReadEnd::Eof | ReadEnd::Finished | ReadEnd::Io(_)) {
            // We closed first while the peer may still be sending: closing a socket with unread
            // input makes the kernel reset it, and the peer would lose what we just flushed (the
            // kick, the last replies). Read and discard until it stops sending.
            Box::pin(lingering_close(&mut reader, shared.close_timeout)).await;
        }
        drop(writer);
        drop(reader);
        drop(slot);
        if let Some(m) = crate::metrics::gate() {
            m.closed(transport);
        }
        shared.unregister(&agent);
    }
}
