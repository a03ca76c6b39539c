//! One connection's life, in one task: open (the new event), run (frames in, to the
//! processor and on to their destination; the queue out, to the socket, coalesced), close
//! (the last replies, the flush, the close event), then one release of the socket and its
//! place. One task rather than a reader and a writer keeps an idle connection small and
//! saves a task switch per reply.
//!
//! The task sits above the transport ([`FrameReader`], [`FrameWriter`]) and maps what it
//! reads into its own reasons to stop ([`End`]). `drive` serves (the loop), `flush` writes out
//! the queue, `ending` ends (the last replies, the flush before the close, the lingering close,
//! the close event), `session` keeps a resumable session around the connection: it attaches a
//! socket to a session, detaches a dropped one, and stops a socket whose session another took
//! over.

use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::Instrument;

mod buckets;
mod drive;
mod ending;
mod flush;
mod session;

pub(crate) use session::keep_waiting;

use super::Goodbye;
use super::admission::Slot;
use super::link::BoxFuture;
use super::shared::Shared;
use super::transport::{FrameReader, FrameWriter, ReadError};
use crate::agent::outbox::State;
use crate::agent::{Agent, Local, Transport};
use drive::drive;
use ending::{await_replies, close_event, finish, flush_until, lingering_close};
use session::{Attach, SessionSlot};

/// Why a connection stopped serving.
#[derive(Debug)]
pub(crate) enum End {
    /// The peer closed its side.
    Eof,
    /// The peer ended the connection for good (a WebSocket close with code 1000, "normal
    /// closure"): as `Eof`, except that a resumable session ends with it.
    Finished,
    /// The application closed or destroyed the connection.
    Local,
    /// The gate is stopping: no more reading; wait for the modules, then say goodbye.
    Draining,
    /// The peer sent faster than `max_msg_rate` (or a type's limit with `OverLimit::Close`):
    /// no more reading; let the modules answer what was taken, then say goodbye.
    RateLimited,
    /// The peer broke the protocol (bad frame, bad message).
    Protocol(String),
    /// The transport stopped: a bad frame, a WebSocket refusal, or a failed socket.
    Transport(ReadError),
    /// Another socket resumed this socket's session: stop serving it, quietly.
    TakenOver,
    /// Drop the socket and keep its session for a resume (an idle or ping timeout).
    DropSocket,
    /// This socket resumed another session: attach it there and serve that one.
    Attach(Box<Attach>),
}

impl End {
    /// The socket is gone (or is to go) without a goodbye from the peer: a resumable session
    /// waits for its client.
    fn dropped(&self) -> bool {
        matches!(
            self,
            End::Eof | End::Transport(ReadError::Io(_)) | End::DropSocket
        )
    }

    /// The peer sent its last request (a TCP half-close, a WebSocket close).
    fn peer_closed(&self) -> bool {
        matches!(self, End::Eof | End::Finished)
    }
}

impl From<ReadError> for End {
    fn from(e: ReadError) -> End {
        End::Transport(e)
    }
}

/// How a connection's close ended, for what follows the release of its socket.
enum Closed {
    /// Closed: its close event is sent; it leaves the gate's table.
    Done,
    /// Its socket dropped and its session waits for the client.
    Detached,
    /// Another socket serves its session: nothing more here.
    TakenOver,
}

/// Spawns a connection's task on the gate's tracker, in its own tracing span.
pub(crate) fn spawn<R: FrameReader + 'static, W: FrameWriter>(
    shared: Arc<Shared>,
    agent: Agent,
    reader: R,
    writer: W,
    slot: Slot,
) {
    let tracker = shared.live.tracker.clone();
    // The span only when debug logging is on: a disabled span still takes 40 bytes in every
    // connection's task, and an enabled one about 550 more per connection and an enter and an
    // exit per poll. Events at info and above carry the fields themselves (`agent::logged`).
    if tracing::enabled!(tracing::Level::DEBUG) {
        let span = tracing::debug_span!("conn", id = agent.id(), transport = %agent.transport(), remote = %agent.remote_addr());
        tracker.spawn(serve(shared, agent, reader, writer, slot).instrument(span));
    } else {
        tracker.spawn(serve(shared, agent, reader, writer, slot));
    }
}

