//! The connection's loop while it serves: write out what is queued, read and dispatch frames,
//! within `max_msg_rate` and the types' rate limits (`buckets`).

use super::End;
use super::buckets::Buckets;
use super::flush::{Phase, flush_queue};
use super::session::{self, SessionSlot, SessionStep};
use crate::agent::{Agent, Local};
use crate::gate::link::BoxFuture;
use crate::gate::shared::Shared;
use crate::gate::transport::{FrameReader, FrameWriter, Incoming, ReadError};
use crate::processor::{Decoded, Over};
use bytes::Bytes;

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
    session: &'a mut SessionSlot,
) -> impl Future<Output = End> + Send + 'a {
    async move {
        let mut buckets = Buckets::new(shared.settings.rate);
        loop {
            if let Some(end) = session_ended(local, agent, shared, session) {
                return end;
            }
            if !reader.has_buffered() {
                let phase = serving_phase(shared, session);
                if let Err(end) = flush_queue(writer, agent, local, phase).await {
                    return end;
                }
            }
            if let Some(end) = stopping(agent, shared) {
                return end;
            }
            // The read first: a connection that is pushed to all the time still gets its
            // reads, and one that reads all the time still writes (at the top of the loop).
            // No draw of a random branch order per turn.
            let frame = tokio::select! {
                biased;
                frame = reader.read_frame() => frame,
                () = local.outbox.changed() => continue,
            };
            // The frame is handled here, without a wait: only the rare wait it calls for
            // (a pointer) is kept across the next await, not the frame or its step.
            let wait = {
                after_read(&frame, reader, writer, local, shared);
                let serving = Serving {
                    agent,
                    local,
                    shared,
                };
                match wait_for(on_frame(frame, serving, session, &mut buckets), serving) {
                    Ok(None) => continue,
                    Ok(Some(wait)) => wait,
                    Err(end) => return end,
                }
            };
            if let Some(end) = wait.await {
                return end;
            }
        }
    }
}

/// At a wake-up of a task serving a session: whether the session calls for an end.
#[inline]
fn session_ended(
    local: &Local,
    agent: &Agent,
    shared: &Shared,
    session: &mut SessionSlot,
) -> Option<End> {
    if session.socket.is_some() {
        return session::check(local, agent, shared, session);
    }
    None
}

/// What a flush while serving stops for: the gate's stop and the session's socket.
#[inline]
fn serving_phase<'a>(shared: &'a Shared, session: &SessionSlot) -> Phase<'a> {
    Phase::Serving {
        shutdown: &shared.live.shutdown,
        socket: session.socket,
    }
}

/// Why the loop stops before the next read, if it does: the agent is closed, or the gate
/// is stopping.
#[inline]
fn stopping(agent: &Agent, shared: &Shared) -> Option<End> {
    if !agent.is_open() {
        return Some(End::Local);
    }
    if shared.live.is_shutting_down() {
        return Some(End::Draining);
    }
    None
}

/// What a read calls for before its frame is handled: the read timeout's view of a partial
/// frame, and the pong to a ping (answered with the next flush).
#[inline]
fn after_read<R: FrameReader, W: FrameWriter>(
    frame: &Result<Incoming, ReadError>,
    reader: &R,
    writer: &mut W,
    local: &Local,
    shared: &Shared,
) {
    if shared.settings.read_timeout_ms > 0 && frame.is_ok() {
        local
            .liveness
            .set_partial(reader.partial(), || shared.live.now_ms());
    }
    if let Ok(Incoming::Ping(payload)) = frame {
        writer.push_pong(payload);
    }
}

/// The wait a frame's step calls for, boxed: only a pointer stays in every connection's
/// task for the rare waits. `Ok(None)` reads on, `Err` stops serving.
#[inline]
fn wait_for<'a>(
    step: Step<'a>,
    Serving {
        agent,
        local,
        shared,
    }: Serving<'a>,
) -> Result<Option<BoxFuture<'a, Option<End>>>, End> {
    match step {
        Step::Next => Ok(None),
        Step::End(end) => Err(end),
        Step::Wait(pending) => Ok(Some(Box::pin(async move {
            pending.send().await;
            None
        }))),
        Step::Resume(msg) => Ok(shared.services.resume.as_ref().map(|r| {
            let resuming = session::resume_or_refuse(r, msg, agent, local, shared);
            Box::pin(resuming) as BoxFuture<'a, Option<End>>
        })),
    }
}

/// What serves the connection a frame came on: its agent, the agent's local side, the gate.
#[derive(Clone, Copy)]
struct Serving<'a> {
    agent: &'a Agent,
    local: &'a Local,
    shared: &'a Shared,
}

