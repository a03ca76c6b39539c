//! The PROXY protocol header (`[gate] proxy_protocol`): what a load balancer sends before a
//! connection's own bytes to say whom it came from, in text (v1, at most 107 bytes) or binary
//! (v2, 16 bytes and the length they give), parsed by the `ppp` crate.
//!
//! [`read_header`] reads at most [`MAX_HEADER`] bytes; what came past the header (the
//! client's first bytes) is given back, for the frame reader, the WebSocket request reader,
//! or TLS through [`Prefixed`]. The caller bounds it in time (`http_timeout`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use ppp::{HeaderResult, PartialResult};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The most bytes a header may take: a v1 header's 107, a v2 header's 16 and its addresses
/// (216 for UNIX sockets) with room for the TLVs balancers add (a cloud's endpoint id, TLS
/// details); a longer one is refused.
pub(crate) const MAX_HEADER: usize = 1024;

/// The longest v1 header, CRLF included.
const V1_MAX: usize = 107;

/// Why a connection's PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// The bytes are not a PROXY header (v1 or v2), or not a valid one.
    #[error("no valid PROXY protocol header: {0}")]
    Invalid(String),
    /// A v2 header longer than [`MAX_HEADER`].
    #[error("PROXY protocol header longer than {MAX_HEADER} bytes")]
    TooLong,
    /// The connection ended (or failed) before a whole header came.
    #[error("connection ended inside the PROXY protocol header")]
    Ended,
}

/// A header read: the client's address it gives, and the bytes read past it.
#[derive(Debug)]
pub(crate) struct Proxied {
    /// The source address; `None` for a header that names none (v1 `UNKNOWN`, v2 `LOCAL`
    /// or an address family other than IPv4 and IPv6): the socket's peer stands.
    pub(crate) source: Option<SocketAddr>,
    /// What came after the header.
    pub(crate) rest: Vec<u8>,
}

/// Reads one PROXY header from `stream`, and not more than [`MAX_HEADER`] bytes.
pub(crate) async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Proxied, ProxyError> {
    let mut buf = BytesMut::with_capacity(256);
    loop {
        if let Some((len, source)) = parse(&buf)? {
            buf.advance(len);
            return Ok(Proxied {
                source,
                rest: buf.to_vec(),
            });
        }
        if buf.len() >= MAX_HEADER {
            return Err(ProxyError::TooLong);
        }
        let room = MAX_HEADER - buf.len();
        buf.reserve(room.min(512));
        let mut limited = (&mut *stream).take(room as u64);
        match limited.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Err(ProxyError::Ended),
            Ok(_) => {}
        }
    }
}

