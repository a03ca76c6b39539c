//! The gate node's side of the cluster: one [`GateLink`] per clustered gate, the
//! [`ClusterLink`](crate::gate::link::ClusterLink) the gate layer asks for (and the
//! [`ConnLink`](crate::agent::link::ConnLink) its agents tell, and the
//! [`Forwarder`](crate::processor::Forwarder) its processor forwards through).
//!
//! - this file: the link and its life (subscribe, serve, stop);
//! - `traits`: the traits it implements for the gate layer, each a call into the files below;
//! - `forward`: forwarding client messages to backends, acknowledgements and timeouts;
//! - `bound`: one connection's backends, a short list;
//! - `directory`: the uids this gate holds in the KV directory (claim, release, refresh);
//! - `commands`: what other nodes ask of this gate's connections;
//! - `delivered`: the gate's reports of the commands it has applied (their nodes keep them
//!   no longer);
//! - `moving`: a connection's binding moving from a stopping backend node to another of
//!   its type, its messages held meanwhile;
//! - `handover`: resumable sessions moving between gates (a client resumed on another one);
//! - `transfer`: a hand-over's steps at the holder, in chunks of any number, and its failures;
//! - `fetch`: a hand-over's steps at the new gate;
//! - `outage`: through a NATS outage: forwards held, bound nodes probed, missed group
//!   broadcasts asked for again (`order`: their order per publisher);
//! - `moved`: where the sessions handed over went (their directory entries, and what still
//!   comes here for them);
//! - `setup`: [`GateBuilder::cluster`](crate::gate::GateBuilder::cluster) and
//!   [`GateBuilder::on_forward_error`](crate::gate::GateBuilder::on_forward_error).

mod bound;
mod commands;
mod delivered;
mod directory;
mod feed;
mod fetch;
mod forward;
mod handover;
mod moved;
mod moving;
mod order;
mod outage;
mod setup;
mod sweep;
mod traits;
mod transfer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::subjects::node_key;
use super::wire::Holder;
use super::{Cluster, ClusterError};
use crate::agent::Agent;
use crate::codec::Encoded;
use crate::gate::Shared;
use forward::Inflight;

/// The gate's hook for a forwarded message that failed: the agent, the message name, why.
pub(crate) type ForwardErrorHook = Box<dyn Fn(&Agent, &str, &ClusterError) + Send + Sync>;

/// The gate's hook for a connection that may have missed group broadcasts for good.
pub(crate) type LossHook = Box<dyn Fn(&Agent) + Send + Sync>;

use bound::Bound;

/// One gate's link to the cluster.
pub(crate) struct GateLink {
    /// Itself, for the tasks it spawns from `&self` (the traits take `&self`).
    me: Weak<GateLink>,
    cluster: Cluster,
    /// The backend types this gate forwards to: every new connection is bound to one of each.
    types: Vec<Arc<str>>,
    /// The gate, once started: its connections by id, and its goodbye hook.
    shared: OnceLock<Weak<Shared>>,
    /// conn -> (backend type -> node id): where each connection's messages go.
    bindings: Mutex<FastMap<u64, Bound>>,
    /// The backend node ids heard, each once: every connection's binding shares them.
    node_names: Mutex<std::collections::HashSet<Arc<str>>>,
    /// (conn, backend type) whose binding is moving to another node: its messages wait
    /// until the token is cancelled. Locked after `bindings`, never before.
    held: Mutex<HashMap<(u64, Arc<str>), CancellationToken>>,
    /// Connections in a session hand-over, on either gate: the moves asked for them
    /// meanwhile, started when it ends (`moving`). Locked after `bindings`, never before.
    parked: Mutex<HashMap<u64, moving::Waiting>>,
    /// Bounds the moves under way at once (a stopping node may ask for thousands).
    moves: tokio::sync::Semaphore,
    /// Forwarded messages not yet acknowledged, by sequence number.
    inflight: Mutex<FastMap<u64, Inflight>>,
    /// The next forwarded message's sequence number (its acknowledgement subject).
    seq: AtomicU64,
    /// Subscribed in `subscribe` (before the gate accepts), served from `start`.
    subs: Mutex<Vec<(async_nats::Subscriber, Sub)>>,
    /// conn -> (uid, when it logged in): what this gate holds in the directory.
    claims: Mutex<HashMap<u64, (u64, u64)>>,
    /// The application's hook for a forward that failed (to tell the client).
    on_error: Option<ForwardErrorHook>,
    /// The application's hook for group broadcasts lost in a NATS outage.
    on_loss: Option<LossHook>,
    /// Whether forwarded messages go out now (not while NATS is away, nor until the bound
    /// backend nodes answer again: `outage`).
    ready: tokio::sync::watch::Sender<bool>,
    /// Stops the subscriptions and timers.
    stop: CancellationToken,
    /// Directory claims and removals in flight, finished before the gate goes.
    directory_work: TaskTracker,
    /// Barriers sent to this gate itself, waiting to come back (`ToGate::Barrier`).
    barriers: Mutex<HashMap<u64, tokio::sync::oneshot::Sender<()>>>,
    /// Sessions this gate is handing over, by transfer id (with the session's agent id),
    /// until the new gate has them.
    transfers: Mutex<transfer::Transfers>,
    /// The group broadcasts this gate delivers, and the sessions moving in or out.
    feed: feed::Feed,
    /// The order of the commands other nodes send this gate; held while they are applied.
    commands: Mutex<order::Order>,
    /// The sessions handed over lately: where they went.
    moved: Mutex<moved::Moved>,
    /// The gate is stopping: its "alive" key says so.
    leaving: AtomicBool,
}

