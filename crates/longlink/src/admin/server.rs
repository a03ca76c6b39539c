//! `[admin]` settings and the bound admin listeners.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::cluster::Cluster;
use crate::metrics;

/// `[admin]` settings.
///
/// ```
/// use longlink::admin::AdminConfig;
///
/// let config = AdminConfig::default();
/// assert_eq!(config.addr, "127.0.0.1:9090");
/// assert_eq!(config.console_addr, ""); // the console is off unless configured
/// assert_eq!(config.api_key, ""); // and so is the server API
/// assert_eq!(config.redis_url, ""); // and its Redis channel
/// assert_eq!(config.redis_channel, "longlink.api");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The HTTP listener for `/metrics` and `/healthz`, `host:port`; empty turns it off.
    pub addr: String,
    /// The admin console, `host:port`; empty (the default) turns it off. It listens on
    /// exactly this address: keep it on loopback.
    pub console_addr: String,
    /// The server API's key: `/api/v1/...` on `addr` (and `<subject_prefix>.api.*` over NATS
    /// in a cluster) answer requests with `Authorization: Bearer <api_key>`; empty (the
    /// default) turns the API off.
    pub api_key: String,
    /// Where the console's `cpuprof stop` writes its flame graph and pprof profile, and
    /// `prof heap` its heap profile.
    ///
    /// The first `cpuprof start` costs about 88 MB of memory for the rest of the process's
    /// life (the sampler's table, which the `pprof` crate keeps in a static and does not
    /// free); later profiles reuse it. What a profile takes beyond that (symbols, the
    /// report) is freed when it stops.
    pub profile_dir: String,
    /// A Redis to take server API commands from (`redis://127.0.0.1:6379/0`); empty (the
    /// default) turns it off. Each message published on [`redis_channel`](Self::redis_channel)
    /// is one command (`{"command": "push" | "broadcast" | "kick", ...}` with the HTTP API's
    /// body), run without `api_key`: setting this is the choice to trust whoever can publish
    /// there. Needs longlink's `redis` feature.
    pub redis_url: String,
    /// The channel the commands are published on.
    pub redis_channel: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            addr: "127.0.0.1:9090".into(),
            console_addr: String::new(),
            api_key: String::new(),
            profile_dir: "profiles".into(),
            redis_url: String::new(),
            redis_channel: "longlink.api".into(),
        }
    }
}

/// Why the admin listeners could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A listener could not bind.
    #[error("cannot listen on {addr} ({key}): {error}")]
    Bind {
        /// The config key.
        key: &'static str,
        /// The address.
        addr: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// `[admin] redis_url` is not a Redis URL, or longlink lacks its `redis` feature.
    #[error("admin.redis_url {url:?}: {message}")]
    Redis {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
}

/// The admin listeners, bound and not yet serving; give them to
/// [`App::admin`](crate::App::admin). Binding installs the metrics recorder (see
/// [`metrics::install`]).
pub struct AdminServer {
    pub(super) http: Option<TcpListener>,
    pub(super) console: Option<TcpListener>,
    /// `[admin] api_key` (empty: no API).
    pub(super) api_key: String,
    /// `[admin] profile_dir`.
    pub(super) profile_dir: std::path::PathBuf,
    /// The cluster the API answers for, if this node is in one.
    pub(super) cluster: Option<Cluster>,
    /// `[admin] redis_url` and `redis_channel`, when set.
    #[cfg(feature = "redis")]
    pub(super) redis: Option<super::redis::RedisSource>,
}

impl std::fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminServer")
            .field("addr", &self.addr())
            .field("console_addr", &self.console_addr())
            .finish()
    }
}

impl AdminServer {
    /// Installs the metrics recorder (once per process) and binds the listeners that
    /// `config` turns on.
    pub async fn bind(config: &AdminConfig) -> Result<AdminServer, AdminError> {
        metrics::install();
        #[cfg(feature = "redis")]
        let redis = match config.redis_url.as_str() {
            "" => None,
            url => Some(
                super::redis::RedisSource::new(url, &config.redis_channel).map_err(|message| {
                    AdminError::Redis {
                        url: url.to_owned(),
                        message,
                    }
                })?,
            ),
        };
        #[cfg(not(feature = "redis"))]
        if !config.redis_url.is_empty() {
            return Err(AdminError::Redis {
                url: config.redis_url.clone(),
                message: "this server is built without longlink's `redis` feature".into(),
            });
        }
        Ok(AdminServer {
            http: bind("admin.addr", &config.addr).await?,
            console: bind("admin.console_addr", &config.console_addr).await?,
            api_key: config.api_key.clone(),
            profile_dir: std::path::PathBuf::from(&config.profile_dir),
            cluster: None,
            #[cfg(feature = "redis")]
            redis,
        })
    }

    /// Makes the server API (HTTP and NATS) and the console's `kick` answer for the whole
    /// cluster: through the directory, the gate holding a uid, and every node's numbers.
    pub fn cluster(mut self, cluster: &Cluster) -> Self {
        self.cluster = Some(cluster.clone());
        self
    }

    /// The bound metrics address (useful with port 0).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bound console address.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// The next connection on an admin listener, or `None` once `token` is cancelled. A failed
/// accept (out of descriptors, most likely) waits a little rather than spin.
pub(super) async fn accept(
    listener: &TcpListener,
    token: &tokio_util::sync::CancellationToken,
    what: &str,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok(pair) => return Some(pair),
            Err(e) => {
                tracing::debug!(error = %e, "{what} accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn bind(key: &'static str, addr: &str) -> Result<Option<TcpListener>, AdminError> {
    if addr.is_empty() {
        return Ok(None);
    }
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|error| AdminError::Bind {
            key,
            addr: addr.to_owned(),
            error,
        })
}
