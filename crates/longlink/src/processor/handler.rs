//! [`Handler`]: what [`Processor::route`](super::Processor::route) accepts. A handler takes
//! the module's state the way it needs it: `&mut State` when it only touches the state, or
//! `&mut Ctx<State>` when it also sets timers, calls other modules or starts jobs (a `Ctx`
//! dereferences to the state, so `ctx.field` reads as `state.field`).
//!
//! ```
//! use longlink::{Agent, Ctx, Encoding, Module, Processor};
//!
//! #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
//! struct Hello { #[prost(string, tag = "1")] name: String }
//! #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
//! struct Bye {}
//!
//! #[derive(Default)]
//! struct Lobby { greeted: u64 }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let lobby = Module::new("lobby", Lobby::default());
//! let mut processor = Processor::new(Encoding::Json);
//! processor.register::<Hello>()?;
//! processor.register::<Bye>()?;
//! // The state alone.
//! processor.route(&lobby.module_ref(), |lobby: &mut Lobby, _msg: Hello, _agent: &Agent| {
//!     lobby.greeted += 1;
//! })?;
//! // The state and the module's context (timers, calls, jobs).
//! processor.route(&lobby.module_ref(), |ctx: &mut Ctx<Lobby>, _msg: Bye, agent: &Agent| {
//!     ctx.greeted -= 1;
//!     let agent = agent.clone();
//!     ctx.after(std::time::Duration::from_millis(100), move |_| agent.close());
//! })?;
//! # Ok(()) }
//! ```

pub use crate::agent::events::{WithCtx, WithState};

use crate::agent::Agent;
use crate::module::Ctx;

/// A routed message's handler on a module with state `S`: `Fn(&mut S, T, &Agent)` or
/// `Fn(&mut Ctx<S>, T, &Agent)`. `M` tells the two shapes apart; it is inferred (write the
/// closure's argument types, as in the examples).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a handler for messages of type `{T}` on a module with state `{S}`",
    note = "a handler is `Fn(&mut {S}, {T}, &Agent)` or `Fn(&mut Ctx<{S}>, {T}, &Agent)`; write the closure's argument types"
)]
pub trait Handler<S, T, M>: Send + Sync + 'static {
    /// Runs the handler on the module's task.
    fn call(&self, ctx: &mut Ctx<S>, msg: T, agent: &Agent);
}

impl<S: Send + 'static, T, F> Handler<S, T, WithCtx> for F
where
    F: Fn(&mut Ctx<S>, T, &Agent) + Send + Sync + 'static,
{
    fn call(&self, ctx: &mut Ctx<S>, msg: T, agent: &Agent) {
        self(ctx, msg, agent)
    }
}

impl<S: Send + 'static, T, F> Handler<S, T, WithState> for F
where
    F: Fn(&mut S, T, &Agent) + Send + Sync + 'static,
{
    fn call(&self, ctx: &mut Ctx<S>, msg: T, agent: &Agent) {
        self(ctx.state_mut(), msg, agent)
    }
}
