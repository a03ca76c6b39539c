//! The storm's wire: raw TCP frames (`| len u16 BE | JSON payload |`), read so that a wait
//! cancelled halfway loses no byte, and sockets bound to a loopback source address that
//! close with a reset (no `TIME_WAIT` holding a source port after a cut or a move).

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result, bail, ensure};
use bytes::{Buf, Bytes, BytesMut};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

use crate::IO_TIMEOUT;

/// One frame: big-endian u16 length, then the JSON payload.
pub(super) fn frame(msg: &Value) -> Vec<u8> {
    let payload = msg.to_string();
    let mut out = Vec::with_capacity(2 + payload.len());
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload.as_bytes());
    out
}

/// A connection and what has been read of it but not yet taken as frames.
pub(super) struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    /// Connects from `source` (port chosen by the kernel) to `gate`, within `IO_TIMEOUT`.
    pub(super) async fn open(source: IpAddr, gate: SocketAddr) -> Result<Conn> {
        let socket = match gate {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("binding the source address {source}"))?;
        let stream = timeout(IO_TIMEOUT, socket.connect(gate))
            .await
            .with_context(|| format!("timed out connecting to {gate}"))?
            .with_context(|| format!("connecting to {gate}"))?;
        // A drop is a reset (a zero linger does not block): the load cuts thousands of
        // sockets at once and reconnects from the same addresses, which TIME_WAIT would run
        // out of ports.
        socket2::SockRef::from(&stream).set_linger(Some(std::time::Duration::ZERO))?;
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(512),
        })
    }

    /// Writes whole frames, within `IO_TIMEOUT`.
    pub(super) async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        timeout(IO_TIMEOUT, self.stream.write_all(bytes))
            .await
            .context("timed out writing")?
            .context("writing")
    }

    /// The next frame's payload. Cancel safe: what was read stays in the buffer.
    pub(super) async fn next(&mut self) -> Result<Bytes> {
        loop {
            if self.buf.len() >= 2 {
                let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
                if self.buf.len() >= 2 + len {
                    self.buf.advance(2);
                    return Ok(self.buf.split_to(len).freeze());
                }
                self.buf.reserve(2 + len - self.buf.len());
            } else {
                self.buf.reserve(512);
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .context("reading")?;
            ensure!(n > 0, "end of stream");
        }
    }
}

/// A payload's message name and body (`{"Name": body}`).
pub(super) fn parse(payload: &[u8]) -> Result<(String, Value)> {
    let v: Value = serde_json::from_slice(payload).context("a frame that is not JSON")?;
    let Value::Object(map) = v else {
        bail!("a frame that is not a JSON object");
    };
    let Some((name, body)) = map.into_iter().next() else {
        bail!("an empty JSON object");
    };
    Ok((name, body))
}

/// The `i`-th address from `base` (IPv4: `base + i`; IPv6 has only `::1`).
pub(super) fn nth_source(base: IpAddr, i: u32) -> IpAddr {
    match base {
        IpAddr::V4(v4) => IpAddr::from(u32::from(v4).wrapping_add(i).to_be_bytes()),
        IpAddr::V6(_) => base,
    }
}

/// A small pseudo-random generator (xorshift64*): gates and backoff waits.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `0..n` (`n` > 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_count_up_from_the_base() {
        let base: IpAddr = "127.10.0.1".parse().unwrap();
        assert_eq!(nth_source(base, 0), base);
        assert_eq!(nth_source(base, 255).to_string(), "127.10.1.0");
    }

    #[test]
    fn parse_takes_the_envelope() {
        let (name, body) = parse(br#"{"LL_Ack":{"seq":12}}"#).unwrap();
        assert_eq!((name.as_str(), body["seq"].as_u64()), ("LL_Ack", Some(12)));
        assert!(parse(b"[1]").is_err());
        assert!(parse(b"{}").is_err());
    }
}
