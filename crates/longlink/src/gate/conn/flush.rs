//! Writing out the agent's queue: several frames per write, tried inline first, a blocked
//! write waited for apart (boxed) and interrupted by the state changes that call for it.

use std::num::NonZeroU64;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::future::Either;

use super::End;
use crate::agent::outbox::{SessionCheck, State};
use crate::agent::{Agent, Local};
use crate::gate::transport::{FrameWriter, ReadError};

/// Most bytes gathered into one write.
const BATCH_BYTES: usize = 64 * 1024;

/// Writes out everything queued, several frames per write, until the queue is empty.
///
/// A write blocked by a peer that does not read is interrupted by a destroy, and, while the
/// connection runs (`Phase::Running`), by a close too, so that the close deadline applies,
/// and by the gate's stop, so that one stuck socket does not hold up the drain.
/// Interrupted writes lose nothing: the writers keep unsent bytes for the next flush. A
/// resumable session's write (the phase's `socket`) is interrupted too when another socket
/// takes the session over, or the socket is to be dropped.
///
/// The writes are tried at once, in the call (the common case: the socket takes the bytes);
/// only a write the socket cannot take waits, in a boxed future. So what the connection's
/// loop keeps across this wait, in every connection's task, is a finished result or a
/// pointer.
pub(super) fn flush_queue<'a, W: FrameWriter>(
    w: &'a mut W,
    agent: &'a Agent,
    local: &'a Local,
    phase: Phase<'a>,
) -> impl Future<Output = Result<(), End>> + Send + 'a {
    match flush_inline(w, agent, local, phase) {
        Poll::Ready(done) => Either::Left(std::future::ready(done)),
        Poll::Pending => Either::Right(Box::pin(flush_waiting(w, agent, local, phase))),
    }
}

/// [`flush_queue`], begun when first polled.
pub(super) async fn flush_all<W: FrameWriter>(
    w: &mut W,
    agent: &Agent,
    local: &Local,
    phase: Phase<'_>,
) -> Result<(), End> {
    flush_queue(w, agent, local, phase).await
}

