//! `bare-echo`: a framework-free echo server to compare with, over TCP (bytes back as they
//! come) or WebSocket (tokio-tungstenite: each message back as a binary message).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

use crate::load::TransportArg;
use crate::{BareEchoArgs, IO_TIMEOUT, MAX_ACCEPTS, MAX_FRAMES_PER_CONN, millis};

pub(crate) async fn bare_echo(args: BareEchoArgs) -> Result<()> {
    let BareEchoArgs {
        addr,
        transport,
        duration,
    } = args;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    eprintln!(
        "bare-echo: listening on {} ({transport:?})",
        listener.local_addr()?
    );
    let bytes = Arc::new(AtomicU64::new(0));
    let (accepted, secs) = accept_until(listener, duration, "bare-echo", |stream, _| {
        let bytes = bytes.clone();
        async move {
            match transport {
                TransportArg::Tcp => echo_conn(stream, bytes).await,
                TransportArg::Ws => ws_echo_conn(stream, bytes).await,
            }
        }
    })
    .await;
    let echoed = bytes.load(Ordering::Relaxed);
    eprintln!(
        "bare-echo: stopped after {secs:.1} s; {accepted} connections, {echoed} bytes echoed"
    );
    print_result!("mode": "bare-echo", "addr": addr.to_string(),
        "transport": format!("{transport:?}").to_lowercase(), "run_s": millis(secs),
        "accepted": accepted, "bytes_echoed": echoed);
    Ok(())
}

/// Accepts on `listener` until `duration` seconds pass (or Ctrl-C), running `conn(stream, n)`
/// for the n-th connection on a task of its own (aborted at the end); returns how many were
/// accepted and the seconds it ran. `name` prefixes its messages. The bare servers share it.
pub(crate) async fn accept_until<F>(
    listener: TcpListener,
    duration: Option<u64>,
    name: &str,
    mut conn: impl FnMut(TcpStream, u64) -> F,
) -> (u64, f64)
where
    F: Future<Output = ()> + Send + 'static,
{
    let stop = async {
        match duration {
            Some(s) => sleep(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(stop, ctrl_c);
    let (mut accepted, mut conns) = (0u64, JoinSet::new());
    let started = Instant::now();
    for _ in 0..MAX_ACCEPTS {
        tokio::select! {
            _ = &mut stop => break,
            _ = &mut ctrl_c => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            res = listener.accept() => match res {
                Ok((stream, _)) => {
                    accepted += 1;
                    conns.spawn(conn(stream, accepted));
                }
                Err(e) => {
                    eprintln!("{name}: accept: {e}");
                    sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    conns.abort_all();
    (accepted, started.elapsed().as_secs_f64())
}

/// Writes back whatever it reads until EOF or an error.
async fn echo_conn(mut stream: TcpStream, bytes: Arc<AtomicU64>) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..MAX_FRAMES_PER_CONN {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
        bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Accepts a WebSocket and sends every text or binary message back as a binary message,
/// until a close, an error or EOF. Pings are answered by tungstenite.
async fn ws_echo_conn(stream: TcpStream, bytes: Arc<AtomicU64>) {
    let _ = stream.set_nodelay(true);
    let Ok(Ok(mut ws)) = timeout(IO_TIMEOUT, tokio_tungstenite::accept_async(stream)).await else {
        return;
    };
    for _ in 0..MAX_FRAMES_PER_CONN {
        let data = match ws.next().await {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Text(t))) => t.into(),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
            Some(Ok(_)) => continue,
        };
        let n = data.len() as u64;
        if ws.send(Message::Binary(data)).await.is_err() {
            return;
        }
        bytes.fetch_add(n, Ordering::Relaxed);
    }
}
