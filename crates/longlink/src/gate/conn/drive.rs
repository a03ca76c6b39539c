//! The connection's loop while it serves: write out what is queued, read and dispatch frames,
//! a token bucket for `max_msg_rate`.

use super::End;
use super::flush::{Phase, flush_queue};
use super::session::{self, SessionSlot, SessionStep};
use crate::agent::{Agent, Local};
use crate::gate::link::BoxFuture;
use crate::gate::shared::{Rate, Shared};
use crate::gate::transport::{FrameReader, FrameWriter, Incoming, ReadError};

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
        let mut bucket = shared.settings.rate.map(Bucket::new);
        loop {
            if session.socket.is_some()
                && let Some(end) = session::check(local, agent, shared, session)
            {
                return end;
            }
            if !reader.has_buffered() {
                let phase = Phase::Serving {
                    shutdown: &shared.live.shutdown,
                    socket: session.socket,
                };
                if let Err(end) = flush_queue(writer, agent, local, phase).await {
                    return end;
                }
            }
            if !agent.is_open() {
                return End::Local;
            }
            if shared.live.is_shutting_down() {
                return End::Draining;
            }
            // The read first: a connection that is pushed to all the time still gets its
            // reads, and one that reads all the time still writes (at the top of the loop).
            // No draw of a random branch order per turn.
            let frame = tokio::select! {
                biased;
                frame = reader.read_frame() => frame,
                () = local.outbox.changed() => continue,
            };
            if shared.settings.read_timeout_ms > 0 && frame.is_ok() {
                local
                    .liveness
                    .set_partial(reader.partial(), || shared.live.now_ms());
            }
            if let Ok(Incoming::Ping(payload)) = &frame {
                // Answered with the next flush.
                writer.push_pong(payload);
            }
            let serving = Serving {
                agent,
                local,
                shared,
            };
            // The rare waits are boxed: only a pointer stays in every connection's task.
            let wait: BoxFuture<'_, Option<End>> =
                match on_frame(frame, serving, session, &mut bucket) {
                    Step::Next => continue,
                    Step::End(end) => return end,
                    Step::Wait(pending) => Box::pin(async move {
                        pending.send().await;
                        None
                    }),
                    Step::Resume(msg) => match shared.services.resume.as_ref() {
                        Some(r) => {
                            Box::pin(session::resume_or_refuse(r, msg, agent, local, shared))
                        }
                        None => continue,
                    },
                };
            if let Some(end) = wait.await {
                return end;
            }
        }
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

/// Handles one frame: liveness, the rate limit, decoding, the resume protocol, dispatch.
fn on_frame<'a>(
    frame: Result<Incoming, ReadError>,
    Serving {
        agent,
        local,
        shared,
    }: Serving<'a>,
    session: &mut SessionSlot,
    bucket: &mut Option<Bucket>,
) -> Step<'a> {
    // Replies queued while the frame is handled are written at the top of the loop, without
    // a wake-up of this task by itself.
    let _handling = local.outbox.handling();
    let metrics = crate::metrics::gate();
    let payload = match frame {
        Ok(Incoming::Payload(payload)) => payload,
        Ok(Incoming::Control | Incoming::Ping(_)) => {
            local.liveness.touch(shared.live.now_ms());
            return Step::Next;
        }
        Ok(Incoming::Partial) => return Step::Next,
        Ok(Incoming::End) => return Step::End(End::Eof),
        Ok(Incoming::Final) => return Step::End(End::Finished),
        Err(e) => return Step::End(End::Transport(e)),
    };
    if let Some(m) = metrics {
        m.bytes_in(agent.transport(), payload.len());
    }
    if let (Some(bucket), Some(rate)) = (bucket, shared.settings.rate)
        && !bucket.take(rate, shared.live.now_ms())
    {
        tracing::debug!("message rate over the limit, closing");
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
    if let Some(resumption) = &shared.services.resume {
        session::confirm(resumption, agent, session);
        if resumption.is_protocol(decoded.index()) {
            let Some(msg) = resumption.protocol(decoded) else {
                return Step::Next;
            };
            return match session::on_protocol(resumption, msg, agent, local, session) {
                SessionStep::Next => Step::Next,
                SessionStep::Resume(msg) => Step::Resume(msg),
            };
        }
        if let Some(end) = session::on_message(resumption, local, session) {
            return Step::End(end);
        }
    }
    match shared.services.router.dispatch(decoded, agent, decoded_at) {
        Some(pending) => Step::Wait(pending),
        None => Step::Next,
    }
}

/// A token bucket: `rate` messages per second, `burst` at once.
/// The rate itself is the gate's (`Settings::rate`): every idle connection's task holds only
/// the bucket's level.
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

impl Bucket {
    fn new(rate: Rate) -> Self {
        Bucket {
            tokens: rate.burst,
            at_ms: 0,
        }
    }

    /// Takes one token at `now_ms`; false when the bucket is empty.
    fn take(&mut self, rate: Rate, now_ms: u64) -> bool {
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