/// Runs a connection from its new event to its close event: open, run, close, release.
/// `slot` is its place under `max_conn_num`, given back with the socket (or kept while its
/// session waits for its client).
///
/// With `resume_window` on, a socket may resume another session (then it serves that one,
/// and its own agent gets its close event at once), and a resumable session whose socket
/// drops waits, without the socket, for its client.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn stores its arguments twice in every idle connection's task"
)]
// A block rather than an `async fn`: the arguments of an `async fn` are moved into its body
// and take room in the task's state twice (rust-lang/rust#62958); the block uses them in
// place. Every idle connection holds this state.
fn serve<R: FrameReader, W: FrameWriter>(
    shared: Arc<Shared>,
    mut agent: Agent,
    mut reader: R,
    mut writer: W,
    slot: Slot,
) -> impl Future<Output = ()> + Send {
    async move {
        let Some(_) = agent.local() else { return }; // the gate makes only local agents
        // The socket's transport (a resumed session's agent may have had another).
        let transport = agent.transport();
        // Boxed: the opening's wait (the new event, the cluster told) would otherwise take
        // room in every connection's task for as long as it lives.
        Box::pin(open(&shared, &agent)).await;
        let mut session = SessionSlot::new();
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
                End::Attach(attach) => {
                    Box::pin(session::attach(&shared, &mut agent, &mut session, *attach)).await
                }
                end => break end,
            }
        };
        shared.live.reading.fetch_sub(1, Ordering::AcqRel);
        let Some(local) = agent.local() else { return };
        // Boxed: an idle connection's task keeps room only for the states it can idle in.
        let closing = close(
            &shared,
            &agent,
            local,
            end,
            &mut reader,
            &mut writer,
            session,
        );
        let closed = Box::pin(closing).await;
        release(writer, reader, transport);
        if let Some(waiting) = after_close(closed, slot, &shared, &agent, local) {
            waiting.await;
        }
    }
}

/// What follows a connection's close and the release of its socket: it leaves the gate's
/// table and gives its place back, or its session keeps the place and waits for its client
/// (the wait, boxed: an idle connection's task keeps room only for a pointer to it).
fn after_close<'a>(
    closed: Closed,
    slot: Slot,
    shared: &'a Shared,
    agent: &'a Agent,
    local: &'a Local,
) -> Option<BoxFuture<'a, ()>> {
    match closed {
        Closed::Done => {
            drop(slot);
            shared.live.unregister(agent);
            None
        }
        Closed::TakenOver => {
            drop(slot);
            None
        }
        Closed::Detached => {
            // The session keeps the socket's place under the limits while it waits.
            let place = shared
                .services
                .admission
                .wait(slot, agent.remote_addr().ip());
            Some(Box::pin(session::wait_for_client(
                shared, agent, local, place,
            )))
        }
    }
}

/// The connection opens: counted, in the gate's table, its new event sent, the cluster told;
/// then it reads.
async fn open(shared: &Shared, agent: &Agent) {
    tracing::debug!("connection opened");
    // Looked up again where needed (a static's load) rather than kept across the waits.
    if let Some(m) = crate::metrics::gate() {
        m.opened(agent.transport());
    }
    shared.live.register(agent);
    if let Some(events) = &shared.hooks.on_new {
        events.send(agent).await;
    }
    if let Some(link) = &shared.services.cluster {
        link.opened(agent).await;
    }
    shared.live.reading.fetch_add(1, Ordering::AcqRel);
}

/// Gives the socket back: the one release of every connection, whichever way it ended. Its
/// place under the limits goes with it, or stays with a session that waits for its client.
fn release<R, W>(writer: W, reader: R, transport: Transport) {
    drop(writer);
    drop(reader);
    if let Some(m) = crate::metrics::gate() {
        m.closed(transport);
    }
}

