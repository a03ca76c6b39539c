//! [`GateBuilder`]'s hooks for sessions moving between the gates of a cluster: what the
//! gate's own modules know of a connection follows its session when the client resumes on
//! another gate (a stopping gate's drain, or a client that moved by itself).

use super::GateBuilder;
use crate::agent::carried::UserDataCodec;
use crate::agent::events::{EventHandler, EventSink};
use crate::module::ModuleRef;

impl GateBuilder {
    /// In a cluster, runs `f` on `module`'s task when a resumable session leaves this gate
    /// for another (its client resumed there: a stopping gate's `LL_Move`, or a client that
    /// moved by itself), after every message the connection sent here: the place to take
    /// it out of the module's own maps and to put what should move with it into its user
    /// data (see [`user_data`](Self::user_data)). From `f` on, what the agent is told of
    /// its groups and uid (leaving a [`Groups`](crate::Groups), a
    /// [`Sessions::unbind`](crate::Sessions::unbind)) is bookkeeping only: the session keeps
    /// its groups and uid on the way. If the hand-over then fails, the session stays here
    /// and the adopt hook runs here. Without it, nothing runs (the session leaves without a
    /// close event).
    ///
    /// The modules a gate routes to itself (`node_type = "all"`) need it: those behind
    /// [`Processor::forward`](crate::Processor::forward) keep their state on their own
    /// node, which the new gate reaches.
    ///
    /// ```no_run
    /// # use longlink::{Agent, Gate, GateConfig, Module, Processor};
    /// # use std::collections::HashMap;
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct Player { uid: u64, room: u64 }
    ///
    /// #[derive(Default)]
    /// struct Game { players: HashMap<u64, Player> }
    ///
    /// # fn build(processor: Processor, game: Module<Game>, cluster: longlink::cluster::Cluster) {
    /// let m = game.module_ref();
    /// let gate = Gate::builder(GateConfig::default(), processor)
    ///     .cluster(&cluster)
    ///     .user_data::<Player>()
    ///     // This gate: what moves goes into the user data; the module lets it go.
    ///     .on_hand_off_agent(&m, |game: &mut Game, agent: &Agent| {
    ///         if let Some(player) = game.players.remove(&agent.id()) {
    ///             agent.set_user_data(player);
    ///         }
    ///     })
    ///     // The other gate: the module takes it back, from the user data that moved.
    ///     .on_adopt_agent(&m, |game: &mut Game, agent: &Agent| {
    ///         if let Some(player) = agent.user_data::<Player>() {
    ///             game.players.insert(agent.id(), player);
    ///         }
    ///     });
    /// # }
    /// ```
    pub fn on_hand_off_agent<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.hooks.on_hand_off = Some(EventSink::new(module, "hand off agent", f));
        self
    }

    /// In a cluster, runs `f` on `module`'s task when a resumable session comes here from
    /// another gate, before any of its messages here; the agent (a new one: its
    /// [`id`](crate::Agent::id) is this gate's) already has its uid, its groups and the
    /// user data that moved with it (see [`on_hand_off_agent`](Self::on_hand_off_agent)).
    /// Also runs on the former gate when the hand-over fails after its hand-off hook ran.
    /// Without it, nothing runs (no new event either).
    pub fn on_adopt_agent<S: Send + 'static, M>(
        mut self,
        module: &ModuleRef<S>,
        f: impl EventHandler<S, M>,
    ) -> Self {
        self.hooks.on_adopt = Some(EventSink::new(module, "adopt agent", f));
        self
    }

    /// Moves the agent's user data ([`Agent::set_user_data`](crate::Agent::set_user_data))
    /// with a session handed to another gate, when it is a `T` (serialized as JSON; every
    /// gate must register the same `T`). User data of another type does not move. See
    /// [`on_hand_off_agent`](Self::on_hand_off_agent) for an example.
    pub fn user_data<T>(mut self) -> Self
    where
        T: serde::Serialize + serde::de::DeserializeOwned + std::any::Any + Send + Sync,
    {
        self.hooks.user_data = Some(UserDataCodec::new::<T>());
        self
    }
}
