//! The socket under a client: TCP or TLS, framed by a length prefix or by WebSocket.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use longlink_wire::{LenCodec, Transport};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::config::ClientConfig;
use crate::error::{Error, Result};

/// A TCP socket, maybe under TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// The reading half of a connection.
pub(crate) enum ReadIo {
    Tcp(FramedRead<BoxRead, LenCodec>),
    Ws(SplitStream<WebSocketStream<Stream>>),
}

/// The writing half of a connection.
pub(crate) enum WriteIo {
    Tcp(FramedWrite<BoxWrite, LenCodec>),
    Ws(SplitSink<WebSocketStream<Stream>, WsMessage>),
}

/// A connection's two halves and its addresses.
pub(crate) struct Connected {
    pub(crate) read: ReadIo,
    pub(crate) write: WriteIo,
    pub(crate) local: SocketAddr,
    pub(crate) peer: SocketAddr,
}

/// Connects, does the TLS and WebSocket handshakes, all within `connect_timeout`.
pub(crate) async fn connect(config: &ClientConfig) -> Result<Connected> {
    config.validate()?;
    tokio::time::timeout(config.connect_timeout, connect_inner(config))
        .await
        .map_err(|_| Error::ConnectTimeout(config.addr.clone()))?
}

async fn connect_inner(config: &ClientConfig) -> Result<Connected> {
    let tcp = TcpStream::connect(config.addr.as_str()).await?;
    tcp.set_nodelay(config.nodelay)?;
    let (local, peer) = (tcp.local_addr()?, tcp.peer_addr()?);
    let stream = match &config.tls {
        None => Stream::Plain(tcp),
        Some(tls) => {
            let name = tls
                .server_name()
                .unwrap_or_else(|| config.host())
                .to_owned();
            let name = ServerName::try_from(name)
                .map_err(|e| Error::Config(format!("TLS server name: {e}")))?;
            let tls = TlsConnector::from(Arc::clone(tls.rustls()))
                .connect(name, tcp)
                .await?;
            Stream::Tls(Box::new(tls))
        }
    };
    let max = config.max_payload();
    let (read, write) = match config.transport {
        Transport::Tcp => {
            let mut codec = LenCodec::builder();
            codec
                .len_msg_len(config.len_msg_len)
                .max_msg_len(u32::try_from(max).unwrap_or(u32::MAX));
            if config.little_endian {
                codec.little_endian();
            }
            let codec = codec.build().map_err(Error::from_frame)?;
            let (r, w): (BoxRead, BoxWrite) = match stream {
                Stream::Plain(tcp) => {
                    let (r, w) = tcp.into_split();
                    (Box::new(r), Box::new(w))
                }
                tls => {
                    let (r, w) = tokio::io::split(tls);
                    (Box::new(r), Box::new(w))
                }
            };
            (
                ReadIo::Tcp(FramedRead::new(r, codec)),
                WriteIo::Tcp(FramedWrite::new(w, codec)),
            )
        }
        Transport::Ws => {
            let scheme = if config.tls.is_some() { "wss" } else { "ws" };
            let url = format!("{scheme}://{}{}", config.addr, config.ws_path);
            let ws_config = WebSocketConfig::default()
                .max_message_size(Some(max))
                .max_frame_size(Some(max));
            let (ws, _response) =
                tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config)).await?;
            let (w, r) = ws.split();
            (ReadIo::Ws(r), WriteIo::Ws(w))
        }
    };
    Ok(Connected {
        read,
        write,
        local,
        peer,
    })
}

impl ReadIo {
    /// The next payload. Cancel safe.
    pub(crate) async fn recv(&mut self) -> Result<Bytes> {
        match self {
            ReadIo::Tcp(framed) => match framed.next().await {
                None => Err(Error::Closed {
                    code: None,
                    reason: "end of stream".into(),
                }),
                // A length of 0 or over the limit, end of stream inside a frame, or the socket.
                Some(Err(e)) => Err(Error::from_frame(e)),
                Some(Ok(frame)) => Ok(frame),
            },
            ReadIo::Ws(ws) => loop {
                match ws.next().await {
                    None => {
                        return Err(Error::Closed {
                            code: None,
                            reason: "end of stream".into(),
                        });
                    }
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(WsMessage::Binary(b))) => return Ok(b),
                    Some(Ok(WsMessage::Text(t))) => return Ok(Bytes::from(t)),
                    Some(Ok(WsMessage::Close(frame))) => {
                        return Err(Error::Closed {
                            code: frame.as_ref().map(|f| u16::from(f.code)),
                            reason: frame
                                .map(|f| f.reason.to_string())
                                .unwrap_or_else(|| "close frame".into()),
                        });
                    }
                    // Pings are answered by tungstenite itself.
                    Some(Ok(_)) => {}
                }
            },
        }
    }
}

impl WriteIo {
    /// Queues one payload without flushing.
    pub(crate) async fn feed(&mut self, payload: Bytes) -> Result<()> {
        match self {
            WriteIo::Tcp(framed) => framed.feed(payload).await.map_err(Error::from_frame)?,
            WriteIo::Ws(ws) => ws.feed(WsMessage::Binary(payload)).await?,
        }
        Ok(())
    }

    /// Sends everything queued.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        match self {
            // LenCodec encodes `Bytes` and `&[u8]`: name the item type for the sink.
            WriteIo::Tcp(framed) => SinkExt::<Bytes>::flush(framed)
                .await
                .map_err(Error::from_frame)?,
            WriteIo::Ws(ws) => ws.flush().await?,
        }
        Ok(())
    }

    /// Flushes, then closes the sending side (TCP: FIN; WebSocket: a close frame).
    pub(crate) async fn close(&mut self) -> Result<()> {
        match self {
            WriteIo::Tcp(framed) => SinkExt::<Bytes>::close(framed)
                .await
                .map_err(Error::from_frame)?,
            WriteIo::Ws(ws) => ws.close().await?,
        }
        Ok(())
    }
}
