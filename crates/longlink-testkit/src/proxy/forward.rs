//! The proxy's moving parts: the accept loop, one task per forwarded connection (two pipes
//! and the commands that cut or stall them), and the seeded draws of the random cuts.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{BUF, Cmd, Shared};
use crate::STEP;

pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owned here: when this task is aborted, the set is dropped and aborts every connection.
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let (rx, registration, budget) = register(&shared);
                    let target = shared.target();
                    tasks.spawn(connection(client, target, rx, registration, budget));
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
pub(super) struct RandomCuts {
    state: u64,
    min: usize,
    /// `max - min`.
    span: u64,
}

impl RandomCuts {
    pub(super) fn new(seed: u64, min: usize, max: usize) -> RandomCuts {
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
