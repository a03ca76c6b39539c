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
//! - [`Proxy::stall`] stops forwarding without closing anything (a half-open connection).
//!
//! Commands apply to the connections the proxy has accepted when they are given (those
//! counted by [`Proxy::accepted`]); a test that has just connected waits for that count
//! before giving one, or waits until the server has accepted the forwarded connection (the
//! proxy counts a connection before it connects to the server).
//!
//! Every wait inside the proxy is bounded: the connect to the target ([`STEP`]), and the
//! wait for the client to close after a counted cut ([`STEP`], then a reset). Dropping the
//! proxy closes its listener and resets every connection it still holds.
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
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::STEP;

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
    target: SocketAddr,
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
    /// A connection whose target refuses it (or does not answer within [`STEP`]) is reset.
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
        if !target.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the proxy forwards to loopback only, not to {target}"),
            ));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
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
    /// resets after [`STEP`]); the server side is reset, so the server's writes fail. A
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

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state();
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("target", &self.shared.target)
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

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owned here: when this task is aborted, the set is dropped and aborts every connection.
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let (rx, registration, budget) = register(&shared);
                    tasks.spawn(connection(client, shared.target, rx, registration, budget));
                }
                // Out of descriptors, or a connection reset before its accept: try again.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Counts and registers a new connection, with its random budget if random cuts are on.
fn register(shared: &Arc<Shared>) -> (mpsc::UnboundedReceiver<Cmd>, Registration, Option<usize>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut state = shared.state();
    let id = state.next_id;
    state.next_id += 1;
    state.accepted += 1;
    state.conns.insert(id, tx);
    let budget = state.random.as_mut().map(RandomCuts::next);
    let registration = Registration {
        shared: Arc::clone(shared),
        id,
    };
    (rx, registration, budget)
}

/// A connection's entry in [`State::conns`], removed when it is dropped.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.state().conns.remove(&self.id);
    }
}

/// Sets `SO_LINGER` to `Some(0)` (closing resets) or `None` (closing sends a FIN).
fn set_reset_on_close(stream: &TcpStream, reset: bool) {
    let _ = SockRef::from(stream).set_linger(reset.then_some(Duration::ZERO));
}

/// Prepares a socket of the proxy: no Nagle delay, and a reset if it is dropped unexpectedly
/// (the proxy's drop aborts the task that owns it).
fn prepare(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    set_reset_on_close(stream, true);
}

/// How a connection's forwarding ended.
enum End {
    /// Both sides closed their writing half, and the proxy passed it on.
    Closed,
    /// `cut_all`, an error on either side, or the proxy's drop: reset both.
    Reset,
    /// The byte budget ran out: FIN to the client, reset to the server.
    Counted,
}

async fn connection(
    mut client: TcpStream,
    target: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    registration: Registration,
    budget: Option<usize>,
) {
    prepare(&client);
    let mut server = match tokio::time::timeout(STEP, TcpStream::connect(target)).await {
        Ok(Ok(server)) => server,
        // Refused or silent target: the client is reset when `client` is dropped.
        _ => return,
    };
    prepare(&server);

    let mut c2s = Pipe::new(None);
    let mut s2c = Pipe::new(budget);
    let mut stalled = false;
    let end = {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        loop {
            if s2c.exhausted() {
                break End::Counted;
            }
            if c2s.closed && s2c.closed {
                break End::Closed;
            }
            // Commands first: a count armed before the server writes covers all its bytes.
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    None | Some(Cmd::Cut) => break End::Reset,
                    Some(Cmd::Stall) => stalled = true,
                    Some(Cmd::CutAfter(n)) => {
                        if !stalled {
                            s2c.arm(n);
                        }
                    }
                },
                r = c2s.step(&mut cr, &mut sw), if !stalled && !c2s.closed => {
                    if r.is_err() {
                        break End::Reset;
                    }
                }
                r = s2c.step(&mut sr, &mut cw), if !stalled && !s2c.closed => {
                    if r.is_err() {
                        break End::Reset;
                    }
                }
            }
        }
    };

    match end {
        // Dropping both (SO_LINGER 0) resets them.
        End::Reset => {}
        End::Closed => {
            set_reset_on_close(&client, false);
            set_reset_on_close(&server, false);
        }
        End::Counted => {
            drop(server);
            drop(registration);
            // A FIN after the last counted byte; then read (and drop) what the client still
            // sends, so that closing does not reset the client before it has read all.
            if client.shutdown().await.is_ok() {
                let mut sink = vec![0; BUF];
                let drained = tokio::time::timeout(STEP, async {
                    loop {
                        match client.read(&mut sink).await {
                            Ok(0) => return true,
                            Ok(_) => {}
                            Err(_) => return false,
                        }
                    }
                })
                .await;
                if drained == Ok(true) {
                    set_reset_on_close(&client, false);
                }
            }
        }
    }
}

