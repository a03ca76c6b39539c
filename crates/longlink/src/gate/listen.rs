//! The gate's listeners, bound at `bind` (before the gate runs: connections queue in the OS
//! backlog until it does), plain or with `SO_REUSEPORT` (`reuse_port`).

use tokio::net::TcpListener;

use super::{GateConfig, GateError};

/// The listeners of `config` (either may be off), bound; the open-file limit checked.
pub(super) async fn listen(
    config: &GateConfig,
) -> Result<(Option<TcpListener>, Option<TcpListener>), GateError> {
    let reuse = config.reuse_port;
    let tcp = bind("gate.tcp_addr", &config.tcp_addr, reuse).await?;
    let ws = bind("gate.ws_addr", &config.ws_addr, reuse).await?;
    #[cfg(unix)]
    super::fdlimit::check(config.max_conn_num);
    if tcp.is_none() && ws.is_none() {
        tracing::warn!("gate has neither tcp_addr nor ws_addr: it accepts no connections");
    }
    Ok((tcp, ws))
}

/// The listener of `addr` (none if empty), with `SO_REUSEPORT` when `reuse_port`.
async fn bind(
    key: &'static str,
    addr: &str,
    reuse_port: bool,
) -> Result<Option<TcpListener>, GateError> {
    if addr.is_empty() {
        return Ok(None);
    }
    let bound = if reuse_port {
        bind_reuse_port(addr).await
    } else {
        TcpListener::bind(addr).await
    };
    bound.map(Some).map_err(|error| GateError::Bind {
        key,
        addr: addr.to_owned(),
        error,
    })
}

/// Binds `addr` (its first address) with `SO_REUSEADDR` and `SO_REUSEPORT`: other processes
/// that set them too may listen on it at the same time, the kernel spreading new
/// connections among them.
#[cfg(unix)]
async fn bind_reuse_port(addr: &str) -> std::io::Result<TcpListener> {
    let Some(at) = tokio::net::lookup_host(addr).await?.next() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "the address resolves to nothing",
        ));
    };
    let socket = if at.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(at)?;
    socket.listen(1024)
}

/// `SO_REUSEPORT` is a Unix option.
#[cfg(not(unix))]
async fn bind_reuse_port(_addr: &str) -> std::io::Result<TcpListener> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "reuse_port needs a Unix system",
    ))
}
