//! TLS with rustls: TCP over TLS and wss with a client that verifies a certificate made at
//! test time; `tls_tcp = false` keeps TCP plain; a missing or bad file is a start-up error
//! naming the file; sockets silent before their ClientHello share `handshake_share`.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use futures_util::SinkExt;
use longlink::gate::GateError;
use longlink::{Encoding, Gate, GateConfig, Processor};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A self-signed certificate for "localhost", written to a fresh directory.
struct Cert {
    dir: PathBuf,
    cert_file: String,
    key_file: String,
    der: CertificateDer<'static>,
}

impl Cert {
    fn new(tag: &str) -> Cert {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("generate a certificate");
        let dir = std::env::temp_dir().join(format!("longlink-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cert_file = dir.join("cert.pem");
        let key_file = dir.join("key.pem");
        std::fs::write(&cert_file, made.cert.pem()).expect("write cert");
        std::fs::write(&key_file, made.signing_key.serialize_pem()).expect("write key");
        Cert {
            dir,
            cert_file: cert_file.display().to_string(),
            key_file: key_file.display().to_string(),
            der: made.cert.der().clone(),
        }
    }

    fn config(&self) -> GateConfig {
        GateConfig {
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            ..config(Encoding::Json)
        }
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).expect("trust the test cert");
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    async fn connect(&self, addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
        self.connect_after(addr, b"").await
    }

    /// [`connect`](Self::connect), with `first` (a PROXY header) sent before the TLS
    /// handshake, in the same write as its ClientHello's first bytes may follow.
    async fn connect_after(
        &self,
        addr: SocketAddr,
        first: &[u8],
    ) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(first).await.expect("write the header");
        let name = ServerName::try_from("localhost").expect("name");
        self.connector()
            .connect(name, tcp)
            .await
            .expect("TLS handshake with a verified certificate")
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn tcp_over_tls_and_wss_with_a_verified_certificate() {
    bounded(TEST_TIMEOUT, async {
        let cert = Cert::new("both");
        let server = start(cert.config()).await;
        let wire = Wire(Encoding::Json);
        let framing = Framing::default();

        // TCP over TLS: the same frames inside.
        let mut tls = cert.connect(server.tcp).await;
        tls.write_all(&framing.frame(&wire.echo("over tls")))
            .await
            .expect("write");
        let mut header = [0u8; 2];
        tls.read_exact(&mut header).await.expect("header");
        let mut payload = vec![0; u16::from_be_bytes(header) as usize];
        tls.read_exact(&mut payload).await.expect("payload");
        assert_eq!(wire.decode_echo(&payload), "over tls");

        // wss: the WebSocket handshake inside TLS.
        let stream = cert.connect(server.ws).await;
        let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/any", stream)
            .await
            .expect("wss upgrade");
        ws.send(WsMessage::binary(wire.echo("over wss")))
            .await
            .expect("send");
        let reply = loop {
            match futures_util::StreamExt::next(&mut ws).await {
                Some(Ok(WsMessage::Binary(b))) => break b,
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(wire.decode_echo(&reply), "over wss");

        // A plain client on a TLS port gets nothing useful and is closed.
        let mut plain = server.tcp_client().await;
        plain.send(&wire.echo("plain")).await;
        assert!(plain.try_recv().await.is_err());
        server.shutdown().await;
    })
    .await;
}

/// With `proxy_protocol` on, the PROXY header comes before TLS on both listeners (as
/// HAProxy and nginx send it in TCP mode), and its source is the connection's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_header_comes_before_tls_on_both_listeners() {
    bounded(TEST_TIMEOUT, async {
        let cert = Cert::new("proxied");
        let server = start(GateConfig {
            proxy_protocol: true,
            ..cert.config()
        })
        .await;
        let wire = Wire(Encoding::Json);
        let framing = Framing::default();
        let header = |ip: &str, port: u16| format!("PROXY TCP4 {ip} 127.0.0.1 {port} 443\r\n");
        let mut tls = cert
            .connect_after(server.tcp, header("203.0.113.21", 2100).as_bytes())
            .await;
        tls.write_all(&framing.frame(&wire.echo("proxied tls")))
            .await
            .expect("write");
        let mut len = [0u8; 2];
        tls.read_exact(&mut len).await.expect("header");
        let mut payload = vec![0; u16::from_be_bytes(len) as usize];
        tls.read_exact(&mut payload).await.expect("payload");
        assert_eq!(wire.decode_echo(&payload), "proxied tls");

        let stream = cert
            .connect_after(server.ws, header("203.0.113.22", 2200).as_bytes())
            .await;
        let (_ws, _) = tokio_tungstenite::client_async("wss://localhost/any", stream)
            .await
            .expect("wss upgrade");
        server.wait_connections(2).await;
        wait_for("both announced", || async {
            server.gate.agents().len() == 2
        })
        .await;
        let mut remotes: Vec<String> = server
            .gate
            .agents()
            .iter()
            .map(|a| a.remote_addr().to_string())
            .collect();
        remotes.sort();
        assert_eq!(remotes, ["203.0.113.21:2100", "203.0.113.22:2200"]);
        // TLS without the header first: closed.
        let mut bare = TcpStream::connect(server.tcp).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let _ = bare.write_all(b"").await;
        assert!(cert.connector().connect(name, bare).await.is_err());
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn tls_tcp_false_keeps_tcp_plain_while_ws_is_wss() {
    bounded(TEST_TIMEOUT, async {
        let cert = Cert::new("ws-only");
        let server = start(GateConfig {
            tls_tcp: false,
            ..cert.config()
        })
        .await;
        let mut plain = server.tcp_client().await;
        assert_eq!(plain.echo("plain tcp").await, "plain tcp");
        let stream = cert.connect(server.ws).await;
        let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/", stream)
            .await
            .expect("wss upgrade");
        ws.send(WsMessage::binary(Wire(Encoding::Json).echo("wss")))
            .await
            .expect("send");
        server.shutdown().await;
    })
    .await;
}

/// Whether the server closed `s` within `within` (a silent socket gets no bytes).
async fn closed_within(s: &mut TcpStream, within: std::time::Duration) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(within, s.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("a silent socket was sent bytes"),
        Err(_) => false,
    }
}

#[tokio::test]
async fn silent_sockets_on_both_tls_listeners_share_the_handshake_places() {
    bounded(TEST_TIMEOUT, async {
        let cert = Cert::new("share");
        // Two places for handshakes (25 % of 8), across both listeners.
        let server = start(GateConfig {
            max_conn_num: 8,
            handshake_share: 25,
            ..cert.config()
        })
        .await;
        let prompt = std::time::Duration::from_secs(2);
        let mut a = TcpStream::connect(server.tcp).await.expect("connect");
        server.wait_connections(1).await;
        let mut b = TcpStream::connect(server.ws).await.expect("connect");
        server.wait_connections(2).await;
        // A third pushes out the oldest at once.
        let mut c = TcpStream::connect(server.tcp).await.expect("connect");
        assert!(closed_within(&mut a, prompt).await, "the oldest is closed");
        // A real client takes the next one's place, and is served.
        let wire = Wire(Encoding::Json);
        let mut tls = cert.connect(server.tcp).await;
        assert!(
            closed_within(&mut b, prompt).await,
            "the next oldest is closed"
        );
        tls.write_all(&Framing::default().frame(&wire.echo("in")))
            .await
            .expect("write");
        let mut reply = [0u8; 2];
        tls.read_exact(&mut reply).await.expect("a reply");
        // Its handshake place was given back: c keeps its own.
        let mut d = TcpStream::connect(server.ws).await.expect("connect");
        server.wait_connections(3).await;
        assert!(!closed_within(&mut c, std::time::Duration::from_millis(200)).await);
        assert!(!closed_within(&mut d, std::time::Duration::from_millis(20)).await);
        server.shutdown().await;
    })
    .await;
}

async fn bind_err(config: GateConfig) -> String {
    match Gate::builder(config, Processor::new(Encoding::Json))
        .bind()
        .await
    {
        Ok(_) => panic!("bind should fail"),
        Err(e) => {
            assert!(
                matches!(e, GateError::Tls { .. } | GateError::Config(_)),
                "{e}"
            );
            e.to_string()
        }
    }
}

#[tokio::test]
async fn a_missing_or_bad_certificate_is_a_start_up_error_naming_the_file() {
    let cert = Cert::new("bad");
    let missing = bind_err(GateConfig {
        cert_file: "/nonexistent/cert.pem".into(),
        ..cert.config()
    })
    .await;
    assert!(missing.contains("/nonexistent/cert.pem"), "{missing}");

    let garbage = cert.dir.join("garbage.pem");
    std::fs::write(&garbage, "not a key").expect("write");
    let garbage = garbage.display().to_string();
    let bad_key = bind_err(GateConfig {
        key_file: garbage.clone(),
        ..cert.config()
    })
    .await;
    assert!(bad_key.contains(&garbage), "{bad_key}");

    let half = bind_err(GateConfig {
        key_file: String::new(),
        ..cert.config()
    })
    .await;
    assert!(half.contains("gate.key_file"), "{half}");
}
