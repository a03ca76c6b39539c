//! The Rust client (`longlink-client`) against the real chat server: heartbeat, token login
//! and a room message round trip over TCP and WebSocket, in JSON and protobuf, and over TLS
//! (TCP over TLS and wss) with a certificate made at test time; split halves; errors that
//! leave the connection usable and errors that do not.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::client::{chat_messages, encoding};
use common::{Enc, TEST_TIMEOUT, TIMEOUT, TestServer, assert_near_now, bounded, now_unix, token};
use longlink_chat::msg::{
    C2sMessage, C2sUpdateWatchRoom, C2sUserHeartBeat, C2sUserLogin, S2cMessage, S2cUpdateWatchRoom,
    S2cUserLogin,
};
use longlink_client::{Client, ClientConfig, EncodeError, Error, TlsConfig, Transport};

fn config(server: &TestServer, transport: Transport) -> ClientConfig {
    let addr = match transport {
        Transport::Tcp => server.tcp,
        Transport::Ws => server.ws,
    };
    ClientConfig {
        addr: addr.to_string(),
        transport,
        encoding: encoding(server.enc),
        ..ClientConfig::default()
    }
}

async fn connect(config: ClientConfig) -> Client {
    let what = format!("{:?} to {}", config.transport, config.addr);
    tokio::time::timeout(TIMEOUT, Client::connect(config, chat_messages()))
        .await
        .unwrap_or_else(|_| panic!("connecting {what} timed out"))
        .unwrap_or_else(|e| panic!("connecting {what}: {e}"))
}

/// `recv_as` within [`TIMEOUT`].
async fn expect<T: 'static>(client: &mut Client) -> T {
    tokio::time::timeout(TIMEOUT, common::client::recv_skipping::<T>(client))
        .await
        .unwrap_or_else(|_| panic!("{client:?}: nothing within {TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{client:?}: {e}"))
}

async fn heartbeat(client: &mut Client) {
    client
        .send(&C2sUserHeartBeat { ptime: now_unix() })
        .await
        .expect("send heartbeat");
    let answer: C2sUserHeartBeat = expect(client).await;
    assert_near_now(answer.ptime, "heartbeat answer");
}

async fn login(client: &mut Client, uid: u64) {
    client
        .send(&C2sUserLogin {
            token: token(uid),
            login_plat: 1,
        })
        .await
        .expect("send login");
    let answer: S2cUserLogin = expect(client).await;
    assert_eq!(
        (answer.ret, answer.uid),
        (1, uid),
        "login refused: {answer:?}"
    );
}

async fn watch(client: &mut Client, room: u64) -> u32 {
    client
        .send(&C2sUpdateWatchRoom { room_id: room })
        .await
        .expect("send watch");
    let answer: S2cUpdateWatchRoom = expect(client).await;
    assert_eq!(answer.room_id, room);
    answer.online
}

/// Two clients over `transport`: heartbeat, login, watch room 7, one says something, both
/// receive it (the sender too); then a clean close.
async fn round_trip(server: &TestServer, make: impl Fn(Transport) -> ClientConfig) {
    for transport in [Transport::Tcp, Transport::Ws] {
        let mut a = connect(make(transport)).await;
        let mut b = connect(make(transport)).await;
        heartbeat(&mut a).await;
        let (uid_a, uid_b) = match transport {
            Transport::Tcp => (101, 102),
            Transport::Ws => (201, 202),
        };
        login(&mut a, uid_a).await;
        login(&mut b, uid_b).await;
        heartbeat(&mut b).await;
        let room = uid_a; // one room per transport
        assert_eq!(watch(&mut a, room).await, 1);
        assert_eq!(watch(&mut b, room).await, 2);
        let text = format!("hello over {transport} in {:?}", server.enc);
        a.send(&C2sMessage {
            room_id: room,
            to_uid: 0,
            text: text.clone(),
        })
        .await
        .expect("say");
        for c in [&mut a, &mut b] {
            let m: S2cMessage = expect(c).await;
            assert_eq!(
                (m.room_id, m.from_uid, m.text.as_str()),
                (room, uid_a, text.as_str())
            );
            assert_near_now(m.ts, "S2C_Message.ts");
        }
        a.close().await.expect("close a");
        b.close().await.expect("close b");
    }
}

#[tokio::test]
async fn json_over_tcp_and_ws() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start(Enc::Json).await;
        round_trip(&server, |t| config(&server, t)).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn protobuf_over_tcp_and_ws() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start(Enc::Protobuf).await;
        round_trip(&server, |t| config(&server, t)).await;
        server.shutdown().await;
    })
    .await;
}

/// A self-signed certificate for "localhost", written to a fresh directory.
struct Cert {
    dir: PathBuf,
    pem: String,
}

