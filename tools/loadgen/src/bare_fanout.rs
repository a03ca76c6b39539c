//! `bare-fanout`: a framework-free room server to compare longlink's fan-out with, in the
//! shape of tokio's chat example: each connection has a reader task and a writer task fed by
//! an unbounded channel; a room message is encoded once and its bytes sent to every member's
//! channel. TCP (2-byte big-endian length prefix) and JSON only, and just enough of the chat
//! protocol for `fanout`: login (any token is taken), watch a room, say something to it,
//! heartbeat.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::bare::accept_until;
use crate::{BareFanoutArgs, MAX_FRAMES_PER_CONN, millis};

/// A member's outgoing channel, by connection id.
type Room = HashMap<u64, mpsc::UnboundedSender<Bytes>>;

struct Rooms {
    rooms: Mutex<HashMap<u64, Room>>,
    /// Messages queued to members, for the summary.
    delivered: AtomicU64,
}

pub(crate) async fn bare_fanout(args: BareFanoutArgs) -> Result<()> {
    let BareFanoutArgs { addr, duration } = args;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    eprintln!("bare-fanout: listening on {}", listener.local_addr()?);
    let rooms = Arc::new(Rooms {
        rooms: Mutex::new(HashMap::new()),
        delivered: AtomicU64::new(0),
    });
    let (accepted, secs) = accept_until(listener, duration, "bare-fanout", |stream, n| {
        serve(stream, n, Arc::clone(&rooms))
    })
    .await;
    let delivered = rooms.delivered.load(Ordering::Relaxed);
    eprintln!(
        "bare-fanout: stopped after {secs:.1} s; {accepted} connections, {delivered} messages delivered"
    );
    print_result!("mode": "bare-fanout", "addr": addr.to_string(), "run_s": millis(secs),
        "accepted": accepted, "delivered": delivered);
    Ok(())
}

/// `| len u16 BE | payload |`.
fn frame(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + payload.len());
    out.put_u16(payload.len() as u16);
    out.put_slice(payload);
    out.freeze()
}

async fn read_frame(r: &mut BufReader<OwnedReadHalf>) -> Option<Vec<u8>> {
    let len = r.read_u16().await.ok()? as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.ok()?;
    Some(payload)
}

/// One connection: its writer task drains the channel (one write per message, as tokio's
/// chat example does); the reader answers and broadcasts.
async fn serve(stream: TcpStream, id: u64, rooms: Arc<Rooms>) {
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if w.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut r = BufReader::new(r);
    let mut watching = 0u64;
    for _ in 0..MAX_FRAMES_PER_CONN {
        let Some(payload) = read_frame(&mut r).await else {
            break;
        };
        let Ok(serde_json::Value::Object(msg)) = serde_json::from_slice(&payload) else {
            break;
        };
        let Some((name, body)) = msg.into_iter().next() else {
            break;
        };
        let reply = match name.as_str() {
            "C2S_UserHeartBeat" => serde_json::json!({"C2S_UserHeartBeat": {"ptime": 0}}),
            "C2S_UserLogin" => serde_json::json!({"S2C_UserLogin": {"ret": 1, "uid": id}}),
            "C2S_UpdateWatchRoom" => {
                let room_id = body["room_id"].as_u64().unwrap_or(0);
                let mut all = rooms.rooms.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(old) = all.get_mut(&watching) {
                    old.remove(&id);
                }
                watching = room_id;
                let room = all.entry(room_id).or_default();
                room.insert(id, tx.clone());
                serde_json::json!({"S2C_UpdateWatchRoom": {"room_id": room_id, "online": room.len()}})
            }
            "C2S_Message" => {
                let room_id = body["room_id"].as_u64().unwrap_or(0);
                let out = serde_json::json!({"S2C_Message": {"room_id": room_id, "from_uid": id,
                    "to_uid": 0, "text": body["text"], "ts": 0}});
                let bytes = frame(out.to_string().as_bytes());
                let all = rooms.rooms.lock().unwrap_or_else(|p| p.into_inner());
                let members = all.get(&room_id);
                let mut sent = 0;
                for member in members.into_iter().flat_map(|m| m.values()) {
                    sent += u64::from(member.send(bytes.clone()).is_ok());
                }
                if !members.is_some_and(|m| m.contains_key(&id)) {
                    let _ = tx.send(bytes);
                }
                rooms.delivered.fetch_add(sent, Ordering::Relaxed);
                continue;
            }
            _ => continue,
        };
        let _ = tx.send(frame(reply.to_string().as_bytes()));
    }
    if let Some(room) = rooms
        .rooms
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(&watching)
    {
        room.remove(&id);
    }
    drop(tx);
    let _ = writer.await;
}
