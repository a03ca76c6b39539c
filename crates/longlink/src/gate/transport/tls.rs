//! TLS for both listeners, with rustls: `cert_file` and `key_file` (PEM) turn it on; `tls_tcp`
//! and `tls_ws` turn it off for one listener. WebSocket over TLS (wss) offers ALPN
//! `http/1.1`, as leaf does. Without the `tls` feature the two types stand for nothing (no
//! value of them exists) and asking for TLS is an error at bind (`GateError::Tls`).

#[cfg(feature = "tls")]
use std::sync::Arc;

#[cfg(feature = "tls")]
use rustls_pki_types::pem::PemObject;
#[cfg(feature = "tls")]
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
#[cfg(feature = "tls")]
pub(crate) use tokio_rustls::TlsAcceptor;
#[cfg(feature = "tls")]
use tokio_rustls::rustls::ServerConfig;
#[cfg(feature = "tls")]
use tokio_rustls::rustls::crypto::ring;

#[cfg(not(feature = "tls"))]
pub(crate) use off::{TlsAcceptor, TlsStream};

/// A certificate or key file that cannot be used.
#[derive(Debug)]
pub(crate) struct TlsFileError {
    /// The file named by `cert_file` or `key_file`.
    pub(crate) file: String,
    /// What is wrong with it.
    pub(crate) message: String,
}

/// A TLS stream over TCP (after the bytes a PROXY header's reader took past the header).
#[cfg(feature = "tls")]
pub(crate) type TlsStream =
    tokio_rustls::server::TlsStream<super::proxy::Prefixed<tokio::net::TcpStream>>;

/// Without the `tls` feature: the error that says so.
#[cfg(not(feature = "tls"))]
pub(crate) fn acceptor(
    cert_file: &str,
    _key_file: &str,
    _alpn: &[&[u8]],
) -> Result<TlsAcceptor, TlsFileError> {
    Err(TlsFileError {
        file: cert_file.to_owned(),
        message: "this build of longlink has no TLS (its `tls` feature is off)".into(),
    })
}

/// Loads the certificate chain and key and builds an acceptor; `alpn` is offered to clients.
#[cfg(feature = "tls")]
pub(crate) fn acceptor(
    cert_file: &str,
    key_file: &str,
    alpn: &[&[u8]],
) -> Result<TlsAcceptor, TlsFileError> {
    let bad = |file: &str, message: String| TlsFileError {
        file: file.to_owned(),
        message,
    };
    let pem = |file: &str| std::fs::read(file).map_err(|e| bad(file, e.to_string()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem(cert_file)?)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert_file, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(bad(cert_file, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem(key_file)?)
        .map_err(|e| bad(key_file, format!("not a PEM private key: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert_file, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            bad(
                key_file,
                format!("the key does not fit the certificate: {e}"),
            )
        })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS types without the `tls` feature: enums without variants, so no connection is ever
/// TLS and the code that handles one is never reached.
#[cfg(not(feature = "tls"))]
mod off {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::TcpStream;

    /// Stands for `tokio_rustls::TlsAcceptor`.
    #[derive(Clone)]
    pub(crate) enum TlsAcceptor {}

    /// Stands for a TLS stream over TCP.
    pub(crate) enum TlsStream {}

    impl TlsAcceptor {
        pub(crate) async fn accept(
            &self,
            _: super::super::proxy::Prefixed<TcpStream>,
        ) -> io::Result<TlsStream> {
            match *self {}
        }
    }

    impl AsyncRead for TlsStream {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match *self.get_mut() {}
        }
    }

    impl AsyncWrite for TlsStream {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            match *self.get_mut() {}
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self.get_mut() {}
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self.get_mut() {}
        }
    }
}