impl Cert {
    fn new(tag: &str) -> Cert {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("generate a certificate");
        let dir =
            std::env::temp_dir().join(format!("longlink-client-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("cert.pem"), made.cert.pem()).expect("write cert");
        std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).expect("write key");
        Cert {
            dir,
            pem: made.cert.pem(),
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn tls_round_trip(enc: Enc, tag: &str) {
    let cert = Cert::new(tag);
    let server = TestServer::start_with(enc, |c| {
        c.gate.cert_file = cert.file("cert.pem");
        c.gate.key_file = cert.file("key.pem");
    })
    .await;
    let tls = TlsConfig::from_root_pem(&cert.pem)
        .expect("trust the test certificate")
        .with_server_name("localhost");
    round_trip(&server, |t| config(&server, t).with_tls(tls.clone())).await;

    // The file form, too, and a client without the root is refused.
    let from_file = TlsConfig::from_root_pem_file(cert.file("cert.pem"))
        .expect("read the certificate file")
        .with_server_name("localhost");
    let mut c = connect(config(&server, Transport::Ws).with_tls(from_file)).await;
    heartbeat(&mut c).await;
    let other = Cert::new(&format!("{tag}-other"));
    let wrong = TlsConfig::from_root_pem(&other.pem)
        .expect("parse")
        .with_server_name("localhost");
    let refused = Client::connect(
        config(&server, Transport::Tcp).with_tls(wrong),
        chat_messages(),
    )
    .await;
    assert!(refused.is_err(), "an untrusted certificate was accepted");
    server.shutdown().await;
}

#[tokio::test]
async fn json_over_tls_tcp_and_wss() {
    bounded(TEST_TIMEOUT, tls_round_trip(Enc::Json, "json")).await;
}

#[tokio::test]
async fn protobuf_over_tls_tcp_and_wss() {
    bounded(TEST_TIMEOUT, tls_round_trip(Enc::Protobuf, "pb")).await;
}

/// A reader task gets room messages while the writer half keeps sending.
#[tokio::test]
async fn split_halves_read_while_writing() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start(Enc::Protobuf).await;
        for transport in [Transport::Tcp, Transport::Ws] {
            let mut c = connect(config(&server, transport)).await;
            login(&mut c, 300 + transport as u64).await;
            watch(&mut c, 30).await;
            let (mut reader, mut writer) = c.split();
            const N: usize = 50;
            let read = tokio::spawn(async move {
                let mut texts = Vec::new();
                while texts.len() < N {
                    let msg = tokio::time::timeout(TIMEOUT, reader.recv())
                        .await
                        .expect("a message in time")
                        .expect("a message");
                    let m: S2cMessage = msg.downcast().expect("S2C_Message");
                    texts.push(m.text);
                }
                (reader, texts)
            });
            for i in 0..N {
                writer
                    .send(&C2sMessage {
                        room_id: 30,
                        to_uid: 0,
                        text: format!("m{i}"),
                    })
                    .await
                    .expect("send");
            }
            let (reader, texts) = read.await.expect("reader task");
            let want: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
            assert_eq!(texts, want, "{transport}: in order, all of them");
            let mut c = Client::unsplit(reader, writer);
            heartbeat(&mut c).await;
            c.close().await.expect("close");
        }
        server.shutdown().await;
    })
    .await;
}

/// Errors that keep the connection (an unexpected message, a payload over the maximum, an
/// unregistered type) and errors that end it (a refused login: the server closes).
#[tokio::test]
async fn errors_and_closes() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start(Enc::Json).await;
        for transport in [Transport::Tcp, Transport::Ws] {
            let mut c = connect(config(&server, transport)).await;
            // Not logged in: the server answers S2C_Error, recv_as for another type says so.
            c.send(&C2sUpdateWatchRoom { room_id: 1 })
                .await
                .expect("send");
            match c.recv_as::<S2cUpdateWatchRoom>().await {
                Err(Error::Unexpected { expected, got }) => {
                    assert_eq!(
                        (expected.as_str(), got.as_str()),
                        ("S2C_UpdateWatchRoom", "S2C_Error")
                    );
                }
                other => panic!("expected Unexpected, got {other:?}"),
            }
            // Too long for max_msg_len: refused locally, nothing sent.
            let text = "x".repeat(9000);
            let e = c
                .send(&C2sMessage {
                    room_id: 1,
                    to_uid: 0,
                    text,
                })
                .await
                .expect_err("over max_msg_len");
            assert!(matches!(e, Error::BadLength { max: 8192, .. }), "{e}");
            #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
            struct NotRegistered {}
            let e = c.send(&NotRegistered {}).await.expect_err("not registered");
            assert!(
                matches!(e, Error::Encode(EncodeError::NotRegistered(_))),
                "{e}"
            );
            assert!(!e.is_closed());
            heartbeat(&mut c).await; // still usable
            // A raw payload the client does not know: recv_raw gets it as it came.
            c.send_raw(&br#"{"C2S_UserHeartBeat":{"ptime":5}}"#[..])
                .await
                .expect("send raw");
            let raw = tokio::time::timeout(TIMEOUT, c.recv_raw())
                .await
                .expect("in time")
                .expect("raw payload");
            assert!(raw.starts_with(br#"{"C2S_UserHeartBeat":"#), "{raw:?}");
            // A bad token: ret 0, then the server closes the connection.
            c.send(&C2sUserLogin {
                token: "not a token".into(),
                login_plat: 1,
            })
            .await
            .expect("send login");
            let answer: S2cUserLogin = expect(&mut c).await;
            assert_eq!(answer.ret, 0);
            let end = tokio::time::timeout(TIMEOUT, async {
                loop {
                    match c.recv().await {
                        Ok(_) => continue, // a kick may come first
                        Err(e) => return e,
                    }
                }
            })
            .await
            .expect("closed in time");
            assert!(end.is_closed(), "{transport}: {end}");
        }
        // Nothing listens: connecting fails (fast, not a timeout).
        let addr = longlink_testkit::free_addr();
        let mut cfg = ClientConfig::tcp(addr.to_string());
        cfg.connect_timeout = Duration::from_secs(2);
        assert!(Client::connect(cfg, chat_messages()).await.is_err());
        server.shutdown().await;
    })
    .await;
}
