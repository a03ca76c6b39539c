//! A resumable client written from the protocol's table (`crates/longlink-wire/src/resume.md`),
//! not with the library's code: raw TCP frames or WebSocket binary messages, JSON or protobuf,
//! the `LL_` messages encoded by hand.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::SinkExt;
use longlink::Encoding;
use longlink_testkit::ws::{Ws, next_data, ws_connect};
use longlink_testkit::{Framing, STEP, envelope};
use prost::Message as _;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::common::{Echo, ID_ECHO, Wire};

#[derive(Clone, PartialEq, prost::Message)]
struct PbSession {
    #[prost(string, tag = "1")]
    token: String,
    #[prost(uint32, tag = "2")]
    window_s: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PbTokenSeq {
    #[prost(string, tag = "1")]
    token: String,
    #[prost(uint64, tag = "2")]
    last_seq: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PbReason {
    #[prost(string, tag = "1")]
    reason: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PbMove {
    #[prost(uint32, tag = "1")]
    after_ms: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PbSeq {
    #[prost(uint64, tag = "1")]
    seq: u64,
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Session {
        token: String,
        window_s: u32,
    },
    Resumed {
        token: String,
        last_seq: u64,
    },
    Refused(String),
    Ack(u64),
    /// `LL_Move{after_ms}`: reconnect elsewhere after this long.
    Move(u32),
    /// An application message: an `Echo`'s text.
    Echo(String),
}

/// TCP or WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Tcp,
    Ws,
}

/// One socket, raw.
pub enum Link {
    Tcp(TcpStream, Vec<u8>),
    Ws(Box<Ws>),
    /// No socket (dropped by the test).
    Gone,
}

impl Link {
    pub async fn connect(via: Via, addr: SocketAddr) -> Link {
        match via {
            Via::Tcp => {
                let s = TcpStream::connect(addr).await.expect("connect");
                s.set_nodelay(true).unwrap();
                Link::Tcp(s, Vec::new())
            }
            Via::Ws => Link::Ws(Box::new(ws_connect(addr, "/").await.expect("ws connect"))),
        }
    }

    /// Sends one payload; false if the socket is gone.
    pub async fn send(&mut self, payload: Vec<u8>) -> bool {
        match self {
            Link::Tcp(s, _) => s
                .write_all(&Framing::default().frame(&payload))
                .await
                .is_ok(),
            Link::Ws(ws) => ws.send(WsMessage::binary(payload)).await.is_ok(),
            Link::Gone => false,
        }
    }

    /// The next payload, `None` when the socket ended (or nothing came within `wait`).
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait;
        match self {
            Link::Tcp(s, buf) => loop {
                if let Some(p) = Framing::default().take(buf) {
                    return Some(p);
                }
                let mut chunk = [0u8; 16 * 1024];
                match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                    Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                }
            },
            Link::Ws(ws) => match next_data(ws.as_mut(), deadline).await {
                Some(Ok(WsMessage::Binary(b))) => Some(b.to_vec()),
                _ => None,
            },
            Link::Gone => None,
        }
    }
}

/// The `LL_` messages and the test's `Echo`, in one encoding.
#[derive(Debug, Clone, Copy)]
pub struct Proto(pub Encoding);

impl Proto {
    fn ll(&self, name: &str, id: u16, json: serde_json::Value, pb: Vec<u8>) -> Vec<u8> {
        match self.0 {
            Encoding::Json => envelope::json(name, json),
            Encoding::Protobuf => envelope::protobuf(id, &pb),
        }
    }

    pub fn session_start(&self) -> Vec<u8> {
        self.ll("LL_SessionStart", 65530, json!({}), Vec::new())
    }

    pub fn resume(&self, token: &str, last_seq: u64) -> Vec<u8> {
        let pb = PbTokenSeq {
            token: token.into(),
            last_seq,
        };
        self.ll(
            "LL_Resume",
            65532,
            json!({"token": token, "last_seq": last_seq}),
            pb.encode_to_vec(),
        )
    }

    pub fn ack(&self, seq: u64) -> Vec<u8> {
        self.ll(
            "LL_Ack",
            65535,
            json!({"seq": seq}),
            PbSeq { seq }.encode_to_vec(),
        )
    }

    pub fn echo(&self, text: &str) -> Vec<u8> {
        Wire(self.0).echo(text)
    }

    /// A client-to-server `LL_` message that only the server may send.
    pub fn forbidden_session(&self) -> Vec<u8> {
        let pb = PbSession {
            token: "x".into(),
            window_s: 1,
        };
        self.ll(
            "LL_Session",
            65531,
            json!({"token": "x", "window_s": 1}),
            pb.encode_to_vec(),
        )
    }

