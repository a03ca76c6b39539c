//! Putting a gate in a cluster: [`GateBuilder::cluster`] and
//! [`GateBuilder::on_forward_error`], defined here, above the gate layer, so the gate itself
//! knows nothing of NATS. What they are given waits in the builder as a [`ClusterSetup`]
//! until `bind` makes the [`GateLink`].

use std::any::Any;
use std::sync::Arc;

use super::{GateLink, Hooks};
use crate::agent::Agent;
use crate::cluster::{Cluster, ClusterError};
use crate::gate::GateBuilder;
use crate::gate::GateError;
use crate::gate::builder::{ClusterBuilt, ClusterSetup};
use crate::gate::link::{BoxFuture, ClusterLink};

/// The builder's cluster options.
#[derive(Default)]
struct Setup {
    cluster: Option<Cluster>,
    hooks: Hooks,
}

impl ClusterSetup for Setup {
    fn build(
        self: Box<Self>,
        types: Vec<Arc<str>>,
    ) -> BoxFuture<'static, Result<Option<ClusterBuilt>, GateError>> {
        Box::pin(async move {
            let Some(cluster) = self.cluster else {
                return Ok(None);
            };
            let link = GateLink::new(cluster, types, self.hooks);
            link.subscribe()
                .await
                .map_err(|e| GateError::Cluster(Box::new(e)))?;
            let started = Arc::clone(&link);
            Ok(Some(ClusterBuilt {
                link: link as Arc<dyn ClusterLink>,
                start: Box::new(move |shared| started.start(shared)),
            }))
        })
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl GateBuilder {
    /// The builder's cluster options, made on first use.
    fn setup(&mut self) -> &mut Setup {
        self.cluster
            .get_or_insert_with(|| Box::new(Setup::default()))
            .as_any_mut()
            .downcast_mut::<Setup>()
            // Only this file puts a setup in the builder, and always a `Setup`.
            .expect("a gate's cluster setup is always cluster::gate::Setup")
    }

    /// Puts the gate in a cluster: message types routed with
    /// [`Processor::forward`](crate::Processor::forward) go to backend nodes, and any node
    /// can push to, kick and group this gate's connections. See [`crate::cluster`].
    pub fn cluster(mut self, cluster: &Cluster) -> Self {
        self.setup().cluster = Some(cluster.clone());
        self
    }

    /// Runs `f` when a forwarded message fails (no backend of its type, or no answer within
    /// `[cluster] request_timeout`): the agent, the message name and why. The place to tell
    /// the client, e.g. with an error message. Runs on a gate task: keep it short.
    pub fn on_forward_error(
        mut self,
        f: impl Fn(&Agent, &str, &ClusterError) + Send + Sync + 'static,
    ) -> Self {
        self.setup().hooks.on_error = Some(Box::new(f));
        self
    }

    /// Runs `f` for every connection of this gate in a cluster group when group broadcasts
    /// were lost for good: this gate missed them while NATS restarted, and their publisher
    /// no longer had them (it keeps its last 4,096) or did not answer within
    /// `[cluster] request_timeout`. Any of those connections may have missed one (which
    /// group's broadcast was lost is not known): the place to tell the client, or to send it
    /// the state of its groups again. Runs on a gate task: keep it short.
    pub fn on_broadcast_loss(mut self, f: impl Fn(&Agent) + Send + Sync + 'static) -> Self {
        self.setup().hooks.on_loss = Some(Box::new(f));
        self
    }
}
