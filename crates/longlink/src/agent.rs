//! [`Agent`]: one client connection as the application sees it (leaf's `gate.Agent`).
//!
//! An agent is cheap to clone and safe to use from any task. Writing encodes the message and
//! puts its payload on the connection's bounded outgoing queue; the connection's writer drains
//! the queue, several frames per system call. Nothing here waits on the network.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::cluster::Cluster;
use crate::cluster::gate::GateLink;
use crate::cluster::wire::{ToGate, now_micros};
use crate::processor::{EncodeError, Encoded, Processor};

/// Which listener a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Length-prefixed TCP.
    Tcp,
    /// WebSocket.
    Ws,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
        })
    }
}

/// What to do when a connection's outgoing queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueFullPolicy {
    /// Destroy that connection (leaf's behaviour): a client that does not read is cut off.
    #[default]
    Disconnect,
    /// Drop the message, count it, and keep the connection.
    Drop,
}

/// Why a write was refused. The connection stays open unless the error says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The message could not be encoded (e.g. not registered).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The payload is over `max_msg_len`; nothing was sent.
    #[error("message too long: {len} bytes, the limit is {max}")]
    TooLong {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The connection is closing or closed.
    #[error("connection closed")]
    Closed,
    /// The queue was full: with [`QueueFullPolicy::Disconnect`] the connection is now being
    /// destroyed; with [`QueueFullPolicy::Drop`] only this message was dropped.
    #[error("outgoing queue full ({0} messages)")]
    QueueFull(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Open,
    /// Flush what is queued, then close.
    Closing,
    /// Drop what is queued, close now.
    Destroyed,
}

pub(crate) struct Queue {
    pub(crate) items: VecDeque<Bytes>,
    pub(crate) state: State,
}

pub(crate) struct AgentInner {
    id: u64,
    transport: Transport,
    local: SocketAddr,
    remote: SocketAddr,
    processor: Arc<Processor>,
    max_msg_len: usize,
    capacity: usize,
    policy: QueueFullPolicy,
    queue: Mutex<Queue>,
    /// Wakes the connection's task: something was queued, or the state changed.
    pub(crate) wake: Notify,
    uid: AtomicU64,
    dropped: AtomicU64,
    /// WebSocket close code for a graceful close (1000 unless the reader set another).
    close_code: AtomicU16,
    /// When the peer last sent anything (a message or a control frame such as a pong), in
    /// milliseconds since the gate started: for the ping and its deadline.
    last_seen_ms: AtomicU64,
    /// When the peer last sent an application message: for `idle_timeout`.
    last_msg_ms: AtomicU64,
    /// A WebSocket ping is wanted (set by the gate's sweeper, taken by the writer).
    ping_wanted: AtomicBool,
    /// When the outstanding ping was asked for (0: none outstanding).
    ping_at_ms: AtomicU64,
    user_data: Mutex<Option<Box<dyn Any + Send + Sync>>>,
    /// How this agent reaches the cluster, if it does.
    pub(crate) link: Link,
}

/// An agent's place in a cluster.
pub(crate) enum Link {
    /// Single process: the connection is here and nobody else needs to know.
    Local,
    /// The connection is on this node's gate, which is in a cluster (uid and group changes
    /// are told to the cluster).
    Gate(Arc<GateLink>),
    /// The connection is on another node's gate: writes travel there over NATS.
    Remote(RemoteConn),
}

/// A connection held by another node's gate, as a backend sees it.
pub(crate) struct RemoteConn {
    pub(crate) cluster: Cluster,
    pub(crate) gate: Arc<str>,
    pub(crate) conn: u64,
    pub(crate) open: AtomicBool,
}

impl RemoteConn {
    pub(crate) fn tell(&self, msg: &ToGate) {
        self.cluster.send_to_gate(&self.gate, msg);
    }
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
    pub(crate) inner: Arc<AgentInner>,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("id", &self.inner.id)
            .field("transport", &self.inner.transport)
            .field("remote", &self.inner.remote)
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

pub(crate) struct AgentSettings {
    pub(crate) processor: Arc<Processor>,
    pub(crate) max_msg_len: usize,
    pub(crate) capacity: usize,
    pub(crate) policy: QueueFullPolicy,
    /// The gate's clock origin, for `last_seen`.
    pub(crate) epoch: std::time::Instant,
    /// The gate's cluster link, when the gate is in a cluster.
    pub(crate) cluster: Option<Arc<GateLink>>,
}

impl AgentSettings {
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl Agent {
    pub(crate) fn new(
        id: u64,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
        settings: &AgentSettings,
    ) -> Self {
        let link = match &settings.cluster {
            Some(link) => Link::Gate(Arc::clone(link)),
            None => Link::Local,
        };
        Self::with_link(id, transport, (local, remote), settings, link)
    }

    /// A connection held by another node's gate (`gate`, its connection `conn`), with `id`
    /// unique on this node. Its writes go to that gate; it has no queue here.
    pub(crate) fn remote(
        id: u64,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
        processor: Arc<Processor>,
        conn: RemoteConn,
    ) -> Self {
        let settings = AgentSettings {
            processor,
            max_msg_len: usize::MAX,
            capacity: 0,
            policy: QueueFullPolicy::Drop,
            epoch: std::time::Instant::now(),
            cluster: None,
        };
        Self::with_link(
            id,
            transport,
            (local, remote),
            &settings,
            Link::Remote(conn),
        )
    }

    fn with_link(
        id: u64,
        transport: Transport,
        (local, remote): (SocketAddr, SocketAddr),
        settings: &AgentSettings,
        link: Link,
    ) -> Self {
        Agent {
            inner: Arc::new(AgentInner {
                id,
                transport,
                local,
                remote,
                processor: Arc::clone(&settings.processor),
                max_msg_len: settings.max_msg_len,
                capacity: settings.capacity,
                policy: settings.policy,
                queue: Mutex::new(Queue {
                    items: VecDeque::new(),
                    state: State::Open,
                }),
                wake: Notify::new(),
                uid: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                close_code: AtomicU16::new(1000),
                last_seen_ms: AtomicU64::new(settings.now_ms()),
                last_msg_ms: AtomicU64::new(settings.now_ms()),
                ping_wanted: AtomicBool::new(false),
                ping_at_ms: AtomicU64::new(0),
                user_data: Mutex::new(None),
                link,
            }),
        }
    }

    /// The gate-side link for a connection of a clustered gate, or the remote connection
    /// for an agent whose connection is on another node.
    pub(crate) fn link(&self) -> &Link {
        &self.inner.link
    }

    /// The remote connection on the backend side, once closed by its gate.
    pub(crate) fn mark_remote_closed(&self) {
        if let Link::Remote(r) = &self.inner.link {
            r.open.store(false, Ordering::Release);
        }
    }

    /// A number unique to this connection within the process (across every gate and
    /// cluster backend in it).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// TCP or WebSocket.
    pub fn transport(&self) -> Transport {
        self.inner.transport
    }

    /// The server's end of the socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The client's end of the socket (for WebSocket, the TCP peer; no X-Forwarded-For).
    pub fn remote_addr(&self) -> SocketAddr {
        self.inner.remote
    }

    /// The processor this connection encodes with.
    pub fn processor(&self) -> &Processor {
        &self.inner.processor
    }

    /// Encodes `msg` and queues it. Errors are returned, never panicked; see [`WriteError`].
    pub fn write<T: 'static>(&self, msg: &T) -> Result<(), WriteError> {
        let encoded = self.inner.processor.encode(msg)?;
        self.write_encoded(&encoded)
    }

    /// Queues a payload encoded once (e.g. for a broadcast); the bytes are shared, not copied.
    pub fn write_encoded(&self, msg: &Encoded) -> Result<(), WriteError> {
        if let Link::Remote(r) = &self.inner.link {
            if !r.open.load(Ordering::Acquire) {
                return Err(WriteError::Closed);
            }
            r.tell(&ToGate::Push {
                conn: r.conn,
                payload: msg.0.clone(),
            });
            return Ok(());
        }
        let len = msg.len();
        if len > self.inner.max_msg_len {
            tracing::debug!(conn = self.inner.id, len, "write refused: message too long");
            return Err(WriteError::TooLong {
                len,
                max: self.inner.max_msg_len,
            });
        }
        let mut q = self.lock_queue();
        if q.state != State::Open {
            return Err(WriteError::Closed);
        }
        if q.items.len() >= self.inner.capacity {
            match self.inner.policy {
                QueueFullPolicy::Drop => {
                    self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                    if let Some(m) = crate::admin::metrics::gate() {
                        m.queue_full_drops.increment(1);
                    }
                    return Err(WriteError::QueueFull(self.inner.capacity));
                }
                QueueFullPolicy::Disconnect => {
                    drop(q);
                    if let Some(m) = crate::admin::metrics::gate() {
                        m.queue_full_disconnects.increment(1);
                    }
                    tracing::debug!(conn = self.inner.id, "close conn: outgoing queue full");
                    self.destroy();
                    return Err(WriteError::QueueFull(self.inner.capacity));
                }
            }
        }
        q.items.push_back(msg.0.clone());
        let was_empty = q.items.len() == 1;
        drop(q);
        if let Some(sent) = &msg.1 {
            sent.increment(1);
        }
        if was_empty {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Writes `msg`, then closes: the usual way to kick a client with a reason.
    pub fn kick<T: 'static>(&self, msg: &T) -> Result<(), WriteError> {
        let result = self.write(msg);
        self.close();
        result
    }

    /// Closes gracefully: what is queued is flushed first, then the socket is closed. Later
    /// writes fail with [`WriteError::Closed`].
    pub fn close(&self) {
        if let Link::Remote(r) = &self.inner.link {
            if r.open.swap(false, Ordering::AcqRel) {
                r.tell(&ToGate::Close { conn: r.conn });
            }
            return;
        }
        let mut q = self.lock_queue();
        if q.state == State::Open {
            q.state = State::Closing;
            drop(q);
            self.wake();
        }
    }

    /// Closes now: the queue is dropped and the socket reset.
    pub fn destroy(&self) {
        if let Link::Remote(r) = &self.inner.link {
            r.open.store(false, Ordering::Release);
            r.tell(&ToGate::Destroy { conn: r.conn });
            return;
        }
        let mut q = self.lock_queue();
        if q.state != State::Destroyed {
            q.state = State::Destroyed;
            q.items = VecDeque::new();
            drop(q);
            self.wake();
        }
    }

    /// Whether the connection is still open for writes.
    pub fn is_open(&self) -> bool {
        if let Link::Remote(r) = &self.inner.link {
            return r.open.load(Ordering::Acquire);
        }
        self.lock_queue().state == State::Open
    }

    /// Messages queued and not yet written.
    pub fn queued(&self) -> usize {
        self.lock_queue().items.len()
    }

    /// Messages dropped because the queue was full (with [`QueueFullPolicy::Drop`]).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// The uid bound by [`Sessions`](crate::Sessions), if any.
    pub fn uid(&self) -> Option<u64> {
        match self.inner.uid.load(Ordering::Acquire) {
            0 => None,
            uid => Some(uid),
        }
    }

    pub(crate) fn close_code(&self) -> u16 {
        self.inner.close_code.load(Ordering::Relaxed)
    }

    pub(crate) fn set_close_code(&self, code: u16) {
        self.inner.close_code.store(code, Ordering::Relaxed);
    }

    /// The peer sent a control frame (a pong) at `now_ms`: it is alive.
    pub(crate) fn touch(&self, now_ms: u64) {
        self.inner.last_seen_ms.store(now_ms, Ordering::Relaxed);
        self.inner.ping_at_ms.store(0, Ordering::Relaxed);
    }

    /// The peer sent an application message at `now_ms`: alive, and not idle.
    pub(crate) fn touch_message(&self, now_ms: u64) {
        self.touch(now_ms);
        self.inner.last_msg_ms.store(now_ms, Ordering::Relaxed);
    }

    pub(crate) fn last_seen_ms(&self) -> u64 {
        self.inner.last_seen_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn last_msg_ms(&self) -> u64 {
        self.inner.last_msg_ms.load(Ordering::Relaxed)
    }

    /// Asks the connection's task to send a WebSocket ping, unless one is outstanding.
    pub(crate) fn request_ping(&self, now_ms: u64) {
        let asked = self.inner.ping_at_ms.compare_exchange(
            0,
            now_ms.max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if asked.is_ok() {
            self.inner.ping_wanted.store(true, Ordering::Relaxed);
            self.wake();
        }
    }

    /// When the outstanding ping was asked for, if one is.
    pub(crate) fn ping_outstanding_since(&self) -> Option<u64> {
        match self.inner.ping_at_ms.load(Ordering::Relaxed) {
            0 => None,
            at => Some(at),
        }
    }

    pub(crate) fn take_ping(&self) -> bool {
        self.inner.ping_wanted.swap(false, Ordering::Relaxed)
    }

    /// Records the uid (0: none). In a cluster the gate that holds the connection is told,
    /// and it updates the directory (and displaces that uid's other connection, anywhere).
    pub(crate) fn set_uid(&self, uid: u64) {
        let old = self.inner.uid.swap(uid, Ordering::AcqRel);
        if old == uid {
            return;
        }
        match &self.inner.link {
            Link::Local => {}
            Link::Gate(link) => link.bind_uid(self, uid, now_micros()),
            Link::Remote(r) => r.tell(&ToGate::Bind {
                conn: r.conn,
                uid,
                at: now_micros(),
            }),
        }
    }

    /// Records the uid the gate was told about, without telling anyone.
    pub(crate) fn store_uid(&self, uid: u64) {
        self.inner.uid.store(uid, Ordering::Release);
    }

    /// Stores a value of any type with this connection, replacing what was there.
    pub fn set_user_data<T: Any + Send + Sync>(&self, data: T) {
        *self.lock_user_data() = Some(Box::new(data));
    }

    /// A copy of the stored value, if it is a `T`.
    pub fn user_data<T: Any + Clone>(&self) -> Option<T> {
        self.lock_user_data()
            .as_ref()
            .and_then(|d| d.downcast_ref::<T>())
            .cloned()
    }

    /// Runs `f` on the stored value, if it is a `T`, and returns what `f` returns.
    pub fn with_user_data<T: Any, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.lock_user_data()
            .as_mut()
            .and_then(|d| d.downcast_mut::<T>())
            .map(f)
    }

    /// Removes the stored value.
    pub fn clear_user_data(&self) {
        *self.lock_user_data() = None;
    }

    /// Wakes the connection's task so it looks at the gate's state.
    pub(crate) fn nudge(&self) {
        self.wake();
    }

    fn wake(&self) {
        self.inner.wake.notify_one();
    }

    pub(crate) fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        // A panic never happens while the lock is held, but stay usable if it did.
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_user_data(&self) -> MutexGuard<'_, Option<Box<dyn Any + Send + Sync>>> {
        self.inner
            .user_data
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}