    pub fn decode(&self, payload: &[u8]) -> Msg {
        match self.0 {
            Encoding::Json => {
                let (name, body) = envelope::open_json(payload).unwrap_or_else(|e| panic!("{e}"));
                let s = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
                let n = |k: &str| body[k].as_u64().unwrap_or_default();
                match name.as_str() {
                    "LL_Session" => Msg::Session {
                        token: s("token"),
                        window_s: n("window_s") as u32,
                    },
                    "LL_Resumed" => Msg::Resumed {
                        token: s("token"),
                        last_seq: n("last_seq"),
                    },
                    "LL_ResumeRefused" => Msg::Refused(s("reason")),
                    "LL_Ack" => Msg::Ack(n("seq")),
                    "LL_Move" => Msg::Move(n("after_ms") as u32),
                    "Echo" => Msg::Echo(s("text")),
                    other => panic!("unexpected message {other}: {body}"),
                }
            }
            Encoding::Protobuf => {
                let (id, body) = envelope::open_protobuf(payload).unwrap_or_else(|e| panic!("{e}"));
                match id {
                    65531 => {
                        let m = PbSession::decode(body).unwrap();
                        Msg::Session {
                            token: m.token,
                            window_s: m.window_s,
                        }
                    }
                    65533 => {
                        let m = PbTokenSeq::decode(body).unwrap();
                        Msg::Resumed {
                            token: m.token,
                            last_seq: m.last_seq,
                        }
                    }
                    65534 => Msg::Refused(PbReason::decode(body).unwrap().reason),
                    65535 => Msg::Ack(PbSeq::decode(body).unwrap().seq),
                    65529 => Msg::Move(PbMove::decode(body).unwrap().after_ms),
                    ID_ECHO => Msg::Echo(Echo::decode(body).unwrap().text),
                    other => panic!("unexpected message id {other}"),
                }
            }
        }
    }
}

/// A resumable client: numbers what it receives, keeps what it sent until acknowledged,
/// resumes on a new socket.
pub struct Client {
    pub via: Via,
    pub proto: Proto,
    pub link: Link,
    pub token: String,
    /// Application messages received (the last number).
    pub received: u64,
    /// Application messages sent since the session started, and the ones not yet
    /// acknowledged (`(number, payload)`).
    pub sent: u64,
    pub unacked: Vec<(u64, Vec<u8>)>,
    /// Every application message received, in order.
    pub texts: Vec<String>,
    /// Acknowledge every this many messages received.
    pub ack_every: u64,
}

impl Client {
    /// Connects and starts a session; panics unless `LL_Session` comes.
    pub async fn start(via: Via, addr: SocketAddr, encoding: Encoding) -> Client {
        let proto = Proto(encoding);
        let mut link = Link::connect(via, addr).await;
        assert!(link.send(proto.session_start()).await);
        let payload = link.recv_within(STEP).await.expect("LL_Session");
        let Msg::Session { token, window_s } = proto.decode(&payload) else {
            panic!("expected LL_Session, got {:?}", proto.decode(&payload));
        };
        assert!(window_s > 0);
        Client {
            via,
            proto,
            link,
            token,
            received: 0,
            sent: 0,
            unacked: Vec::new(),
            texts: Vec::new(),
            ack_every: 32,
        }
    }

    /// Sends an application message (an `Echo`), kept until acknowledged.
    pub async fn send_echo(&mut self, text: &str) {
        let payload = self.proto.echo(text);
        self.sent += 1;
        self.unacked.push((self.sent, payload.clone()));
        let _ = self.link.send(payload).await;
    }

    /// The next message, handled as a resumable client does (numbering, acks); `None` when
    /// the socket ended or nothing came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Msg> {
        let payload = self.link.recv_within(wait).await?;
        let msg = self.proto.decode(&payload);
        match &msg {
            Msg::Echo(text) => {
                self.received += 1;
                self.texts.push(text.clone());
                if self.received.is_multiple_of(self.ack_every) {
                    let ack = self.proto.ack(self.received);
                    let _ = self.link.send(ack).await;
                }
            }
            Msg::Ack(seq) => self.unacked.retain(|(n, _)| n > seq),
            _ => {}
        }
        Some(msg)
    }

    /// Reads application messages until `n` have been received in all; `false` if the
    /// socket ended first.
    pub async fn read_until(&mut self, n: u64) -> bool {
        while self.received < n {
            if self.next(STEP).await.is_none() {
                return false;
            }
        }
        true
    }

    /// Resumes on a new socket to `addr`: `Ok(server's last_seq)` after `LL_Resumed` (and the
    /// kept messages resent), or `Err(reason)`.
    pub async fn resume(&mut self, addr: SocketAddr) -> Result<u64, String> {
        self.link = Link::connect(self.via, addr).await;
        let resume = self.proto.resume(&self.token, self.received);
        assert!(self.link.send(resume).await);
        loop {
            let payload = self
                .link
                .recv_within(STEP)
                .await
                .ok_or_else(|| "no answer to LL_Resume".to_owned())?;
            match self.proto.decode(&payload) {
                Msg::Resumed { token, last_seq } => {
                    self.token = token;
                    self.unacked.retain(|(n, _)| *n > last_seq);
                    for (_, p) in self.unacked.clone() {
                        let _ = self.link.send(p).await;
                    }
                    return Ok(last_seq);
                }
                Msg::Refused(reason) => return Err(reason),
                Msg::Ack(_) => {}
                other => panic!("unexpected answer to LL_Resume: {other:?}"),
            }
        }
    }
}
