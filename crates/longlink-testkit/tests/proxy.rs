//! The cutting proxy against servers written here, on 127.0.0.1.

use std::io;
use std::time::Duration;

use longlink_testkit::{Proxy, STEP, bounded, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bound on each test body.
const LIMIT: Duration = Duration::from_secs(10);

/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

/// `len` bytes that differ from one offset to the next (so a lost or repeated chunk shows).
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 8) as u8 ^ salt)
        .collect()
}

/// A target server, and a proxy in front of it.
async fn setup() -> (TcpListener, Proxy) {
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = Proxy::start(server.local_addr().unwrap()).await.unwrap();
    (server, proxy)
}

/// A client connected through the proxy, and the server's side of that connection. Once
/// the server has accepted it, the proxy has counted it: commands reach it.
async fn pair(server: &TcpListener, proxy: &Proxy) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(proxy.addr()).await.unwrap();
    let (upstream, _) = tokio::time::timeout(STEP, server.accept())
        .await
        .expect("the proxy connects to the server")
        .unwrap();
    (client, upstream)
}

/// Everything `stream` reads until EOF (`Ok`) or an error, within [`STEP`].
async fn read_until_end(stream: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    let end = tokio::time::timeout(STEP, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the stream ends");
    (got, end)
}

/// Asserts that `stream` ends (EOF or an error) without reading any more bytes.
async fn assert_ends(stream: &mut TcpStream, what: &str) -> io::Result<()> {
    let (got, end) = read_until_end(stream).await;
    assert!(got.is_empty(), "{what}: {} bytes after the cut", got.len());
    end
}

/// Asserts that a fresh connection through `proxy` carries bytes both ways; returns it open.
async fn assert_forwards(server: &TcpListener, proxy: &Proxy) -> (TcpStream, TcpStream) {
    let (mut client, mut upstream) = pair(server, proxy).await;
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0; 4];
    upstream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    upstream.write_all(b"pong").await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
    (client, upstream)
}

