//! A minimal HTTP/1.1 server for two paths: `GET /metrics` and `GET /healthz`. One request
//! per connection (`Connection: close`), bounded in size and time.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Shared;

/// Largest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request and read the answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Most requests answered at once; more wait in the backlog.
const MAX_CONCURRENT: usize = 32;

pub(super) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            _ = token.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        let token = token.clone();
        tracker.spawn(async move {
            let _permit = permit;
            tokio::select! {
                _ = token.cancelled() => {}
                _ = tokio::time::timeout(TIMEOUT, answer(stream, &shared)) => {}
            }
        });
    }
}

/// Reads the request head, then answers it.
async fn answer(mut stream: TcpStream, shared: &Shared) {
    let mut buf = Vec::with_capacity(1024);
    let (method, path) = loop {
        let mut chunk = [0u8; 1024];
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                break (
                    req.method.unwrap_or("").to_owned(),
                    req.path.unwrap_or("").to_owned(),
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => continue,
            Ok(httparse::Status::Partial) => {
                respond(&mut stream, "431 Request Header Fields Too Large", "", "").await;
                return;
            }
            Err(_) => {
                respond(
                    &mut stream,
                    "400 Bad Request",
                    "text/plain",
                    "bad request\n",
                )
                .await;
                return;
            }
        }
    };
    let path = path.split('?').next().unwrap_or("");
    if method != "GET" {
        respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n",
        )
        .await;
        return;
    }
    let (status, kind, body) = match path {
        "/metrics" => {
            shared.sample_mailboxes();
            (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                crate::metrics::render().unwrap_or_default(),
            )
        }
        "/healthz" if shared.healthy() => ("200 OK", "text/plain", "ok\n".to_owned()),
        "/healthz" => (
            "503 Service Unavailable",
            "text/plain",
            "draining\n".to_owned(),
        ),
        _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
    };
    respond(&mut stream, status, kind, &body).await;
}

async fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &str) {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    if !kind.is_empty() {
        out.push_str(&format!("Content-Type: {kind}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    out.push_str(body);
    if stream.write_all(out.as_bytes()).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}
