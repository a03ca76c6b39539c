//! Connection settings, named as the server's `GateConfig` names them.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use longlink_wire::{Encoding, Transport};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use crate::error::{Error, Result};

/// TLS for `wss://` or TCP over TLS: a rustls client configuration and the name to verify
/// the server's certificate against.
///
/// ```
/// use longlink_client::TlsConfig;
///
/// let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
/// let tls = TlsConfig::from_root_pem(made.cert.pem())?.with_server_name("localhost");
/// assert_eq!(tls.server_name(), Some("localhost"));
/// # Ok::<(), longlink_client::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<String>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Trusts exactly the certificates in `pem` (one or more `CERTIFICATE` blocks, e.g. the
    /// server's self-signed certificate or a private CA), with rustls' safe defaults and the
    /// ring provider; no client certificate.
    ///
    /// ```
    /// use longlink_client::TlsConfig;
    ///
    /// assert!(TlsConfig::from_root_pem("not a certificate").is_err());
    /// ```
    pub fn from_root_pem(pem: impl AsRef<[u8]>) -> Result<TlsConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_ref()) {
            let cert = cert.map_err(|e| Error::Config(format!("root certificate PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::Config(format!("root certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(Error::Config(
                "no CERTIFICATE block in the root certificate PEM".into(),
            ));
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS protocol versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(TlsConfig::from_rustls(Arc::new(config)))
    }

    /// Like [`from_root_pem`](TlsConfig::from_root_pem), reading the PEM from a file (such
    /// as the server's `cert_file`).
    ///
    /// ```
    /// use longlink_client::TlsConfig;
    ///
    /// let err = TlsConfig::from_root_pem_file("/no/such/cert.pem").unwrap_err();
    /// assert!(err.to_string().contains("/no/such/cert.pem"));
    /// ```
    pub fn from_root_pem_file(path: impl AsRef<Path>) -> Result<TlsConfig> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
        TlsConfig::from_root_pem(pem)
    }

    /// Uses a rustls configuration as it is (client certificates, custom verifiers, ALPN).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use longlink_client::TlsConfig;
    /// use longlink_client::rustls::{ClientConfig, RootCertStore, crypto::ring};
    ///
    /// let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(RootCertStore::empty())
    ///     .with_no_client_auth();
    /// let tls = TlsConfig::from_rustls(Arc::new(config));
    /// assert_eq!(tls.server_name(), None);
    /// ```
    pub fn from_rustls(config: Arc<rustls::ClientConfig>) -> TlsConfig {
        TlsConfig {
            config,
            server_name: None,
        }
    }

    /// Verifies the certificate against `name` instead of the host part of `addr` (needed
    /// when connecting to `127.0.0.1` with a certificate for `localhost`).
    ///
    /// ```
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    /// let tls = longlink_client::TlsConfig::from_root_pem(made.cert.pem())?.with_server_name("localhost");
    /// assert_eq!(tls.server_name(), Some("localhost"));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn with_server_name(mut self, name: impl Into<String>) -> TlsConfig {
        self.server_name = Some(name.into());
        self
    }

    /// The name set with [`with_server_name`](TlsConfig::with_server_name), if any.
    ///
    /// ```
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    /// let tls = longlink_client::TlsConfig::from_root_pem(made.cert.pem())?;
    /// assert_eq!(tls.server_name(), None);
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The rustls configuration.
    ///
    /// ```
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    /// let tls = longlink_client::TlsConfig::from_root_pem(made.cert.pem())?;
    /// assert!(tls.rustls().alpn_protocols.is_empty());
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn rustls(&self) -> &Arc<rustls::ClientConfig> {
        &self.config
    }
}

