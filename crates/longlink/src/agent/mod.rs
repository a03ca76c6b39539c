//! [`Agent`]: one client connection as the application sees it (leaf's `gate.Agent`).
//!
//! An agent is cheap to clone and safe to use from any task. Writing encodes the message and
//! puts its payload on the connection's bounded outgoing queue (`outbox`); the connection's
//! task drains the queue, several frames per system call. Nothing here waits on the network.
//!
//! - `outbox`: the outgoing queue and its state (open, closing, destroyed);
//! - `liveness`: when the peer was last heard from, for the gate's idle and ping sweep;
//! - `link`: `ConnLink`, the trait through which the cluster (a layer
//!   above) hears of uid and group changes, and carries out writes to a connection that lives
//!   on another node's gate;
//! - [`events`](EventHandler): where new and close events go;
//! - `user_data`: the application's value stored with a connection; `carried`: how it moves
//!   to another node (as JSON, when its type is registered);
//! - `write`: writes, queued as each type's delivery class says.

pub(crate) mod carried;
pub(crate) mod events;
pub(crate) mod link;
pub(crate) mod liveness;
pub(crate) mod logged;
pub(crate) mod outbox;
mod user_data;
mod write;

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use events::{EventHandler, WithCtx, WithState};
pub use longlink_wire::Transport;
pub use outbox::{QueueFullPolicy, WriteError};

use crate::codec::Codec;
use link::{ConnLink, LinkEvent};
use liveness::Liveness;
use outbox::{Outbox, State};

pub(crate) struct AgentInner {
    /// Unique in the process: the key of every table of connections (the gate's, groups',
    /// the cluster's).
    id: u64,
    /// Which listener its socket came through (the latest socket's, for a resumed session):
    /// [`Transport::code`].
    transport: AtomicU8,
    /// The server's and the client's end of the socket (the latest socket's).
    addrs: Mutex<(SocketAddr, SocketAddr)>,
    /// Encodes what [`Agent::write`] is given, in the gate's encoding.
    codec: Arc<Codec>,
    /// The uid bound by `Sessions` (0: none); read from any task.
    uid: AtomicU64,
    /// The application's value for this connection ([`Agent::set_user_data`]).
    user_data: Mutex<Option<Box<dyn Any + Send + Sync>>>,
    /// Where the connection is: here, or on another node's gate.
    whereabouts: Whereabouts,
    /// Who hears of uid and group changes (and, for a remote connection, carries out every
    /// write): the gate (which tells the cluster, when there is one), or the cluster.
    link: Option<Arc<dyn ConnLink>>,
    /// Whether a cluster hears of it (its group broadcasts go through NATS).
    clustered: bool,
    /// What the application attached at the WebSocket upgrade
    /// ([`GateBuilder::on_upgrade`](crate::gate::GateBuilder::on_upgrade)); fixed from then on.
    attached: http::Extensions,
}

/// Where an agent's connection is.
pub(crate) enum Whereabouts {
    /// On this node's gate: its queue and liveness, used by the connection's task. Boxed:
    /// a backend node holds an agent for every connection of every gate, and a remote one
    /// would otherwise carry this unused (about 200 bytes of the agent's 350).
    Local(Box<Local>),
    /// On another node's gate: writes go through the link. Holds whether it is still open.
    Remote(AtomicBool),
}

/// The parts of a local connection that its task and the gate's sweep use.
pub(crate) struct Local {
    pub(crate) outbox: Outbox,
    pub(crate) liveness: Liveness,
}

/// One client connection. Clone it freely; every clone is the same connection.
///
/// ```no_run
/// # use longlink::Agent;
/// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
/// # struct S2C_Kick { #[prost(string, tag = "1")] reason: String }
/// # fn on_message(agent: &Agent) {
/// // Queue a reply; an error says why it was not queued, the connection is never panicked.
/// if let Err(e) = agent.write(&S2C_Kick { reason: "bye".into() }) {
///     tracing::debug!("not sent: {e}");
/// }
/// agent.close(); // the kick above is flushed first
/// # }
/// ```
#[derive(Clone)]
pub struct Agent {
    inner: Arc<AgentInner>,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("id", &self.inner.id)
            .field("transport", &self.transport())
            .field("remote", &self.remote_addr())
            .finish()
    }
}