/// The application's hooks of a clustered gate.
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) on_error: Option<ForwardErrorHook>,
    pub(crate) on_loss: Option<LossHook>,
}

/// A hash map looked up on every forwarded message and its acknowledgement, by connection id
/// or sequence number: foldhash, seeded per process, rather than SipHash (this gate makes
/// the keys).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which subscription a message came through.
#[derive(Clone, Copy)]
enum Sub {
    Commands,
    Groups,
    All,
    Acks,
    Handover,
    Moved,
}

impl GateLink {
    /// The gate starts accepting: the link serves its subscriptions from now on, and acts
    /// on the gate's connections through `shared`.
    pub(super) fn start(self: Arc<Self>, shared: &Arc<Shared>) {
        let _ = self.shared.set(Arc::downgrade(shared));
        self.serve();
    }

    fn new(cluster: Cluster, types: Vec<Arc<str>>, hooks: Hooks) -> Arc<GateLink> {
        Arc::new_cyclic(|me| GateLink {
            me: me.clone(),
            cluster,
            types,
            shared: OnceLock::new(),
            bindings: Mutex::new(FastMap::default()),
            node_names: Mutex::new(std::collections::HashSet::new()),
            held: Mutex::new(HashMap::new()),
            parked: Mutex::new(HashMap::new()),
            moves: tokio::sync::Semaphore::new(moving::AT_ONCE),
            inflight: Mutex::new(FastMap::default()),
            seq: AtomicU64::new(1),
            subs: Mutex::new(Vec::new()),
            claims: Mutex::new(HashMap::new()),
            on_error: hooks.on_error,
            on_loss: hooks.on_loss,
            ready: tokio::sync::watch::Sender::new(true),
            stop: CancellationToken::new(),
            directory_work: TaskTracker::new(),
            barriers: Mutex::new(HashMap::new()),
            transfers: Mutex::default(),
            feed: feed::Feed::default(),
            commands: Mutex::new(order::Order::default()),
            moved: Mutex::default(),
            leaving: AtomicBool::new(false),
        })
    }

    /// The gate, once started and while it lives.
    fn gate(&self) -> Option<Arc<Shared>> {
        self.shared.get()?.upgrade()
    }

    fn agent(&self, conn: u64) -> Option<Agent> {
        self.gate()?.live.agent(conn)
    }

    fn agents(&self) -> Vec<Agent> {
        self.shared
            .get()
            .and_then(Weak::upgrade)
            .map(|s| s.live.all_agents())
            .unwrap_or_default()
    }

    /// `id` as the one `Arc` this gate keeps for that backend node.
    fn node_name(&self, id: &str) -> Arc<str> {
        let mut names = lock(&self.node_names);
        if let Some(name) = names.get(id) {
            return Arc::clone(name);
        }
        let name: Arc<str> = id.into();
        names.insert(Arc::clone(&name));
        name
    }

    fn me(&self, conn: u64, at: u64) -> Holder {
        Holder {
            gate: self.cluster.node_id().to_owned(),
            conn,
            at,
            incarnation: self.cluster.incarnation(),
        }
    }