/// Where and how to connect. The framing settings have the server's `GateConfig` names and
/// defaults, and must match the server's.
///
/// ```
/// use longlink_client::{ClientConfig, Encoding, Transport};
///
/// let config = ClientConfig::ws("127.0.0.1:3653").with_encoding(Encoding::Protobuf);
/// assert_eq!(config.transport, Transport::Ws);
/// assert_eq!((config.len_msg_len, config.max_msg_len), (2, 8192));
/// config.validate()?;
/// # Ok::<(), longlink_client::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server, `host:port` (the gate's `tcp_addr` or `ws_addr`).
    pub addr: String,
    /// TCP or WebSocket.
    pub transport: Transport,
    /// JSON or protobuf.
    pub encoding: Encoding,
    /// TCP length field width: 1, 2 or 4 bytes.
    pub len_msg_len: usize,
    /// TCP length field byte order.
    pub little_endian: bool,
    /// Protobuf id byte order (the server's `Processor::set_id_little_endian`).
    pub id_little_endian: bool,
    /// Largest payload in bytes, in and out (TCP: clamped to the length field).
    pub max_msg_len: u32,
    /// TLS (`wss://`, or TCP over TLS); `None` for plain.
    pub tls: Option<TlsConfig>,
    /// The WebSocket request path (the server accepts any).
    pub ws_path: String,
    /// Longest time for the TCP connect, the TLS and the WebSocket handshakes together.
    pub connect_timeout: Duration,
    /// `TCP_NODELAY` on the socket.
    pub nodelay: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            addr: "127.0.0.1:3563".into(),
            transport: Transport::Tcp,
            encoding: Encoding::Json,
            len_msg_len: 2,
            little_endian: false,
            id_little_endian: false,
            max_msg_len: 8192,
            tls: None,
            ws_path: "/".into(),
            connect_timeout: Duration::from_secs(10),
            nodelay: true,
        }
    }
}

impl ClientConfig {
    /// TCP to `addr`, the other settings default.
    ///
    /// ```
    /// let config = longlink_client::ClientConfig::tcp("127.0.0.1:3563");
    /// assert_eq!(config.transport, longlink_client::Transport::Tcp);
    /// ```
    pub fn tcp(addr: impl Into<String>) -> ClientConfig {
        ClientConfig {
            addr: addr.into(),
            ..ClientConfig::default()
        }
    }

    /// WebSocket to `addr`, the other settings default.
    ///
    /// ```
    /// let config = longlink_client::ClientConfig::ws("127.0.0.1:3653");
    /// assert_eq!(config.transport, longlink_client::Transport::Ws);
    /// ```
    pub fn ws(addr: impl Into<String>) -> ClientConfig {
        ClientConfig {
            addr: addr.into(),
            transport: Transport::Ws,
            ..ClientConfig::default()
        }
    }

    /// Sets the encoding.
    ///
    /// ```
    /// use longlink_client::{ClientConfig, Encoding};
    ///
    /// let config = ClientConfig::tcp("127.0.0.1:3563").with_encoding(Encoding::Protobuf);
    /// assert_eq!(config.encoding, Encoding::Protobuf);
    /// ```
    pub fn with_encoding(mut self, encoding: Encoding) -> ClientConfig {
        self.encoding = encoding;
        self
    }

    /// Turns TLS on.
    ///
    /// ```
    /// use longlink_client::{ClientConfig, TlsConfig};
    ///
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    /// # let pem = made.cert.pem();
    /// let tls = TlsConfig::from_root_pem(pem)?.with_server_name("localhost");
    /// let config = ClientConfig::ws("127.0.0.1:3653").with_tls(tls);
    /// assert!(config.tls.is_some());
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn with_tls(mut self, tls: TlsConfig) -> ClientConfig {
        self.tls = Some(tls);
        self
    }

    /// Checks the settings.
    ///
    /// ```
    /// let mut config = longlink_client::ClientConfig::default();
    /// config.len_msg_len = 3;
    /// assert!(config.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        if !matches!(self.len_msg_len, 1 | 2 | 4) {
            return Err(Error::Config(format!(
                "len_msg_len is {}: must be 1, 2 or 4",
                self.len_msg_len
            )));
        }
        if self.max_msg_len == 0 {
            return Err(Error::Config("max_msg_len must be at least 1".into()));
        }
        if !self.addr.contains(':') {
            return Err(Error::Config(format!(
                "addr {:?} is not host:port",
                self.addr
            )));
        }
        if !self.ws_path.starts_with('/') {
            return Err(Error::Config(format!(
                "ws_path {:?} must start with '/'",
                self.ws_path
            )));
        }
        Ok(())
    }

    /// The largest payload this configuration sends or accepts: `max_msg_len`, for TCP
    /// clamped to what the length field holds.
    ///
    /// ```
    /// let mut config = longlink_client::ClientConfig::default();
    /// config.len_msg_len = 1;
    /// assert_eq!(config.max_payload(), 255);
    /// ```
    pub fn max_payload(&self) -> usize {
        let max = self.max_msg_len as usize;
        match self.transport {
            Transport::Ws => max,
            Transport::Tcp => match self.len_msg_len {
                1 => max.min(0xff),
                2 => max.min(0xffff),
                _ => max,
            },
        }
    }

    /// The host part of `addr`, without IPv6 brackets.
    pub(crate) fn host(&self) -> &str {
        let host = self
            .addr
            .rsplit_once(':')
            .map_or(self.addr.as_str(), |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}