/// One direction of a connection: bytes read from one side, not yet written to the other.
struct Pipe {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The reading side has sent EOF.
    eof: bool,
    /// The EOF has been passed on (the writing side is shut down).
    closed: bool,
    /// Bytes this pipe may still read, if counted.
    limit: Option<usize>,
}

impl Pipe {
    fn new(limit: Option<usize>) -> Pipe {
        Pipe {
            buf: vec![0; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            closed: false,
            limit,
        }
    }

    fn pending(&self) -> usize {
        self.end - self.start
    }

    /// The count ran out and every counted byte has been written.
    fn exhausted(&self) -> bool {
        self.limit == Some(0) && self.pending() == 0
    }

    /// Lets exactly `n` more bytes through, counting those already read but not written.
    fn arm(&mut self, n: usize) {
        let pending = self.pending();
        if pending >= n {
            self.end = self.start + n;
            self.limit = Some(0);
        } else {
            self.limit = Some(n - pending);
        }
    }

    /// One write of pending bytes, or one read if none are pending, or the shutdown once
    /// the reading side's EOF has been reached. Cancel-safe: the state changes only once
    /// the operation has completed.
    async fn step(&mut self, from: &mut ReadHalf<'_>, to: &mut WriteHalf<'_>) -> io::Result<()> {
        if self.pending() > 0 {
            let n = to.write(&self.buf[self.start..self.end]).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.start += n;
            if self.start == self.end {
                (self.start, self.end) = (0, 0);
            }
        } else if !self.eof {
            // `exhausted` is checked before every step, so a count here is not zero.
            let cap = self.limit.map_or(BUF, |l| l.min(BUF));
            let n = from.read(&mut self.buf[..cap]).await?;
            if n == 0 {
                self.eof = true;
            } else {
                self.end = n;
                if let Some(limit) = &mut self.limit {
                    *limit -= n;
                }
            }
        } else {
            to.shutdown().await?;
            self.closed = true;
        }
        Ok(())
    }
}

/// The byte counts of [`Proxy::random_cuts`]: splitmix64, mapped onto `min..=max`.
#[derive(Debug, Clone)]
struct RandomCuts {
    state: u64,
    min: usize,
    /// `max - min`.
    span: u64,
}

impl RandomCuts {
    fn new(seed: u64, min: usize, max: usize) -> RandomCuts {
        assert!(min <= max, "random cuts: min_bytes {min} > max_bytes {max}");
        RandomCuts {
            state: seed,
            min,
            span: (max - min) as u64,
        }
    }

    fn next(&mut self) -> usize {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let offset = match self.span.checked_add(1) {
            Some(n) => z % n,
            None => z,
        };
        // `offset <= span = max - min`, so this fits in a usize.
        self.min + offset as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_cuts_repeat_for_a_seed_and_stay_in_bounds() {
        let draws = |seed| {
            let mut r = RandomCuts::new(seed, 100, 200);
            (0..1000).map(|_| r.next()).collect::<Vec<_>>()
        };
        let a = draws(1);
        assert_eq!(a, draws(1));
        assert_ne!(a, draws(2));
        assert!(a.iter().all(|n| (100..=200).contains(n)));
        assert!(a.contains(&100) && a.contains(&200), "both ends are drawn");

        let mut one = RandomCuts::new(5, 42, 42);
        assert!((0..10).all(|_| one.next() == 42));
        let mut all = RandomCuts::new(5, 0, usize::MAX);
        let _ = all.next();
    }

    #[test]
    #[should_panic(expected = "min_bytes 2 > max_bytes 1")]
    fn random_cuts_reject_an_empty_range() {
        RandomCuts::new(0, 2, 1);
    }

    #[test]
    fn arming_counts_the_bytes_already_read() {
        let mut pipe = Pipe::new(None);
        pipe.end = 10;
        pipe.arm(4);
        assert_eq!((pipe.pending(), pipe.limit), (4, Some(0)));
        let mut pipe = Pipe::new(Some(3));
        pipe.end = 10;
        pipe.arm(25);
        assert_eq!((pipe.pending(), pipe.limit), (10, Some(15)));
        pipe.start = 10;
        pipe.arm(0);
        assert!(pipe.exhausted());
    }
}
