//! The server API: what the application's other services (a web backend, a payment service,
//! admin tools) ask of live connections: push to a uid, broadcast to a group or to everyone,
//! kick with the application's goodbye, presence, and numbers; and many pushes and
//! broadcasts in one request (`batch`). Over HTTP on the admin
//! listener (`routes`, `/api/v1/...`, with `Authorization: Bearer <[admin] api_key>`) and
//! over NATS request/reply (`nats`, `<subject_prefix>.api.<op>`), with the same JSON.
//!
//! A message is always given in leaf's JSON envelope (`{"S2C_Message": {...}}`), checked
//! against the registry and encoded in the gate's encoding, so a service without protobuf
//! can push to protobuf clients. The gate's own protocol messages (`LL_*`, session resume)
//! are refused with 400: the gate alone sends them, numbered. In a cluster any node answers for the whole cluster: push
//! and kick go through the directory to the gate holding the uid, broadcasts through NATS to
//! every gate, stats gather every node's numbers.

pub(crate) mod batch;
pub(crate) mod nats;
pub(crate) mod routes;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::cluster::{Cluster, ClusterError};
use crate::codec::{Codec, Encoded};
use crate::gate::{GateHandle, Goodbye};

/// The largest request body the API reads.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// How long the cluster-wide `stats` waits for the other nodes' answers.
const STATS_GATHER: Duration = Duration::from_millis(300);

/// `POST /api/v1/push`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Push {
    pub(crate) uid: u64,
    pub(crate) message: Box<RawValue>,
}

/// `POST /api/v1/broadcast`: to the members of `group` with `key` (a named
/// [`Groups`](crate::Groups) set: `"<group>.<key>"`), or with neither to every connection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Broadcast {
    #[serde(default)]
    pub(crate) group: Option<String>,
    #[serde(default)]
    pub(crate) key: Option<serde_json::Value>,
    pub(crate) message: Box<RawValue>,
}

/// `POST /api/v1/kick`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Kick {
    pub(crate) uid: u64,
    #[serde(default = "default_reason")]
    pub(crate) reason: String,
}

fn default_reason() -> String {
    "kicked".to_owned()
}

/// `GET /api/v1/online/{uid}`'s answer.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Online {
    pub(crate) uid: u64,
    pub(crate) online: bool,
    /// The gate node holding it (`"local"` without a cluster).
    pub(crate) node: Option<String>,
}

/// One node's numbers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct NodeStats {
    pub(crate) node: String,
    pub(crate) node_type: String,
    pub(crate) connections: usize,
    pub(crate) sessions: usize,
    pub(crate) groups: usize,
}

/// `GET /api/v1/stats`'s answer: totals, then each node.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) connections: usize,
    pub(crate) sessions: usize,
    pub(crate) groups: usize,
    pub(crate) nodes: Vec<NodeStats>,
}

/// Why a request was refused: a status, a stable machine-readable `code` and a reason for
/// people, answered as `{"error": reason, "code": code}`.
///
/// The codes are a contract (docs/server-api.md lists them): `unauthorized`, `bad_body`,
/// `body_too_large`, `batch_too_large`, `bad_uid`, `bad_message`, `no_registry`,
/// `bad_group`, `unknown_command`, `cluster_unavailable`, `not_found`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) reason: String,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            reason: reason.into(),
        }
    }

    /// A 400 with `code`.
    pub(crate) fn bad_request(code: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::new(400, code, reason)
    }

    fn unavailable(e: &ClusterError) -> ApiError {
        ApiError::new(503, "cluster_unavailable", format!("cluster: {e}"))
    }

    /// The JSON body every transport answers with (`status` only over NATS, where there is
    /// no HTTP status).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.reason, "code": self.code })
    }
}

/// A named group's name: `"<group>.<key>"`, a string key without its quotes.
fn group_name(group: &str, key: &serde_json::Value) -> String {
    match key {
        serde_json::Value::String(s) => format!("{group}.{s}"),
        other => format!("{group}.{other}"),
    }
}

/// Reads a request body as JSON; the error names the field (`uid: invalid type ...`) and
/// refuses anything after the value.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bad = |e: &dyn std::fmt::Display| ApiError::bad_request("bad_body", format!("body: {e}"));
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| bad(&e))?;
    de.end().map_err(|e| bad(&e))?;
    Ok(value)
}

/// The operations, shared by HTTP, NATS and the console.
pub(crate) struct Api {
    gates: Vec<GateHandle>,
    cluster: Option<Cluster>,
    /// Encodes the messages (a gate's, or a cluster backend's: every node of a cluster shares
    /// the encoding).
    codec: Option<Arc<Codec>>,
}

impl Api {
    pub(crate) fn new(
        gates: Vec<GateHandle>,
        cluster: Option<Cluster>,
        codec: Option<Arc<Codec>>,
    ) -> Api {
        Api {
            gates,
            cluster,
            codec,
        }
    }

    fn encode(&self, message: &RawValue) -> Result<Encoded, ApiError> {
        let codec = self.codec.as_ref().ok_or_else(|| {
            ApiError::bad_request("no_registry", "this node has no message registry")
        })?;
        codec
            .encode_envelope(message.get().as_bytes())
            .map_err(|e| ApiError::bad_request("bad_message", format!("message: {e}")))
    }

