//! TLS for both listeners, with rustls: `cert_file` and `key_file` (PEM) turn it on; `tls_tcp`
//! and `tls_ws` turn it off for one listener. WebSocket over TLS (wss) offers ALPN
//! `http/1.1`, as leaf does.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;

/// A certificate or key file that cannot be used.
#[derive(Debug)]
pub(crate) struct TlsFileError {
    /// The file named by `cert_file` or `key_file`.
    pub(crate) file: String,
    /// What is wrong with it.
    pub(crate) message: String,
}

/// Loads the certificate chain and key and builds an acceptor; `alpn` is offered to clients.
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