    /// Subscribes to everything this gate listens to: its commands, group and all-gates
    /// broadcasts, acknowledgements. Awaited before the gate accepts its first connection, so
    /// no answer to one of its connections can come before the gate listens.
    async fn subscribe(&self) -> Result<(), ClusterError> {
        let c = &self.cluster;
        let s = c.subjects();
        let subjects = [
            (s.gate(c.node_id()), Sub::Commands),
            (s.groups(), Sub::Groups),
            (s.all(), Sub::All),
            (s.acks(c.node_id()), Sub::Acks),
            (s.handover(c.node_id()), Sub::Handover),
            (s.moved(), Sub::Moved),
        ];
        let mut subs = Vec::new();
        for (subject, kind) in subjects {
            let sub = c
                .nats()
                .subscribe(subject.clone())
                .await
                .map_err(|e| ClusterError::Nats(format!("subscribe {subject}: {e}")))?;
            subs.push((sub, kind));
        }
        c.sync().await;
        *lock(&self.subs) = subs;
        // Alive before it accepts: a gate stopping from now on counts it to take its sessions.
        let alive = async {
            let store = c.directory().await?;
            self.say_alive(store).await
        };
        if let Ok(Err(e)) = tokio::time::timeout(c.config().request_timeout, alive).await {
            tracing::debug!(error = %e, "alive key not written yet (the refresh writes it)");
        }
        Ok(())
    }

    /// Starts serving the subscriptions, and the timers: expired forwards, directory refresh.
    fn serve(self: &Arc<Self>) {
        let group_prefix = self.cluster.subjects().group_prefix();
        for (mut sub, kind) in std::mem::take(&mut *lock(&self.subs)) {
            let link = Arc::clone(self);
            let group_prefix = group_prefix.clone();
            tokio::spawn(async move {
                loop {
                    let msg = tokio::select! {
                        _ = link.stop.cancelled() => break,
                        msg = sub.next() => match msg { Some(m) => m, None => break },
                    };
                    match kind {
                        Sub::Commands => link.command(msg),
                        Sub::Groups => link.group_broadcast(&group_prefix, msg),
                        Sub::All => {
                            let encoded = Encoded::from_wire(msg.payload);
                            for agent in link.agents() {
                                let _ = agent.write_encoded(&encoded);
                            }
                        }
                        Sub::Acks => link.acked(&msg),
                        Sub::Handover => {
                            // Its own task: it waits for the backends to switch.
                            let link = Arc::clone(&link);
                            tokio::spawn(async move { link.hand_over(msg).await });
                        }
                        Sub::Moved => link.answer_where_moved(msg),
                    }
                }
                let _ = sub.unsubscribe().await;
            });
        }
        let link = Arc::clone(self);
        tokio::spawn(async move { link.expire_loop().await });
        let link = Arc::clone(self);
        tokio::spawn(async move { link.refresh_loop().await });
        let link = Arc::clone(self);
        tokio::spawn(async move { link.delivered_loop().await });
        tokio::spawn(Arc::clone(self).watch_nats());
    }

    /// A group broadcast heard: written to the group's members here (through the feed).
    fn group_broadcast(&self, group_prefix: &str, msg: async_nats::Message) {
        let Some(token) = msg.subject.strip_prefix(group_prefix) else {
            return;
        };
        let num = super::groupseq::read(msg.headers.as_ref());
        let except = super::except::except_here(msg.headers.as_ref(), self.cluster.node_id());
        let encoded = Encoded::from_wire(msg.payload);
        let next = self.with_targets(except, |to| self.feed.deliver(token, num, &encoded, to));
        if let Some(next) = next {
            self.follow(next);
        }
    }

    /// The last step of the gate's stop, after its connections have closed: their directory
    /// removals finish, the gate says goodbye in the directory (a killed gate's key
    /// expires instead), its subscriptions and timers stop, and what it sent (close events
    /// to backends) leaves the process. Each wait on NATS is bounded by `request_timeout`:
    /// NATS may be down.
    async fn finish(&self) {
        let timeout = self.cluster.config().request_timeout;
        self.directory_work.close();
        let _ = tokio::time::timeout(timeout, self.directory_work.wait()).await;
        let retire = async {
            let _ = self
                .cluster
                .remove_any(&node_key(self.cluster.node_id()))
                .await;
        };
        let _ = tokio::time::timeout(timeout, retire).await;
        self.stop.cancel();
        self.cluster.flush_outgoing().await;
    }
}