async fn wait_for_connections(proxy: &Proxy, n: usize) {
    wait_for(&format!("{n} connections"), || async {
        proxy.connections() == n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_pass_unchanged_both_ways_and_a_close_is_passed_on() {
    bounded(LIMIT, async {
        let (server, proxy) = setup().await;
        let (mut client, mut upstream) = pair(&server, &proxy).await;
        assert_eq!((proxy.accepted(), proxy.connections()), (1, 1));

        let up = pattern(300_000, 1);
        let down = pattern(500_000, 2);
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        let mut client_got = Vec::new();
        let mut server_got = Vec::new();
        let (a, b, c, d) = tokio::join!(
            async {
                cw.write_all(&up).await?;
                cw.shutdown().await
            },
            cr.read_to_end(&mut client_got),
            async {
                uw.write_all(&down).await?;
                uw.shutdown().await
            },
            ur.read_to_end(&mut server_got),
        );
        a.unwrap();
        b.unwrap();
        c.unwrap();
        d.unwrap();
        assert!(server_got == up, "client -> server bytes changed");
        assert!(client_got == down, "server -> client bytes changed");

        drop((client, upstream));
        wait_for_connections(&proxy, 0).await;
        assert_eq!(proxy.accepted(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_all_resets_both_sides_and_new_connections_still_work() {
    bounded(LIMIT, async {
        let (server, proxy) = setup().await;
        let (mut c1, mut u1) = pair(&server, &proxy).await;
        let (mut c2, mut u2) = pair(&server, &proxy).await;
        assert_eq!(proxy.connections(), 2);

        proxy.cut_all();
        for (stream, what) in [
            (&mut c1, "client 1"),
            (&mut c2, "client 2"),
            (&mut u1, "server 1"),
            (&mut u2, "server 2"),
        ] {
            let end = assert_ends(stream, what).await;
            let kind = end.expect_err("a reset, not a FIN").kind();
            assert_eq!(kind, io::ErrorKind::ConnectionReset, "{what}");
        }
        wait_for_connections(&proxy, 0).await;

        let _open = assert_forwards(&server, &proxy).await;
        assert_eq!((proxy.accepted(), proxy.connections()), (3, 1));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_after_delivers_exactly_that_many_more_bytes() {
    bounded(LIMIT, async {
        let (server, proxy) = setup().await;
        let (mut client, mut upstream) = pair(&server, &proxy).await;

        // Bytes before the call do not count, nor do those from the client.
        let before = pattern(5_000, 3);
        upstream.write_all(&before).await.unwrap();
        let mut buf = vec![0; before.len()];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, before);
        client.write_all(&pattern(70_000, 4)).await.unwrap();
        let mut buf = vec![0; 70_000];
        upstream.read_exact(&mut buf).await.unwrap();

        const N: usize = 12_345;
        proxy.cut_after(N);
        let stream = pattern(1 << 20, 5);
        let sent = stream.clone();
        let writer = tokio::spawn(async move {
            upstream.write_all(&sent).await?;
            // The socket buffers may take the whole MiB: then a read sees the reset.
            upstream.read(&mut [0; 1]).await.map(drop)
        });

        let (got, end) = read_until_end(&mut client).await;
        assert_eq!(got.len(), N, "bytes after cut_after({N})");
        assert!(
            got == stream[..N],
            "the bytes before the cut are the server's"
        );
        end.expect("the client sees EOF after the counted bytes");

        let server_end = tokio::time::timeout(STEP, writer).await.unwrap().unwrap();
        assert!(server_end.is_err(), "the server's side is reset");
        wait_for_connections(&proxy, 0).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_after_zero_cuts_now_and_a_cut_comes_while_the_client_is_not_reading() {
    bounded(LIMIT, async {
        let (server, proxy) = setup().await;
        let (mut client, mut upstream) = pair(&server, &proxy).await;
        proxy.cut_after(0);
        assert_ends(&mut client, "client")
            .await
            .expect("EOF for the client");
        assert_ends(&mut upstream, "server")
            .await
            .expect_err("a reset for the server");

        // A stream without end, and a client that does not read: the buffers fill, the
        // proxy holds bytes it cannot write yet. The cut still comes, after a prefix.
        let (mut client, mut upstream) = pair(&server, &proxy).await;
        let chunk = pattern(64 * 1024, 6);
        let sent = chunk.clone();
        let writer = tokio::spawn(async move {
            loop {
                upstream.write_all(&sent).await?;
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.cut_after(3);
        let (got, end) = read_until_end(&mut client).await;
        end.expect("EOF for the client");
        assert!(got.len() >= 3, "{} bytes", got.len());
        let unchanged = got
            .iter()
            .enumerate()
            .all(|(i, b)| *b == chunk[i % chunk.len()]);
        assert!(unchanged, "{} bytes, unchanged", got.len());
        let written: io::Result<()> = tokio::time::timeout(STEP, writer).await.unwrap().unwrap();
        written.expect_err("the server's side is reset");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reconnects_after_a_cut_and_gets_everything() {
    bounded(LIMIT, async {
        let (server, proxy) = setup().await;
        let (mut client, mut upstream) = pair(&server, &proxy).await;
        proxy.cut_after(7);
        let _ = upstream.write_all(&pattern(100_000, 7)).await;
        let (got, end) = read_until_end(&mut client).await;
        assert_eq!(got.len(), 7);
        end.unwrap();

        // The count was for the connection of its time: this one goes through in full.
        let (mut client, mut upstream) = pair(&server, &proxy).await;
        let stream = pattern(1 << 20, 8);
        let sent = stream.clone();
        let writer = tokio::spawn(async move {
            upstream.write_all(&sent).await?;
            upstream.shutdown().await
        });
        let (got, end) = read_until_end(&mut client).await;
        end.unwrap();
        assert!(got == stream, "{} bytes of {}", got.len(), stream.len());
        writer.await.unwrap().unwrap();
        assert_eq!(proxy.accepted(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_cuts_repeat_for_a_seed_and_stay_within_bounds() {
    bounded(LIMIT, async {
        const MIN: usize = 1;
        const MAX: usize = 3_000;
        const LEN: usize = 64 * 1024;
        let stream = pattern(LEN, 9);
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = server.local_addr().unwrap();
        let sent = stream.clone();
        // Streams LEN bytes on every connection, then closes it.
        let streamer = tokio::spawn(async move {
            loop {
                let (mut s, _) = server.accept().await.unwrap();
                let sent = sent.clone();
                tokio::spawn(async move {
                    let _ = s.write_all(&sent).await;
                });
            }
        });

        let run = |seed| {
            let stream = stream.clone();
            async move {
                let proxy = Proxy::start(target).await.unwrap();
                // Connections before the call are not cut.
                let mut first = TcpStream::connect(proxy.addr()).await.unwrap();
                let (got, _) = read_until_end(&mut first).await;
                assert_eq!(got.len(), LEN);

                proxy.random_cuts(seed, MIN, MAX);
                let mut counts = Vec::new();
                for _ in 0..12 {
                    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
                    let (got, end) = read_until_end(&mut client).await;
                    end.expect("EOF after the counted bytes");
                    assert!(got == stream[..got.len()], "a prefix of the stream");
                    counts.push(got.len());
                }

                proxy.no_random_cuts();
                let mut last = TcpStream::connect(proxy.addr()).await.unwrap();
                let (got, _) = read_until_end(&mut last).await;
                assert_eq!(got.len(), LEN, "random cuts are off");
                counts
            }
        };

        let a = run(42).await;
        assert!(a.iter().all(|n| (MIN..=MAX).contains(n)), "{a:?}");
        assert!(a.iter().any(|&n| n != a[0]), "{a:?} vary");
        assert_eq!(a, run(42).await, "the same seed, the same cuts");
        assert_ne!(a, run(43).await, "another seed, other cuts");
        streamer.abort();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_delivers_nothing_and_closes_nothing_until_cut_all() {
    bounded(LIMIT, async {
        let (server, proxy) = setup().await;
        let (mut client, mut upstream) = pair(&server, &proxy).await;
        proxy.stall();
        // Stalled is final: a count does not restart it.
        proxy.cut_after(1);

        client.write_all(b"up").await.unwrap();
        upstream.write_all(b"down").await.unwrap();
        let mut cbuf = [0; 16];
        let mut ubuf = [0; 16];
        let (c, u) = tokio::join!(
            tokio::time::timeout(QUIET, client.read(&mut cbuf)),
            tokio::time::timeout(QUIET, upstream.read(&mut ubuf)),
        );
        assert!(c.is_err(), "the client read {c:?}");
        assert!(u.is_err(), "the server read {u:?}");
        assert_eq!(proxy.connections(), 1);

        // Only the connections of its time are stalled.
        let _open = assert_forwards(&server, &proxy).await;
        assert_eq!(proxy.connections(), 2);

        proxy.cut_all();
        assert_ends(&mut client, "the stalled client")
            .await
            .expect_err("a reset");
        assert_ends(&mut upstream, "the stalled server")
            .await
            .expect_err("a reset");
        wait_for_connections(&proxy, 0).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_proxy_ends_everything() {
    bounded(LIMIT, async {
        let (server, proxy) = setup().await;
        let addr = proxy.addr();
        // One closing after a counted cut (the proxy waits for its client to close), one
        // stalled, one forwarding.
        let (mut c3, mut u3) = pair(&server, &proxy).await;
        proxy.cut_after(0);
        assert_ends(&mut c3, "counted client").await.expect("EOF");
        assert_ends(&mut u3, "counted server")
            .await
            .expect_err("a reset");
        let (mut c1, mut u1) = pair(&server, &proxy).await;
        proxy.stall();
        let (mut c2, mut u2) = pair(&server, &proxy).await;
        assert_eq!((proxy.accepted(), proxy.connections()), (3, 2));

        drop(proxy);
        for (stream, what) in [
            (&mut c1, "stalled client"),
            (&mut u1, "stalled server"),
            (&mut c2, "client"),
            (&mut u2, "server"),
        ] {
            let _ = assert_ends(stream, what).await;
        }
        // The counted client's socket is gone too: its writes fail once the reset is back.
        let deadline = tokio::time::Instant::now() + STEP;
        while c3.write_all(b"y").await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the counted socket stays"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        wait_for("the listener to close", || async {
            TcpStream::connect(addr).await.is_err()
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_refused_target_resets_the_client_and_other_targets_are_refused() {
    bounded(LIMIT, async {
        // Bound, not listening: connects are refused, and the port stays taken (a port
        // merely free could be reused, or even self-connected to, under load).
        let holder = tokio::net::TcpSocket::new_v4().unwrap();
        holder.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let target = holder.local_addr().unwrap();
        let proxy = Proxy::start(target).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        let _ = assert_ends(&mut client, "client").await;
        assert_eq!(proxy.accepted(), 1);
        wait_for_connections(&proxy, 0).await;

        let far = "192.0.2.1:80".parse().unwrap();
        let err = Proxy::start(far).await.expect_err("not loopback");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    })
    .await;
}