/// What the loop does after a frame.
enum Step<'a> {
    /// Read on.
    Next,
    /// Stop serving.
    End(End),
    /// Wait for room in a module's mailbox (or a binding to a backend), then read on.
    Wait(crate::processor::Pending<'a>),
    /// Resume the session of this `LL_Resume` on this socket.
    Resume(longlink_wire::resume::LlResume),
}

/// Handles one frame: liveness, the rate limit, decoding, the resume protocol, the type's
/// rate limit, dispatch.
fn on_frame<'a>(
    frame: Result<Incoming, ReadError>,
    serving: Serving<'a>,
    session: &mut SessionSlot,
    buckets: &mut Buckets,
) -> Step<'a> {
    let Serving {
        agent,
        local,
        shared,
    } = serving;
    // Replies queued while the frame is handled are written at the top of the loop, without
    // a wake-up of this task by itself.
    let _handling = local.outbox.handling();
    let metrics = crate::metrics::gate();
    let payload = match payload_of(frame, local, shared) {
        Ok(payload) => payload,
        Err(step) => return step,
    };
    if let Some(m) = metrics {
        m.bytes_in(agent.transport(), payload.len());
    }
    if over_rate(&mut buckets.conn, shared) {
        crate::agent::logged::conn_event!(INFO, agent, "message rate over the limit, closing");
        return Step::End(End::RateLimited);
    }
    let decoded = match shared.services.router.decode(&payload) {
        Ok(decoded) => decoded,
        Err(e) => {
            if let Some(m) = metrics {
                m.decode_errors.increment(1);
            }
            return Step::End(End::Protocol(e.to_string()));
        }
    };
    // One look at the clock for the liveness and the handler's latency.
    let decoded_at = std::time::Instant::now();
    local.liveness.touch_message(shared.live.ms_at(decoded_at));
    let decoded = match in_session(decoded, serving, session) {
        Ok(decoded) => decoded,
        Err(step) => return step,
    };
    // After the session counted it: a message dropped here was received, as the client
    // counts it.
    let router = &shared.services.router;
    match buckets.over_type_limit(&decoded, router, agent, || shared.live.ms_at(decoded_at)) {
        None => {}
        Some(Over::Dropped) => return Step::Next,
        Some(Over::Close) => return Step::End(End::RateLimited),
    }
    match router.dispatch(decoded, agent, decoded_at) {
        Some(pending) => Step::Wait(pending),
        None => Step::Next,
    }
}

/// The payload a frame carries, or the step a frame without one calls for (a control frame
/// or a ping keeps the connection alive).
#[inline]
fn payload_of<'a>(
    frame: Result<Incoming, ReadError>,
    local: &Local,
    shared: &Shared,
) -> Result<Bytes, Step<'a>> {
    match frame {
        Ok(Incoming::Payload(payload)) => Ok(payload),
        Ok(Incoming::Control | Incoming::Ping(_)) => {
            local.liveness.touch(shared.live.now_ms());
            Err(Step::Next)
        }
        Ok(Incoming::Partial) => Err(Step::Next),
        Ok(Incoming::End) => Err(Step::End(End::Eof)),
        Ok(Incoming::Final) => Err(Step::End(End::Finished)),
        Err(e) => Err(Step::End(End::Transport(e))),
    }
}

/// Takes a message's token from the bucket; true when the peer sends over `max_msg_rate`.
#[inline]
fn over_rate(bucket: &mut Option<super::buckets::Bucket>, shared: &Shared) -> bool {
    match (bucket, shared.settings.rate) {
        (Some(bucket), Some(rate)) => !bucket.take(rate, shared.live.now_ms()),
        _ => false,
    }
}

/// A decoded message as the resumable session sees it: the session's confirmation, the
/// resume protocol's messages (handled here), a message the session refuses. `Ok` passes
/// the message on to dispatch.
#[inline]
fn in_session<'a>(
    decoded: Decoded,
    Serving {
        agent,
        local,
        shared,
    }: Serving<'a>,
    session: &mut SessionSlot,
) -> Result<Decoded, Step<'a>> {
    let Some(resumption) = &shared.services.resume else {
        return Ok(decoded);
    };
    session::confirm(resumption, agent, session);
    if resumption.is_protocol(decoded.index()) {
        let Some(msg) = resumption.protocol(decoded) else {
            return Err(Step::Next);
        };
        return Err(
            match session::on_protocol(resumption, msg, agent, local, session) {
                SessionStep::Next => Step::Next,
                SessionStep::Resume(msg) => Step::Resume(msg),
            },
        );
    }
    match session::on_message(resumption, local, session) {
        Some(end) => Err(Step::End(end)),
        None => Ok(decoded),
    }
}
