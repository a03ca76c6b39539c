//! Connection events: [`EventHandler`], what `on_new_agent` and `on_close_agent` accept (a
//! function of `&mut State` or `&mut Ctx<State>`, and the agent), and [`EventSink`], where the
//! events go (a module's mailbox, and the job to run there), for gates and cluster backends
//! alike.

use std::sync::Arc;

use super::Agent;
use crate::module::{Ctx, Job, Mailbox, ModuleRef};

type MakeEvent = Box<dyn Fn(Agent) -> Job + Send + Sync>;

/// Marks a handler that takes `&mut Ctx<S>` (see [`EventHandler`] and
/// [`Handler`](crate::processor::Handler)).
#[derive(Debug)]
pub enum WithCtx {}

/// Marks a handler that takes `&mut S`.
#[derive(Debug)]
pub enum WithState {}

/// A connection event's handler on a module with state `S`: `Fn(&mut S, &Agent)` or
/// `Fn(&mut Ctx<S>, &Agent)` (write the closure's argument types).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a connection event handler on a module with state `{S}`",
    note = "an event handler is `Fn(&mut {S}, &Agent)` or `Fn(&mut Ctx<{S}>, &Agent)`; write the closure's argument types"
)]
pub trait EventHandler<S, M>: Send + Sync + 'static {
    /// Runs the handler on the module's task.
    fn call(&self, ctx: &mut Ctx<S>, agent: &Agent);
}

impl<S: Send + 'static, F> EventHandler<S, WithCtx> for F
where
    F: Fn(&mut Ctx<S>, &Agent) + Send + Sync + 'static,
{
    fn call(&self, ctx: &mut Ctx<S>, agent: &Agent) {
        self(ctx, agent)
    }
}

impl<S: Send + 'static, F> EventHandler<S, WithState> for F
where
    F: Fn(&mut S, &Agent) + Send + Sync + 'static,
{
    fn call(&self, ctx: &mut Ctx<S>, agent: &Agent) {
        self(ctx.state_mut(), agent)
    }
}

/// A module's mailbox and the job one connection event becomes there.
pub(crate) struct EventSink {
    mailbox: Mailbox,
    make: MakeEvent,
}

impl EventSink {
    pub(crate) fn new<S: Send + 'static, M>(
        module: &ModuleRef<S>,
        label: &'static str,
        f: impl EventHandler<S, M>,
    ) -> Self {
        let f = Arc::new(f);
        EventSink {
            mailbox: module.mailbox().clone(),
            make: Box::new(move |agent| {
                let f = Arc::clone(&f);
                Job::new(label, move |ctx: &mut Ctx<S>| f.call(ctx, &agent))
            }),
        }
    }

    /// Queues the event, waiting for room: an event is never dropped while the module runs.
    pub(crate) async fn send(&self, agent: &Agent) {
        if self.mailbox.send((self.make)(agent.clone())).await.is_err() {
            tracing::debug!(module = %self.mailbox.name(), "module stopped, connection event dropped");
        }
    }

    /// The module's mailbox (for barriers).
    pub(crate) fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }
}