/// The header at the front of `bytes`: its length and source address; `None`: not whole
/// yet. Never panics, whatever the bytes.
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<(usize, Option<SocketAddr>)>, ProxyError> {
    if bytes.len() >= 16 && bytes.starts_with(ppp::v2::PROTOCOL_PREFIX) {
        let declared = u16::from_be_bytes([bytes[14], bytes[15]]) as usize;
        if 16 + declared > MAX_HEADER {
            return Err(ProxyError::TooLong);
        }
    }
    // A v1 header is parsed whole: ppp takes some cut ones (`... 5555 `) for bad ones.
    let v1 = bytes.starts_with(b"PROXY") || b"PROXY".starts_with(bytes);
    if v1 && bytes.len() < V1_MAX && !bytes.contains(&b'\n') {
        return Ok(None);
    }
    let header = HeaderResult::parse(bytes);
    if header.is_incomplete() {
        return Ok(None);
    }
    match header {
        HeaderResult::V1(Ok(h)) => {
            let source = match h.addresses {
                ppp::v1::Addresses::Tcp4(a) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                ppp::v1::Addresses::Tcp6(a) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                ppp::v1::Addresses::Unknown => None,
            };
            Ok(Some((h.header.len(), source)))
        }
        HeaderResult::V2(Ok(h)) => {
            let source = match (h.command, h.addresses) {
                (ppp::v2::Command::Local, _) => None,
                (_, ppp::v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (_, ppp::v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (_, ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_)) => None,
            };
            Ok(Some((h.len(), source)))
        }
        HeaderResult::V1(Err(e)) => Err(ProxyError::Invalid(e.to_string())),
        HeaderResult::V2(Err(e)) => Err(ProxyError::Invalid(e.to_string())),
    }
}

/// A stream that gives `prefix` before what it reads from `inner`: the bytes a PROXY
/// header's reader took past the header, given back to TLS.
pub(crate) struct Prefixed<S> {
    prefix: Option<Box<[u8]>>,
    consumed: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner`, read after `prefix`.
    pub(crate) fn new(inner: S, prefix: Vec<u8>) -> Prefixed<S> {
        Prefixed {
            prefix: (!prefix.is_empty()).then(|| prefix.into_boxed_slice()),
            consumed: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(prefix) = &this.prefix {
            let left = &prefix[this.consumed..];
            let n = left.len().min(buf.remaining());
            buf.put_slice(&left[..n]);
            this.consumed += n;
            if this.consumed == prefix.len() {
                this.prefix = None;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v2(source: SocketAddr, dest: SocketAddr) -> Vec<u8> {
        ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (source, dest),
        )
        .build()
        .unwrap()
    }

    /// Reads a header from `bytes`, arriving `chunk` bytes at a time.
    fn read(bytes: &[u8], chunk: usize) -> Result<Proxied, ProxyError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut client, mut server) = tokio::io::duplex(64 * 1024);
            let bytes = bytes.to_vec();
            let writer = async move {
                use tokio::io::AsyncWriteExt;
                for piece in bytes.chunks(chunk.max(1)) {
                    let _ = client.write_all(piece).await;
                    tokio::task::yield_now().await;
                }
                drop(client);
            };
            let (_, read) = tokio::join!(writer, read_header(&mut server));
            read
        })
    }

    #[test]
    fn v1_and_v2_give_the_source_and_keep_what_follows() {
        let v1 = b"PROXY TCP4 203.0.113.9 10.0.0.1 5555 3563\r\n\x00\x05hello";
        for chunk in [1, 7, 1000] {
            let got = read(v1, chunk).unwrap();
            assert_eq!(got.source, Some("203.0.113.9:5555".parse().unwrap()));
            // What came with the header's last bytes, and no more.
            assert!(b"\x00\x05hello".starts_with(&got.rest), "{:?}", got.rest);
        }
        assert_eq!(read(v1, 1000).unwrap().rest, b"\x00\x05hello");
        let got = read(b"PROXY TCP6 2001:db8::1 ::1 4711 80\r\n", 1).unwrap();
        assert_eq!(got.source, Some("[2001:db8::1]:4711".parse().unwrap()));
        let got = read(b"PROXY UNKNOWN\r\nGET", 100).unwrap();
        assert_eq!((got.source, got.rest), (None, b"GET".to_vec()));

        let mut bytes = v2(
            "198.51.100.4:6000".parse().unwrap(),
            "10.0.0.1:3653".parse().unwrap(),
        );
        bytes.extend_from_slice(b"GET /");
        for chunk in [1, 5, 1000] {
            let got = read(&bytes, chunk).unwrap();
            assert_eq!(got.source, Some("198.51.100.4:6000".parse().unwrap()));
            assert!(b"GET /".starts_with(&got.rest), "{:?}", got.rest);
        }
        assert_eq!(read(&bytes, 1000).unwrap().rest, b"GET /");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"\x00\x05hello",
            b"PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 10.0.0.1 99999 2\r\n",
            b"PROXY TCP4 1.2.3.4\r\n",
            b"PROXY TCP4 1.2.3.4 10.0.0.1 1 2",
        ] {
            assert!(read(bad, 3).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        // A v2 header whose declared length is over the bound, refused from its 16 bytes.
        let mut long = ppp::v2::PROTOCOL_PREFIX.to_vec();
        long.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(parse(&long), Err(ProxyError::TooLong)));
        // A v1 header that never ends is not read past its bound.
        let endless = [b"PROXY TCP4 ".as_slice(), &[b'1'; 4000]].concat();
        assert!(read(&endless, 64).is_err());
    }

    proptest! {
        /// Any bytes: a header, a refusal or a wait for more, never a panic; a header
        /// found is never longer than the input nor the bound.
        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..1200)) {
            if let Ok(Some((len, _))) = parse(&data) {
                prop_assert!(len <= data.len() && len <= MAX_HEADER);
            }
        }

        /// A header followed by anything is found whole, and every cut of it waits for
        /// more: where the stream is cut does not matter.
        #[test]
        fn a_header_is_found_whatever_follows_and_wherever_it_is_cut(
            a in any::<[u8; 4]>(),
            port in 1u16..,
            v2_form in any::<bool>(),
            after in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let source = SocketAddr::from((a, port));
            let dest: SocketAddr = "10.0.0.1:3563".parse().unwrap();
            let header = match v2_form {
                true => v2(source, dest),
                false => ppp::v1::Addresses::from((source, dest)).to_string().into_bytes(),
            };
            let data = [&header[..], &after].concat();
            let found = parse(&data).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(found, Some((header.len(), Some(source))));
            for cut in 0..header.len() {
                prop_assert!(matches!(parse(&data[..cut]), Ok(None)), "cut at {}", cut);
            }
        }

        /// A v2 header with random bytes after its signature.
        #[test]
        fn arbitrary_v2_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
            let data = [ppp::v2::PROTOCOL_PREFIX, &body].concat();
            if let Ok(Some((len, _))) = parse(&data) {
                prop_assert!(len <= data.len());
            }
        }
    }
}