/// The flush's writes as far as the socket takes them at once: `Pending` leaves the bytes
/// it did not take in `w`, for [`flush_waiting`].
fn flush_inline<W: FrameWriter>(
    w: &mut W,
    agent: &Agent,
    local: &Local,
    phase: Phase<'_>,
) -> Poll<Result<(), End>> {
    let metrics = crate::metrics::gate();
    loop {
        let (gathered, drained) = gather(w, local, phase)?;
        if let Some(m) = metrics {
            m.bytes_out(agent.transport(), gathered);
        }
        if local.liveness.take_ping() {
            w.push_ping();
        }
        if !w.has_pending() {
            if drained || gathered == 0 {
                return Poll::Ready(Ok(()));
            }
            continue;
        }
        if let Some(end) = interruption(local, phase) {
            return Poll::Ready(Err(end));
        }
        match try_flush(w) {
            Poll::Ready(Err(e)) => return Poll::Ready(Err(socket_failed(agent, phase, e))),
            // Written out at once: a push since the batch was taken has left a wake-up (a
            // push to an empty queue wakes the task), so the queue needs no second look now.
            Poll::Ready(Ok(())) if drained => return Poll::Ready(Ok(())),
            Poll::Ready(Ok(())) => {}
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// The rest of a flush whose write the socket could not take at once: waits for it (or for
/// the state change that interrupts it), then goes on writing out the queue.
async fn flush_waiting<W: FrameWriter>(
    w: &mut W,
    agent: &Agent,
    local: &Local,
    phase: Phase<'_>,
) -> Result<(), End> {
    loop {
        if let Err(e) = blocked_flush(w, local, phase).await? {
            return Err(socket_failed(agent, phase, e));
        }
        // The wait may have taken a push's wake-up itself: the queue gets a second look.
        if let Poll::Ready(done) = flush_inline(w, agent, local, phase) {
            return done;
        }
    }
}

/// The socket is dead: what is queued is dropped, unless a resumable session keeps it for
/// its client's return.
fn socket_failed(agent: &Agent, phase: Phase<'_>, e: std::io::Error) -> End {
    if phase.socket().is_none() {
        agent.destroy();
    }
    End::Transport(ReadError::Io(e))
}

/// Takes the next batch into `w`: how many bytes, and whether that was all. A batch of one,
/// with nothing gathered before it, is written at once (outside the queue's lock); not for a
/// session's socket, whose write waits for the checks that may find the session taken over.
/// A plain function: what it holds is not kept in the task across the flush's wait.
fn gather<W: FrameWriter>(
    w: &mut W,
    local: &Local,
    phase: Phase<'_>,
) -> Result<(usize, bool), End> {
    let mut first: Option<Bytes> = None;
    let direct = phase.socket().is_none() && !w.has_pending();
    let taken = local
        .outbox
        .take_batch(BATCH_BYTES, |item| {
            if direct && first.is_none() && !w.has_pending() {
                first = Some(item);
            } else {
                if let Some(before) = first.take() {
                    w.push(before);
                }
                w.push(item);
            }
        })
        .map_err(|_| End::Local)?;
    if let Some(item) = first {
        match interruption(local, phase) {
            Some(_) => w.push(item),
            None => w.write_now(item),
        }
    }
    Ok(taken)
}

/// One attempt at a flush, without registering for a wake-up: the wait that follows a
/// `Pending` polls again with the task's waker.
fn try_flush<W: FrameWriter>(w: &mut W) -> Poll<std::io::Result<()>> {
    w.poll_flush(&mut Context::from_waker(Waker::noop()))
}

/// A flush the socket cannot take at once: waits for it, or for the state change that
/// interrupts it.
async fn blocked_flush<W: FrameWriter>(
    w: &mut W,
    local: &Local,
    phase: Phase<'_>,
) -> Result<std::io::Result<()>, End> {
    let stopping = async {
        match phase {
            Phase::Serving { shutdown, .. } => shutdown.cancelled().await,
            Phase::Closing => std::future::pending().await,
        }
    };
    tokio::select! {
        flushed = std::future::poll_fn(|cx| w.poll_flush(cx)) => Ok(flushed),
        end = interrupted(local, phase) => Err(end),
        () = stopping => Err(End::Draining),
    }
}

/// Which state changes interrupt a blocked write.
#[derive(Clone, Copy)]
pub(super) enum Phase<'a> {
    /// Serving: a close, a destroy, or the gate's stop (`shutdown`); on a resumable session's
    /// socket (`socket`), also a take-over by another socket or a request to drop this one.
    Serving {
        shutdown: &'a tokio_util::sync::CancellationToken,
        socket: Option<NonZeroU64>,
    },
    /// Flushing before the close: only a destroy.
    Closing,
}

impl Phase<'_> {
    /// The resumable session's socket being written to, if any.
    fn socket(self) -> Option<NonZeroU64> {
        match self {
            Phase::Serving { socket, .. } => socket,
            Phase::Closing => None,
        }
    }
}

/// Returns once the agent's state calls for the current write to stop. Other wake-ups (new
/// items) are consumed harmlessly: the queue is drained after every flush anyway.
async fn interrupted(local: &Local, phase: Phase<'_>) -> End {
    loop {
        if let Some(end) = interruption(local, phase) {
            return end;
        }
        local.outbox.changed().await;
    }
}

/// Whether the agent's state calls for the current write to stop, and why.
fn interruption(local: &Local, phase: Phase<'_>) -> Option<End> {
    let state = local.outbox.state();
    let serving = matches!(phase, Phase::Serving { .. });
    if state == State::Destroyed || (serving && state != State::Open) {
        return Some(End::Local);
    }
    if let Some(socket) = phase.socket() {
        match local.outbox.check_session(socket) {
            SessionCheck::TakenOver => return Some(End::TakenOver),
            SessionCheck::DropSocket => return Some(End::DropSocket),
            _ => {}
        }
    }
    None
}
