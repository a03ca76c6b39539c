//! A loopback TCP proxy that cuts, stalls and counts the connections it forwards: for the
//! tests of a client that must survive a broken connection (session resume).
//!
//! A client connects to [`Proxy::addr`]; the proxy connects to the target server and copies
//! bytes both ways until the test breaks the connection:
//!
//! - [`Proxy::cut_all`] resets both sides of every current connection at once (a crashed
//!   middlebox: bytes still in flight are lost);
//! - [`Proxy::cut_after`] lets exactly `n` more bytes go from the server to the client, then
//!   ends the client side with a FIN (so the count is exact: the client reads exactly those
//!   bytes, then EOF) and resets the server side; `n` may end mid-frame;
//! - [`Proxy::random_cuts`] does the same to every new connection, after a number of bytes
//!   drawn from a seed;
//! - [`Proxy::stall`] stops forwarding without closing anything (a half-open connection);
//! - [`Proxy::retarget`] sends the connections accepted from then on to another server.
//!
//! Commands apply to the connections the proxy has accepted when they are given (those
//! counted by [`Proxy::accepted`]); a test that has just connected waits for that count
//! before giving one, or waits until the server has accepted the forwarded connection (the
//! proxy counts a connection before it connects to the server).
//!
//! Every wait inside the proxy is bounded: the connect to the target
//! ([`STEP`](crate::STEP)), and the wait for the client to close after a counted cut (`STEP`,
//! then a reset). Dropping the proxy closes its listener and resets every connection it still
//! holds.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use longlink_testkit::Proxy;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::{TcpListener, TcpStream};
//!
//! let server = TcpListener::bind("127.0.0.1:0").await?;
//! let proxy = Proxy::start(server.local_addr()?).await?;
//! let mut client = TcpStream::connect(proxy.addr()).await?;
//! let (mut upstream, _) = server.accept().await?;
//!
//! upstream.write_all(b"hello").await?;
//! let mut buf = [0; 5];
//! client.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"hello");
//!
//! proxy.cut_all();
//! assert!(!matches!(client.read(&mut buf).await, Ok(n) if n > 0));
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

mod forward;

use forward::{RandomCuts, accept_loop};

/// Bytes buffered per direction of a connection.
const BUF: usize = 16 * 1024;

/// A TCP proxy on `127.0.0.1:<free port>` in front of one target; see the [module
/// documentation](self).
///
/// Its methods take `&self` and return at once: the connections act on a command a moment
/// later, so a test waits for the effect it wants (an EOF, [`connections`](Self::connections)
/// dropping), with a bound.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

struct Shared {
    /// Where new connections go ([`Proxy::retarget`] changes it).
    target: Mutex<SocketAddr>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    accepted: usize,
    /// The connections being forwarded (or stalled), by id.
    conns: HashMap<u64, mpsc::UnboundedSender<Cmd>>,
    /// Draws the byte budget of each new connection, while random cuts are on.
    random: Option<RandomCuts>,
}