/// A new agent id, unique in this process: a node that is both a gate and a backend holds
/// its own connections and other gates' side by side in the same modules.
pub(crate) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl PartialEq for Agent {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Agent {}

/// What every local connection of one listener shares.
pub(crate) struct AgentSettings {
    pub(crate) codec: Arc<Codec>,
    /// The transport's payload limit.
    pub(crate) max_msg_len: usize,
    /// `pending_write_num`.
    pub(crate) capacity: usize,
    /// `pending_write_bytes` (0: no bound).
    pub(crate) max_bytes: usize,
    /// `volatile_queue`.
    pub(crate) volatile: usize,
    /// `queue_full`.
    pub(crate) policy: QueueFullPolicy,
    /// The gate's clock origin, for liveness.
    pub(crate) epoch: std::time::Instant,
    /// The gate's link: its group table, and the cluster's link when it is in a cluster.
    pub(crate) link: Option<Arc<dyn ConnLink>>,
    /// Whether the gate is in a cluster.
    pub(crate) clustered: bool,
}

impl AgentSettings {
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl Agent {
    /// A connection on this node's gate.
    pub(crate) fn new(
        id: u64,
        transport: Transport,
        (local, remote): (SocketAddr, SocketAddr),
        settings: &AgentSettings,
        attached: http::Extensions,
    ) -> Self {
        let whereabouts = Whereabouts::Local(Box::new(Local {
            outbox: Outbox::new(
                (settings.capacity, settings.max_bytes),
                settings.policy,
                settings.volatile,
                settings.max_msg_len,
            ),
            liveness: Liveness::new(settings.now_ms()),
        }));
        Self::with(
            id,
            transport,
            (local, remote),
            Arc::clone(&settings.codec),
            whereabouts,
            (settings.link.clone(), settings.clustered),
            attached,
        )
    }

    /// A connection held by another node's gate, with `id` unique on this node; `link`
    /// carries its writes there.
    pub(crate) fn remote(
        id: u64,
        transport: Transport,
        addrs: (SocketAddr, SocketAddr),
        codec: Arc<Codec>,
        link: Arc<dyn ConnLink>,
    ) -> Self {
        Self::with(
            id,
            transport,
            addrs,
            codec,
            Whereabouts::Remote(AtomicBool::new(true)),
            (Some(link), true),
            http::Extensions::new(),
        )
    }

    fn with(
        id: u64,
        transport: Transport,
        (local, remote): (SocketAddr, SocketAddr),
        codec: Arc<Codec>,
        whereabouts: Whereabouts,
        (link, clustered): (Option<Arc<dyn ConnLink>>, bool),
        attached: http::Extensions,
    ) -> Self {
        Agent {
            inner: Arc::new(AgentInner {
                id,
                transport: AtomicU8::new(transport.code()),
                addrs: Mutex::new((local, remote)),
                codec,
                uid: AtomicU64::new(0),
                user_data: Mutex::new(None),
                whereabouts,
                link,
                clustered,
                attached,
            }),
        }
    }

    /// The queue and liveness of a connection on this node (`None` for a remote one).
    pub(crate) fn local(&self) -> Option<&Local> {
        match &self.inner.whereabouts {
            Whereabouts::Local(local) => Some(local),
            Whereabouts::Remote(_) => None,
        }
    }

    /// Whether a cluster hears of this agent's uid and group changes.
    pub(crate) fn in_cluster(&self) -> bool {
        self.inner.clustered
    }

    /// Tells the agent's link (if any) of `event`.
    pub(crate) fn tell(&self, event: LinkEvent<'_>) {
        if let Some(link) = &self.inner.link {
            link.tell(self, event);
        }
    }

    /// Where the connection is in the cluster: its gate's node id and its id there (`None`
    /// outside a cluster).
    pub(crate) fn cluster_address(&self) -> Option<(Arc<str>, u64)> {
        self.inner.link.as_ref()?.address(self)
    }

    /// A remote connection whose session moved to connection `conn` of gate `gate`.
    pub(crate) fn retarget(&self, gate: &str, conn: u64) {
        if let Some(link) = &self.inner.link {
            link.retarget(gate, conn);
        }
    }

    /// A remote connection that moved to another node: its gate hears nothing more of this
    /// agent's uid, groups or close; its writes still reach the client.
    pub(crate) fn detach(&self) {
        if let Some(link) = &self.inner.link {
            link.detach();
        }
    }

    /// A remote connection, once closed by its gate: later writes fail.
    pub(crate) fn mark_remote_closed(&self) {
        if let Whereabouts::Remote(open) = &self.inner.whereabouts {
            open.store(false, Ordering::Release);
        }
    }

    /// A number unique to this connection within the process (across every gate and
    /// cluster backend in it).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// TCP or WebSocket (of the latest socket, for a resumed session).
    pub fn transport(&self) -> Transport {
        Transport::from_code(self.inner.transport.load(Ordering::Relaxed)).unwrap_or_default()
    }

    /// The server's end of the socket (the latest socket's, for a resumed session).
    pub fn local_addr(&self) -> SocketAddr {
        self.lock_addrs().0
    }

    /// The client's address (the latest socket's, for a resumed session): the socket's
    /// peer, or, behind a load balancer, the client it names: the PROXY protocol header's
    /// source (`[gate] proxy_protocol`), or for a WebSocket upgrade from one of
    /// `[gate] trusted_proxies`, the address in `X-Forwarded-For` / `Forwarded` (port 0 when
    /// the header gives none).
    pub fn remote_addr(&self) -> SocketAddr {
        self.lock_addrs().1
    }

    /// A resumed session's new socket: its transport and addresses.
    pub(crate) fn set_socket(&self, transport: Transport, addrs: (SocketAddr, SocketAddr)) {
        self.inner
            .transport
            .store(transport.code(), Ordering::Relaxed);
        *self.lock_addrs() = addrs;
    }

    fn lock_addrs(&self) -> MutexGuard<'_, (SocketAddr, SocketAddr)> {
        self.inner.addrs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The codec this connection encodes with: encode a message once with
    /// [`Codec::encode`], then [`write_encoded`](Self::write_encoded) it to many agents.
    pub fn codec(&self) -> &Codec {
        &self.inner.codec
    }

    /// Closes gracefully: what is queued is flushed first, then the socket is closed. Later
    /// writes fail with [`WriteError::Closed`].
    pub fn close(&self) {
        match &self.inner.whereabouts {
            Whereabouts::Local(local) => local.outbox.close(),
            Whereabouts::Remote(open) => {
                if open.swap(false, Ordering::AcqRel) {
                    self.tell(LinkEvent::Close);
                }
            }
        }
    }

    /// Closes now: the queue is dropped and the socket reset.
    pub fn destroy(&self) {
        match &self.inner.whereabouts {
            Whereabouts::Local(local) => local.outbox.destroy(),
            Whereabouts::Remote(open) => {
                open.store(false, Ordering::Release);
                self.tell(LinkEvent::Destroy);
            }
        }
    }

    /// Whether the connection is still open for writes.
    pub fn is_open(&self) -> bool {
        match &self.inner.whereabouts {
            Whereabouts::Local(local) => local.outbox.state() == State::Open,
            Whereabouts::Remote(open) => open.load(Ordering::Acquire),
        }
    }

    /// Messages queued and not yet written (always 0 for a connection on another node).
    pub fn queued(&self) -> usize {
        self.local().map_or(0, |l| l.outbox.len())
    }

    /// Messages dropped because the queue was full (with [`QueueFullPolicy::Drop`]).
    pub fn dropped(&self) -> u64 {
        self.local().map_or(0, |l| l.outbox.dropped())
    }

    /// The uid bound by [`Sessions`](crate::Sessions), if any.
    pub fn uid(&self) -> Option<u64> {
        match self.inner.uid.load(Ordering::Acquire) {
            0 => None,
            uid => Some(uid),
        }
    }

    /// Records the uid (0: none), and tells the link: in a cluster the gate that holds the
    /// connection updates the directory (and displaces that uid's other connection,
    /// anywhere).
    pub(crate) fn set_uid(&self, uid: u64) {
        let old = self.inner.uid.swap(uid, Ordering::AcqRel);
        if old != uid {
            self.tell(LinkEvent::Uid(uid));
        }
    }

    /// Records the uid the gate was told about, without telling anyone.
    pub(crate) fn store_uid(&self, uid: u64) {
        self.inner.uid.store(uid, Ordering::Release);
    }
}
