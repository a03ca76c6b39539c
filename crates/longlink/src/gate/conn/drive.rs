//! The connection's loop while it serves: write out what is queued, read and dispatch frames,
//! a token bucket for `max_msg_rate`.

use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::resume::{self, SessionSlot};
use super::{Incoming, ReadEnd};
use crate::agent::outbox::{SessionCheck, State};
use crate::agent::{Agent, Local};
use crate::gate::Shared;
use crate::gate::link::BoxFuture;

use super::{FrameReader, FrameWriter};

/// Most bytes gathered into one write.
const BATCH_BYTES: usize = 64 * 1024;

/// Writes out everything queued, several frames per write, until the queue is empty.
///
/// A write blocked by a peer that does not read is interrupted by a destroy, and, while the
/// connection runs (`Phase::Running`), by a close too, so that the close deadline applies,
/// and by the gate's stop, so that one stuck socket does not hold up the drain.
/// Interrupted writes lose nothing: the writers keep unsent bytes for the next flush. A
/// resumable session's write (`socket`, 0: none) is interrupted too when another socket takes
/// the session over, or the socket is to be dropped.
pub(super) async fn flush_queue<W: FrameWriter>(
    w: &mut W,
    agent: &Agent,
    local: &Local,
    (phase, socket): (Phase<'_>, u64),
) -> Result<(), ReadEnd> {
    let metrics = crate::metrics::gate();
    loop {
        let (gathered, drained) = gather(w, local, phase, socket)?;
        if let Some(m) = metrics {
            m.bytes_out(agent.transport(), gathered);
        }
        if local.liveness.take_ping() {
            w.push_ping();
        }
        if !w.has_pending() {
            if drained || gathered == 0 {
                return Ok(());
            }
            continue;
        }
        if let Some(end) = interruption(local, phase, socket) {
            return Err(end);
        }
        // Tried inline first: a socket that takes the bytes at once (the common case) needs
        // no wait, and the wait below, boxed, takes no room in every connection's task.
        let (flushed, waited) = match try_flush(w) {
            Poll::Ready(flushed) => (flushed, false),
            Poll::Pending => match Box::pin(blocked_flush(w, local, phase, socket)).await {
                Ok(flushed) => (flushed, true),
                Err(end) => return Err(end),
            },
        };
        if let Err(e) = flushed {
            // The socket is dead: drop what is queued, unless a resumable session keeps it
            // for its client's return.
            if socket == 0 {
                agent.destroy();
            }
            return Err(ReadEnd::Io(e));
        }
        if drained && !waited {
            // Written out at once: a push since the batch was taken has left a wake-up (a
            // push to an empty queue wakes the task), so the queue needs no second look
            // now. A flush that waited may have taken that wake-up itself.
            return Ok(());
        }
    }
}

/// Takes the next batch into `w`: how many bytes, and whether that was all. A batch of one,
/// with nothing gathered before it, is written at once (outside the queue's lock); not for a
/// session's socket, whose write waits for the checks that may find the session taken over.
/// A plain function: what it holds is not kept in the task across the flush's wait.
fn gather<W: FrameWriter>(
    w: &mut W,
    local: &Local,
    phase: Phase<'_>,
    socket: u64,
) -> Result<(usize, bool), ReadEnd> {
    let mut first: Option<Bytes> = None;
    let direct = socket == 0 && !w.has_pending();
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
        .map_err(|_| ReadEnd::Local)?;
    if let Some(item) = first {
        match interruption(local, phase, socket) {
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
    socket: u64,
) -> Result<std::io::Result<()>, ReadEnd> {
    let stopping = async {
        match phase {
            Phase::Running(shutdown) => shutdown.cancelled().await,
            Phase::Closing => std::future::pending().await,
        }
    };
    tokio::select! {
        flushed = std::future::poll_fn(|cx| w.poll_flush(cx)) => Ok(flushed),
        end = interrupted(local, phase, socket) => Err(end),
        () = stopping => Err(ReadEnd::Draining),
    }
}

/// Which state changes interrupt a blocked write.
#[derive(Clone, Copy)]
pub(super) enum Phase<'a> {
    /// Serving: a close, a destroy, or the gate's stop (this token).
    Running(&'a tokio_util::sync::CancellationToken),
    /// Flushing before the close: only a destroy.
    Closing,
}

/// Returns once the agent's state calls for the current write to stop. Other wake-ups (new
/// items) are consumed harmlessly: the queue is drained after every flush anyway.
async fn interrupted(local: &Local, phase: Phase<'_>, socket: u64) -> ReadEnd {
    loop {
        if let Some(end) = interruption(local, phase, socket) {
            return end;
        }
        local.outbox.changed().await;
    }
}

/// Whether the agent's state calls for the current write to stop, and why.
fn interruption(local: &Local, phase: Phase<'_>, socket: u64) -> Option<ReadEnd> {
    let state = local.outbox.state();
    let running = matches!(phase, Phase::Running(_));
    if state == State::Destroyed || (running && state != State::Open) {
        return Some(ReadEnd::Local);
    }
    if socket != 0 && running {
        match local.outbox.check_session(socket) {
            SessionCheck::TakenOver => return Some(ReadEnd::TakenOver),
            SessionCheck::DropSocket => return Some(ReadEnd::DropSocket),
            _ => {}
        }
    }
    None
}

/// The connection's loop: write out what is queued, then wait for a frame or a wake-up
/// (new writes, close, destroy); hand each frame to the processor. Frames already buffered
/// are all handled before the next write, so replies to pipelined requests share a write.
///
/// A plain function returning a block, with each frame handled by [`on_frame`] (no await):
/// only what the loop keeps between frames lives in every idle connection's task.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn stores its arguments twice in every idle connection's task"
)]
pub(super) fn drive<'a, R: FrameReader, W: FrameWriter>(
    reader: &'a mut R,
    writer: &'a mut W,
    agent: &'a Agent,
    local: &'a Local,
    shared: &'a Shared,
    slot: &'a mut SessionSlot,
) -> impl Future<Output = ReadEnd> + Send + 'a {
    async move {
        let mut bucket = shared.rate.map(Bucket::new);
        loop {
            if slot.socket != 0
                && let Some(end) = resume::check(local, agent, shared, slot)
            {
                return end;
            }
            if !reader.has_buffered() {
                let running = (Phase::Running(&shared.shutdown), slot.socket);
                if let Err(end) = flush_queue(writer, agent, local, running).await {
                    return end;
                }
            }
            if !agent.is_open() {
                return ReadEnd::Local;
            }
            if shared.is_shutting_down() {
                return ReadEnd::Draining;
            }
            // The read first: a connection that is pushed to all the time still gets its
            // reads, and one that reads all the time still writes (at the top of the loop).
            // No draw of a random branch order per turn.
            let frame = tokio::select! {
                biased;
                frame = reader.read_frame() => frame,
                () = local.outbox.changed() => continue,
            };
            if shared.read_timeout_ms > 0 && frame.is_ok() {
                local
                    .liveness
                    .set_partial(reader.partial(), || shared.now_ms());
            }
            if let Ok(Incoming::Ping(payload)) = &frame {
                // Answered with the next flush.
                writer.push_pong(payload);
            }
            let conn = Conn {
                agent,
                local,
                shared,
            };
            // The rare waits are boxed: only a pointer stays in every connection's task.
            let wait: BoxFuture<'_, Option<ReadEnd>> =
                match on_frame(frame, conn, slot, &mut bucket) {
                    Step::Next => continue,
                    Step::End(end) => return end,
                    Step::Wait(pending) => Box::pin(async move {
                        pending.send().await;
                        None
                    }),
                    Step::Resume(msg) => match shared.resume.as_ref() {
                        Some(r) => Box::pin(resume::resume_or_refuse(r, msg, conn)),
                        None => continue,
                    },
                };
            if let Some(end) = wait.await {
                return end;
            }
        }
    }
}

