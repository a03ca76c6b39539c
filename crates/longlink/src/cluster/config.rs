//! `[cluster]`: where NATS is and who this node is.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// `[cluster]` settings. The cluster is off unless `nats_url` is set.
///
/// ```toml
/// [cluster]
/// nats_url = "nats://127.0.0.1:4222"
/// node_type = "gate"       # what the application runs here, e.g. "gate", "chat", "all"
/// node_id = ""             # empty: a unique id is generated at start
/// request_timeout = 3      # seconds: remote calls and forwarded messages
/// directory_ttl = 30       # seconds: a dead gate's uids leave the directory after this
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// NATS server URL(s), comma separated; empty = the cluster is off.
    pub nats_url: String,
    /// This node's type: 1 to 128 letters, digits, `-` or `_`. The library treats it as a
    /// name; applications give it meaning (the chat example: `gate`, `chat` or `all`).
    pub node_type: String,
    /// This node's id, unique in the cluster: 1 to 160 letters, digits, `-` or `_`; empty =
    /// generated (`<node_type>-<12 hex digits>`). It is part of subjects and of resume
    /// tokens (a token naming anything else is refused before it reaches NATS).
    pub node_id: String,
    /// How long a remote call or a forwarded message may take before it fails; also each
    /// step of a session's hand-over between gates (the gate that holds the session gives
    /// the hand-over up after twice this without a step).
    #[serde(with = "crate::config::secs")]
    pub request_timeout: Duration,
    /// How long a gate's "alive" key lives without a refresh (its gate rewrites it every
    /// third of this): a dead gate's uids count as offline after this.
    #[serde(with = "crate::config::secs")]
    pub directory_ttl: Duration,
    /// The first token of every subject, and the directory bucket's prefix: several
    /// clusters can share one NATS with different prefixes. 1 to 128 letters, digits, `-`
    /// or `_`.
    pub subject_prefix: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats_url: String::new(),
            node_type: "all".into(),
            node_id: String::new(),
            request_timeout: Duration::from_secs(3),
            directory_ttl: Duration::from_secs(30),
            subject_prefix: "longlink".into(),
        }
    }
}

fn invalid(key: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key: format!("cluster.{key}"),
        message: message.into(),
    }
}

/// The longest node type or subject prefix, in bytes.
const MAX_NAME_LEN: usize = 128;

/// The longest node id, in bytes: a generated one is the node type, `-` and 12 digits.
/// Every subject the cluster builds from these names stays far below nats-server's 4 KiB
/// control line.
const MAX_NODE_ID_LEN: usize = MAX_NAME_LEN + 32;

fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether `s` can be a node id (`[cluster] node_id`, or a generated one): what a name that
/// came from elsewhere (a client's resume token) must be before it goes into a subject.
pub(crate) fn is_node_name(s: &str) -> bool {
    is_token(s, MAX_NODE_ID_LEN)
}

impl ClusterConfig {
    /// Whether the cluster is configured at all.
    pub fn enabled(&self) -> bool {
        !self.nats_url.trim().is_empty()
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !is_token(&self.node_type, MAX_NAME_LEN) {
            return Err(invalid(
                "node_type",
                "must be 1 to 128 letters, digits, '-' or '_'",
            ));
        }
        if !self.node_id.is_empty() && !is_node_name(&self.node_id) {
            return Err(invalid(
                "node_id",
                "must be 1 to 160 letters, digits, '-' or '_'",
            ));
        }
        if !is_token(&self.subject_prefix, MAX_NAME_LEN) {
            return Err(invalid(
                "subject_prefix",
                "must be 1 to 128 letters, digits, '-' or '_'",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout", "must be more than 0"));
        }
        if self.directory_ttl < Duration::from_secs(1) {
            return Err(invalid("directory_ttl", "must be at least 1 second"));
        }
        Ok(())
    }

    /// `node_id`, or a new unique id: `<node_type>-<random>`.
    pub fn node_id(&self) -> String {
        if self.node_id.is_empty() {
            format!("{}-{}", self.node_type, unique_suffix())
        } else {
            self.node_id.clone()
        }
    }
}

/// A short random suffix for generated node ids (time and process based; unique enough for
/// node ids, which also carry the node type).
fn unique_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_so_every_subject_fits() {
        let with = |node_type: &str, node_id: &str| ClusterConfig {
            node_type: node_type.into(),
            node_id: node_id.into(),
            ..ClusterConfig::default()
        };
        assert!(with(&"t".repeat(128), &"i".repeat(160)).validate().is_ok());
        assert!(with(&"t".repeat(129), "").validate().is_err());
        assert!(with("gate", &"i".repeat(161)).validate().is_err());
        assert!(with("gate", "a.b").validate().is_err());
        // A generated id from the longest type is still a node name.
        assert!(is_node_name(&with(&"t".repeat(128), "").node_id()));
        assert!(!is_node_name("") && !is_node_name("a b") && !is_node_name("a\r\n"));
    }
}