/// Ends a connection that stopped serving for `end`: detaches its socket from a session that
/// waits for its client, or leaves a session that another socket took over, or (as a rule)
/// writes out the last replies, says goodbye where the gate closes, sends the close event,
/// flushes and closes the socket. The session is let go as soon as it is settled.
async fn close<R: FrameReader, W: FrameWriter>(
    shared: &Shared,
    agent: &Agent,
    local: &Local,
    end: End,
    reader: &mut R,
    writer: &mut W,
    session: SessionSlot,
) -> Closed {
    if end.dropped() && session::detach(shared, local, session.socket) {
        // The socket is gone, the session stays: no close event unless the client does not
        // come back in time.
        tracing::debug!("socket dropped; the session waits for its client");
        return Closed::Detached;
    }
    if end.peer_closed() {
        // The peer sent its last request and may still read: the replies being produced go
        // out before the close. The agent stays open for them until the modules are through.
        await_replies(shared, writer, agent, local).await;
    }
    if taken_over(&end, local, session.socket) {
        tracing::debug!("session taken over by another socket");
        reader.set_reset_on_close();
        return Closed::TakenOver;
    }
    say_why(shared, &end, writer, agent, local).await;
    // Flush what is queued, then close; give up after close_timeout (a peer that does not
    // read) and reset instead.
    agent.close();
    session::end(shared, agent, session);
    // The close event comes as leaf sends it once the read loop ends: the connection is
    // closed for the application (a room's count drops) while its socket still flushes and,
    // for a peer that keeps sending, lingers up to close_timeout. The agent stays in the
    // gate's table until the socket is gone, where the stop's deadline finds it.
    close_event(shared, agent).await;
    flush_and_close(shared, agent, local, &end, reader, writer).await;
    Closed::Done
}

/// Whether the socket lost its session to another (a resume that came before this socket's
/// end was noticed): then it just goes, as closing would end the session it no longer
/// serves. Otherwise the connection is closed, checked and closed in one step, so that a
/// resume cannot slip in between.
fn taken_over(end: &End, local: &Local, socket: Option<NonZeroU64>) -> bool {
    match end {
        End::TakenOver => true,
        End::Draining | End::RateLimited => false,
        _ => !session::close_from(local, socket),
    }
}

/// Flushes what is queued, then closes the socket: after close_timeout (a peer that does not
/// read) it resets instead, and a socket the gate closes first lingers while the peer sends.
async fn flush_and_close<R: FrameReader, W: FrameWriter>(
    shared: &Shared,
    agent: &Agent,
    local: &Local,
    end: &End,
    reader: &mut R,
    writer: &mut W,
) {
    let flushed = tokio::time::timeout(shared.settings.close_timeout, finish(writer, agent, local));
    if flushed.await.is_err() {
        crate::agent::logged::conn_event!(INFO, agent, "flush timed out, resetting");
        agent.destroy();
    }
    if local.outbox.state() == State::Destroyed {
        reader.set_reset_on_close();
    } else if !matches!(
        end,
        End::Eof | End::Finished | End::Transport(ReadError::Io(_))
    ) {
        // The gate closes first while the peer may still be sending: closing a socket with
        // unread input makes the kernel reset it, and the peer would lose what was just
        // flushed (the kick, the last replies). Read and discard until it stops sending.
        lingering_close(reader, shared.settings.close_timeout).await;
    }
}

/// What the end calls for before the close: the gate's goodbye after the last replies (at
/// the stop, over the rate limit), a WebSocket close code, a line in the debug log.
async fn say_why<W: FrameWriter>(
    shared: &Shared,
    end: &End,
    writer: &mut W,
    agent: &Agent,
    local: &Local,
) {
    match end {
        End::Eof | End::Finished | End::Local | End::DropSocket => {}
        End::TakenOver | End::Attach(_) => {}
        End::Draining => {
            // Replies to what this connection sent are being produced: written out as they
            // come (a socket that does not take them waits here alone); once the modules are
            // through, say goodbye after them.
            let drained = shared.live.drained.cancelled();
            flush_until(drained, writer, agent, local).await;
            shared.hooks.goodbye(agent, Goodbye::Shutdown);
        }
        End::RateLimited => {
            await_replies(shared, writer, agent, local).await;
            shared.hooks.goodbye(agent, Goodbye::RateLimit);
        }
        End::Protocol(why) | End::Transport(ReadError::Protocol(why)) => {
            crate::agent::logged::conn_event!(INFO, agent, reason = %why, "protocol error, closing")
        }
        End::Transport(ReadError::WsRefused(code, why)) => {
            tracing::debug!(reason = %why, code, "websocket peer refused, closing");
            local.outbox.set_close_code(*code);
        }
        End::Transport(ReadError::Io(e)) => tracing::debug!(error = %e, "socket failed, closing"),
    }
}