#[derive(Debug, Clone, Copy)]
enum Cmd {
    Cut,
    CutAfter(usize),
    Stall,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn target(&self) -> SocketAddr {
        *self.target.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send_all(&self, cmd: Cmd) {
        for tx in self.state().conns.values() {
            // A connection that has just ended has dropped its receiver: nothing to do.
            let _ = tx.send(cmd);
        }
    }
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards every accepted connection to `target`, which
    /// must be a loopback address (an `InvalidInput` error otherwise).
    ///
    /// A connection whose target refuses it (or does not answer within
    /// [`STEP`](crate::STEP)) is reset.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let proxy = longlink_testkit::Proxy::start(server.local_addr()?).await?;
    /// assert!(proxy.addr().ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start(target: SocketAddr) -> io::Result<Proxy> {
        check_loopback(target)?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target: Mutex::new(target),
            state: Mutex::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Proxy {
            addr,
            shared,
            accept,
        })
    }

    /// The address the clients connect to.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let proxy = longlink_testkit::Proxy::start(server.local_addr()?).await?;
    /// let client = tokio::net::TcpStream::connect(proxy.addr()).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Forwards the connections accepted from now on to `target` (a loopback address; an
    /// `InvalidInput` error otherwise); current connections stay with their server. A
    /// server restarted on new ports (start the new one, move the proxy, stop the old one)
    /// looks to the clients like one address that never went away.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// let (old, new) = (
    ///     tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    ///     tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    /// );
    /// let proxy = longlink_testkit::Proxy::start(old.local_addr()?).await?;
    /// proxy.retarget(new.local_addr()?)?;
    /// let mut client = tokio::net::TcpStream::connect(proxy.addr()).await?;
    /// let (mut upstream, _) = new.accept().await?;
    /// upstream.write_all(b"new").await?;
    /// let mut buf = [0; 3];
    /// client.read_exact(&mut buf).await?;
    /// assert_eq!(&buf, b"new");
    /// # Ok(())
    /// # }
    /// ```
    pub fn retarget(&self, target: SocketAddr) -> io::Result<()> {
        check_loopback(target)?;
        *self
            .shared
            .target
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = target;
        Ok(())
    }

    /// Ends every current connection at once, with a reset on both sides: the client and
    /// the server each read an error (or EOF), bytes in flight are lost. Stalled
    /// connections end too. New connections are accepted and forwarded as before.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use tokio::io::AsyncReadExt;
    /// # let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let proxy = longlink_testkit::Proxy::start(server.local_addr()?).await?;
    /// let mut client = tokio::net::TcpStream::connect(proxy.addr()).await?;
    /// let (mut upstream, _) = server.accept().await?;
    /// proxy.cut_all();
    /// let mut buf = [0; 16];
    /// assert!(!matches!(client.read(&mut buf).await, Ok(n) if n > 0));
    /// assert!(!matches!(upstream.read(&mut buf).await, Ok(n) if n > 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn cut_all(&self) {
        self.shared.send_all(Cmd::Cut);
    }

    /// Cuts each current connection after exactly `bytes` more bytes have gone from the
    /// server to the client (bytes the proxy has read but not yet passed on count among
    /// them); connections accepted later are not affected. `cut_after(0)` cuts now.
    ///
    /// The client then reads exactly those bytes and EOF (the proxy sends a FIN after the
    /// last one, then discards what the client sends, and closes once the client does, or
    /// resets after `STEP`); the server side is reset, so the server's writes fail. A
    /// later call replaces the count (and a random one); a stalled connection ignores it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let proxy = longlink_testkit::Proxy::start(server.local_addr()?).await?;
    /// let mut client = tokio::net::TcpStream::connect(proxy.addr()).await?;
    /// let (mut upstream, _) = server.accept().await?;
    /// proxy.cut_after(3);
    /// let _ = upstream.write_all(b"a frame").await;
    /// let mut got = Vec::new();
    /// client.read_to_end(&mut got).await?;
    /// assert_eq!(got, b"a f");
    /// # Ok(())
    /// # }
    /// ```
    pub fn cut_after(&self, bytes: usize) {
        self.shared.send_all(Cmd::CutAfter(bytes));
    }

    /// Cuts every connection accepted from now on, as [`cut_after`](Self::cut_after) does,
    /// after a number of server-to-client bytes drawn from `min_bytes..=max_bytes`: the
    /// `k`-th connection accepted after this call gets the `k`-th draw of a generator
    /// seeded with `seed`, so a run is repeatable. Current connections are not affected;
    /// [`no_random_cuts`](Self::no_random_cuts) stops it.
    ///
    /// Panics if `min_bytes > max_bytes`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let proxy = longlink_testkit::Proxy::start(server.local_addr()?).await?;
    /// proxy.random_cuts(7, 10, 20);
    /// let mut client = tokio::net::TcpStream::connect(proxy.addr()).await?;
    /// let (mut upstream, _) = server.accept().await?;
    /// let _ = upstream.write_all(&[0; 100]).await;
    /// let mut got = Vec::new();
    /// client.read_to_end(&mut got).await?;
    /// assert!((10..=20).contains(&got.len()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn random_cuts(&self, seed: u64, min_bytes: usize, max_bytes: usize) {
        self.shared.state().random = Some(RandomCuts::new(seed, min_bytes, max_bytes));
    }

    /// Stops [`random_cuts`](Self::random_cuts) for the connections accepted from now on
    /// (those already counting keep their count).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let proxy = longlink_testkit::Proxy::start(server.local_addr()?).await?;
    /// proxy.random_cuts(7, 10, 20);
    /// proxy.no_random_cuts();
    /// # Ok(())
    /// # }
    /// ```
    pub fn no_random_cuts(&self) {
        self.shared.state().random = None;
    }

    /// Stops forwarding on every current connection, both ways, and keeps both of its
    /// sockets open: the client and the server see neither data nor EOF (what a dead link
    /// or a lost NAT entry looks like). It lasts until [`cut_all`](Self::cut_all) or the
    /// proxy's drop; [`cut_after`](Self::cut_after) does not end it. Connections accepted
    /// later are forwarded as usual.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let proxy = longlink_testkit::Proxy::start(server.local_addr()?).await?;
    /// let mut client = tokio::net::TcpStream::connect(proxy.addr()).await?;
    /// let (mut upstream, _) = server.accept().await?;
    /// proxy.stall();
    /// upstream.write_all(b"lost").await?;
    /// let mut buf = [0; 4];
    /// let read = tokio::time::timeout(Duration::from_millis(100), client.read(&mut buf));
    /// assert!(read.await.is_err(), "nothing arrives, not even EOF");
    /// proxy.cut_all();
    /// # Ok(())
    /// # }
    /// ```
    pub fn stall(&self) {
        self.shared.send_all(Cmd::Stall);
    }

    /// How many connections the proxy holds now: forwarding or stalled, not yet cut or
    /// closed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let proxy = longlink_testkit::Proxy::start(server.local_addr()?).await?;
    /// assert_eq!(proxy.connections(), 0);
    /// let _client = tokio::net::TcpStream::connect(proxy.addr()).await?;
    /// let _upstream = server.accept().await?;
    /// assert_eq!(proxy.connections(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn connections(&self) -> usize {
        self.shared.state().conns.len()
    }

    /// How many connections the proxy has accepted since it started. A connection is
    /// counted (and takes commands) before the proxy connects it to the target.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let proxy = longlink_testkit::Proxy::start(server.local_addr()?).await?;
    /// let _client = tokio::net::TcpStream::connect(proxy.addr()).await?;
    /// longlink_testkit::wait_for("the accept", || async { proxy.accepted() == 1 }).await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn accepted(&self) -> usize {
        self.shared.state().accepted
    }
}

/// The proxy forwards to loopback addresses only.
fn check_loopback(target: SocketAddr) -> io::Result<()> {
    if target.ip().is_loopback() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("the proxy forwards to loopback only, not to {target}"),
    ))
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state();
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("target", &self.shared.target())
            .field("connections", &state.conns.len())
            .field("accepted", &state.accepted)
            .field("random_cuts", &state.random.is_some())
            .finish()
    }
}

impl Drop for Proxy {
    /// Stops the accept loop; its tasks go with it, so the listener closes and every
    /// connection (forwarding, stalled or closing) is reset.
    fn drop(&mut self) {
        self.accept.abort();
    }
}
