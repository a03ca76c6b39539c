//! What the resumable client's tests against a bare TCP peer share: a message type, leaf's
//! 2-byte big-endian length frames of JSON, and bounded waits.

use std::time::Duration;

use longlink_client::{Event, ResumableClient};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bound on one wait.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// The application message both sides exchange.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
pub(crate) struct Hello {
    #[prost(string, tag = "1")]
    pub(crate) name: String,
}

/// One JSON payload, read from a 2-byte big-endian length frame.
pub(crate) async fn read_json(peer: &mut TcpStream) -> Value {
    let read = async {
        let len = peer.read_u16().await.expect("a length");
        let mut buf = vec![0; usize::from(len)];
        peer.read_exact(&mut buf).await.expect("a payload");
        serde_json::from_slice(&buf).expect("json")
    };
    tokio::time::timeout(TIMEOUT, read).await.expect("in time")
}

/// One JSON payload in a 2-byte big-endian length frame.
pub(crate) async fn write_json(peer: &mut TcpStream, value: Value) {
    let payload = serde_json::to_vec(&value).unwrap();
    let mut frame = u16::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    frame.extend(payload);
    peer.write_all(&frame).await.expect("write");
}

/// The next connection to `listener`, within [`TIMEOUT`].
pub(crate) async fn accept(listener: &TcpListener) -> TcpStream {
    let accepted = tokio::time::timeout(TIMEOUT, listener.accept());
    accepted
        .await
        .expect("a connection in time")
        .expect("accept")
        .0
}

/// The client's next event, within [`TIMEOUT`].
pub(crate) async fn next(client: &mut ResumableClient) -> Event {
    let event = tokio::time::timeout(TIMEOUT, client.next()).await;
    event.expect("an event in time").expect("an event")
}
