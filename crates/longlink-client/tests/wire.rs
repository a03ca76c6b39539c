//! The client's bytes on the wire against a bare TCP peer: the length prefix (1, 2, 4 bytes,
//! either byte order), the JSON and protobuf envelopes with DESIGN's golden bytes, and the
//! framing errors that end a connection.

use std::time::Duration;

use longlink_client::{Client, ClientConfig, DecodeError, Encoding, Error, Messages};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
struct Hello {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
struct Int32Value {
    #[prost(int32, tag = "1")]
    value: i32,
}

fn messages() -> Messages {
    let mut m = Messages::new();
    m.register::<Hello>()
        .and_then(|m| m.register::<Int32Value>())
        .expect("register");
    m
}

/// A client connected to a bare listener, and the server's end of the socket.
async fn pair(tweak: impl FnOnce(&mut ClientConfig)) -> (Client, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut config = ClientConfig::tcp(listener.local_addr().expect("addr").to_string());
    tweak(&mut config);
    let (client, accepted) = tokio::join!(Client::connect(config, messages()), listener.accept());
    (client.expect("connect"), accepted.expect("accept").0)
}

async fn read_n(peer: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    tokio::time::timeout(TIMEOUT, peer.read_exact(&mut buf))
        .await
        .expect("bytes in time")
        .expect("read");
    buf
}

async fn recv_raw(client: &mut Client) -> Result<bytes::Bytes, Error> {
    tokio::time::timeout(TIMEOUT, client.recv_raw())
        .await
        .expect("in time")
}

#[tokio::test]
async fn json_with_a_two_byte_big_endian_length() {
    let (mut client, mut peer) = pair(|_| {}).await;
    client.send(&Hello { name: "ann".into() }).await.unwrap();
    let payload = br#"{"Hello":{"name":"ann"}}"#;
    assert_eq!(read_n(&mut peer, 2).await, [0x00, payload.len() as u8]);
    assert_eq!(read_n(&mut peer, payload.len()).await, payload);

    peer.write_all(b"\x00\x17{\"Hello\":{\"name\":\"bo\"}}")
        .await
        .unwrap();
    let hello: Hello = client.recv_as().await.unwrap();
    assert_eq!(hello.name, "bo");
}

#[tokio::test]
async fn four_byte_little_endian_length() {
    let (mut client, mut peer) = pair(|c| {
        c.len_msg_len = 4;
        c.little_endian = true;
    })
    .await;
    client.send_raw(&b"hi"[..]).await.unwrap();
    assert_eq!(read_n(&mut peer, 6).await, [0x02, 0, 0, 0, 0x68, 0x69]);
    peer.write_all(&[1, 0, 0, 0, b'x']).await.unwrap();
    assert_eq!(&recv_raw(&mut client).await.unwrap()[..], b"x");
}

#[tokio::test]
async fn one_byte_length_caps_the_payload() {
    let (mut client, mut peer) = pair(|c| c.len_msg_len = 1).await;
    let e = client.send_raw(vec![b'a'; 256]).await.unwrap_err();
    assert!(matches!(e, Error::BadLength { len: 256, max: 255 }), "{e}");
    let e = client.send_raw(Vec::new()).await.unwrap_err();
    assert!(matches!(e, Error::BadLength { len: 0, .. }), "{e}");
    client.send_raw(vec![b'a'; 255]).await.unwrap();
    let got = read_n(&mut peer, 256).await;
    assert_eq!(got[0], 255);
}

#[tokio::test]
async fn protobuf_golden_bytes_both_id_orders() {
    for (id_le, id) in [(false, [0x00, 0x01]), (true, [0x01, 0x00])] {
        let (mut client, mut peer) = pair(|c| {
            c.encoding = Encoding::Protobuf;
            c.id_little_endian = id_le;
        })
        .await;
        client.send(&Int32Value { value: 150 }).await.unwrap();
        let mut want = vec![0x00, 0x05];
        want.extend_from_slice(&id);
        want.extend_from_slice(&[0x08, 0x96, 0x01]);
        assert_eq!(read_n(&mut peer, 7).await, want);
        let mut back = vec![0x00, 0x04];
        back.extend_from_slice(&id);
        back.extend_from_slice(&[0x08, 0x07]);
        peer.write_all(&back).await.unwrap();
        let msg = tokio::time::timeout(TIMEOUT, client.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((msg.name(), msg.id()), ("Int32Value", 1));
        assert_eq!(msg.downcast::<Int32Value>().unwrap().value, 7);
    }
}

#[tokio::test]
async fn an_unknown_message_keeps_the_connection() {
    let (mut client, mut peer) = pair(|_| {}).await;
    peer.write_all(b"\x00\x08{\"X\":{}}\x00\x15{\"Hello\":{\"name\":\"\"}}")
        .await
        .unwrap();
    let e = client.recv().await.unwrap_err();
    assert!(
        matches!(&e, Error::Decode(DecodeError::UnknownName(n)) if n == "X"),
        "{e}"
    );
    assert!(!e.is_closed());
    assert!(client.recv().await.unwrap().is::<Hello>());
}

#[tokio::test]
async fn framing_errors_end_the_connection() {
    // A frame over max_msg_len.
    let (mut client, mut peer) = pair(|c| c.max_msg_len = 16).await;
    peer.write_all(&[0x00, 0x20]).await.unwrap();
    let e = recv_raw(&mut client).await.unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
    assert!(e.is_closed());

    // A frame of length 0.
    let (mut client, mut peer) = pair(|_| {}).await;
    peer.write_all(&[0x00, 0x00]).await.unwrap();
    let e = recv_raw(&mut client).await.unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");

    // End of stream, inside a frame and between frames.
    let (mut client, mut peer) = pair(|_| {}).await;
    peer.write_all(&[0x00, 0x05, b'a']).await.unwrap();
    drop(peer);
    let e = recv_raw(&mut client).await.unwrap_err();
    assert!(
        matches!(&e, Error::Closed { code: None, reason } if reason.contains("inside")),
        "{e}"
    );
    let (mut client, peer) = pair(|_| {}).await;
    drop(peer);
    let e = recv_raw(&mut client).await.unwrap_err();
    assert!(matches!(e, Error::Closed { code: None, .. }), "{e}");
}

#[tokio::test]
async fn close_sends_a_fin_after_the_queued_frames() {
    let (mut client, mut peer) = pair(|_| {}).await;
    client.send_raw(&b"bye"[..]).await.unwrap();
    client.close().await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(TIMEOUT, peer.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all, b"\x00\x03bye");
}

#[tokio::test]
async fn bad_settings_and_connect_timeout() {
    let config = ClientConfig {
        len_msg_len: 3,
        ..ClientConfig::default()
    };
    let e = Client::connect(config, messages()).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");

    // A listener that never accepts the WebSocket handshake: the connect times out.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = ClientConfig::ws(listener.local_addr().unwrap().to_string());
    config.connect_timeout = Duration::from_millis(200);
    let e = Client::connect(config, messages()).await.unwrap_err();
    assert!(matches!(e, Error::ConnectTimeout(_)), "{e}");
}