/// The connection a frame came on.
#[derive(Clone, Copy)]
pub(super) struct Conn<'a> {
    pub(super) agent: &'a Agent,
    pub(super) local: &'a Local,
    pub(super) shared: &'a Shared,
}

/// What the loop does after a frame.
pub(super) enum Step<'a> {
    /// Read on.
    Next,
    /// Stop serving.
    End(ReadEnd),
    /// Wait for room in a module's mailbox (or a binding to a backend), then read on.
    Wait(crate::processor::Pending<'a>),
    /// Resume the session of this `LL_Resume` on this socket.
    Resume(longlink_wire::resume::LlResume),
}

/// Handles one frame: liveness, the rate limit, decoding, the resume protocol, dispatch.
fn on_frame<'a>(
    frame: Result<Incoming, ReadEnd>,
    Conn {
        agent,
        local,
        shared,
    }: Conn<'a>,
    slot: &mut SessionSlot,
    bucket: &mut Option<Bucket>,
) -> Step<'a> {
    // Replies queued while the frame is handled are written at the top of the loop, without
    // a wake-up of this task by itself.
    let _handling = local.outbox.handling();
    let metrics = crate::metrics::gate();
    let payload = match frame {
        Ok(Incoming::Payload(payload)) => payload,
        Ok(Incoming::Control | Incoming::Ping(_)) => {
            local.liveness.touch(shared.now_ms());
            return Step::Next;
        }
        Ok(Incoming::Partial) => return Step::Next,
        Ok(Incoming::End) => return Step::End(ReadEnd::Eof),
        Ok(Incoming::Final) => return Step::End(ReadEnd::Finished),
        Err(end) => return Step::End(end),
    };
    if let Some(m) = metrics {
        m.bytes_in(agent.transport(), payload.len());
    }
    if let (Some(bucket), Some(rate)) = (bucket, shared.rate)
        && !bucket.take(rate, shared.now_ms())
    {
        tracing::debug!("message rate over the limit, closing");
        return Step::End(ReadEnd::RateLimited);
    }
    let decoded = match shared.router.decode(&payload) {
        Ok(decoded) => decoded,
        Err(e) => {
            if let Some(m) = metrics {
                m.decode_errors.increment(1);
            }
            return Step::End(ReadEnd::Protocol(e.to_string()));
        }
    };
    // One look at the clock for the liveness and the handler's latency.
    let decoded_at = std::time::Instant::now();
    local.liveness.touch_message(shared.ms_at(decoded_at));
    if let Some(resumption) = &shared.resume {
        if std::mem::take(&mut slot.unconfirmed) {
            resumption.confirm(agent);
        }
        if resumption.is_protocol(decoded.index()) {
            return match resumption.protocol(decoded) {
                Some(msg) => resume::on_protocol(
                    resumption,
                    msg,
                    Conn {
                        agent,
                        local,
                        shared,
                    },
                    slot,
                ),
                None => Step::Next,
            };
        }
        slot.fresh = false;
        if slot.socket != 0 {
            match local.outbox.count_incoming(slot.socket) {
                // Another socket has the session: the client sends it again there.
                Err(()) => return Step::End(ReadEnd::TakenOver),
                Ok(Some(seq)) => {
                    if let Some(ack) = resumption.ack(seq) {
                        local.outbox.push_control(ack);
                    }
                }
                Ok(None) => {}
            }
        }
    }
    match shared.router.dispatch(decoded, agent, decoded_at) {
        Some(pending) => Step::Wait(pending),
        None => Step::Next,
    }
}

/// A token bucket: `rate` messages per second, `burst` at once.
/// The rate itself is the gate's (`Shared::rate`): every idle connection's task holds only
/// the bucket's level.
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

impl Bucket {
    fn new(rate: crate::gate::Rate) -> Self {
        Bucket {
            tokens: rate.burst,
            at_ms: 0,
        }
    }

    /// Takes one token at `now_ms`; false when the bucket is empty.
    fn take(&mut self, rate: crate::gate::Rate, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64 / 1000.0;
        self.at_ms = now_ms;
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