    /// Queues `message` on `uid`'s connection; false when the uid is not online.
    pub(crate) async fn push(&self, req: &Push) -> Result<bool, ApiError> {
        let encoded = self.encode(&req.message)?;
        let mut delivered = false;
        for gate in &self.gates {
            for agent in gate.agents_of_uid(req.uid) {
                delivered |= agent.write_encoded(&encoded).is_ok();
            }
        }
        if delivered {
            return Ok(true);
        }
        match &self.cluster {
            None => Ok(false),
            Some(c) => match c.push_uid(req.uid, &encoded).await {
                Ok(()) => Ok(true),
                Err(ClusterError::NotOnline(_)) => Ok(false),
                Err(e) => Err(ApiError::unavailable(&e)),
            },
        }
    }

    /// Sends `message` to a group's members or to every connection; returns how many
    /// connections of this node took it (in a cluster, every gate delivers its own).
    pub(crate) async fn broadcast(&self, req: &Broadcast) -> Result<usize, ApiError> {
        let encoded = self.encode(&req.message)?;
        let group = match (&req.group, &req.key) {
            (None, None) => None,
            (Some(group), Some(key)) => Some(group_name(group, key)),
            _ => {
                return Err(ApiError::bad_request(
                    "bad_group",
                    "group and key go together",
                ));
            }
        };
        Ok(self.broadcast_encoded(group.as_deref(), &encoded))
    }

    /// Sends `encoded` to the members of `group` (or to every connection); how many
    /// connections of this node took it (0 in a cluster, where every gate, this one too,
    /// gets one copy and writes it to its own members).
    fn broadcast_encoded(&self, group: Option<&str>, encoded: &Encoded) -> usize {
        if let Some(c) = &self.cluster {
            match group {
                Some(group) => c.broadcast_group(group, encoded),
                None => c.broadcast_all(encoded),
            }
            return 0;
        }
        let mut sent = 0;
        for gate in &self.gates {
            let agents = match group {
                Some(group) => gate.group_members(group),
                None => gate.agents(),
            };
            sent += agents
                .iter()
                .filter(|a| a.write_encoded(encoded).is_ok())
                .count();
        }
        sent
    }

    /// Kicks `uid` with the application's goodbye ([`Goodbye::Kicked`]); how many
    /// connections were kicked (0: not online).
    pub(crate) async fn kick(&self, uid: u64, reason: &str) -> Result<usize, ApiError> {
        let mut kicked = 0;
        for gate in &self.gates {
            for agent in gate.agents_of_uid(uid) {
                gate.goodbye(&agent, Goodbye::Kicked(reason.into()));
                kicked += 1;
            }
        }
        if kicked > 0 {
            return Ok(kicked);
        }
        match &self.cluster {
            None => Ok(0),
            Some(c) => match c.goodbye_uid(uid, reason).await {
                Ok(()) => Ok(1),
                Err(ClusterError::NotOnline(_)) => Ok(0),
                Err(e) => Err(ApiError::unavailable(&e)),
            },
        }
    }

    /// Whether `uid` is online, and on which node.
    pub(crate) async fn online(&self, uid: u64) -> Result<Online, ApiError> {
        let here = self.gates.iter().any(|g| !g.agents_of_uid(uid).is_empty());
        let node = match &self.cluster {
            None => here.then(|| "local".to_owned()),
            Some(c) if here => Some(c.node_id().to_owned()),
            Some(c) => c.locate(uid).await.map_err(|e| ApiError::unavailable(&e))?,
        };
        Ok(Online {
            uid,
            online: node.is_some(),
            node,
        })
    }

    /// This node's numbers.
    pub(crate) fn node_stats(&self) -> NodeStats {
        let (mut connections, mut sessions, mut groups) = (0, 0, 0);
        for gate in &self.gates {
            let agents = gate.agents();
            connections += agents.len();
            sessions += agents.iter().filter(|a| a.uid().is_some()).count();
            groups += gate.groups();
        }
        NodeStats {
            node: self
                .cluster
                .as_ref()
                .map_or_else(|| "local".to_owned(), |c| c.node_id().to_owned()),
            node_type: self
                .cluster
                .as_ref()
                .map_or_else(String::new, |c| c.node_type().to_owned()),
            connections,
            sessions,
            groups,
        }
    }

    /// Every node's numbers (each node's own in a cluster) and their totals.
    pub(crate) async fn stats(&self) -> Stats {
        let mut nodes = match &self.cluster {
            None => vec![self.node_stats()],
            Some(c) => nats::gather_stats(c, STATS_GATHER).await,
        };
        if nodes.is_empty() {
            nodes.push(self.node_stats());
        }
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Stats {
            connections: nodes.iter().map(|n| n.connections).sum(),
            sessions: nodes.iter().map(|n| n.sessions).sum(),
            groups: nodes.iter().map(|n| n.groups).max().unwrap_or(0),
            nodes,
        }
    }
}
