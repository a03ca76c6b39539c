//! Remote calls between nodes: request/reply over NATS with a timeout and a typed error.
//!
//! Requests and answers are JSON. An answer is `{"ok": <value>}` or `{"err": "<message>"}`.

use std::time::Instant;

use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::request_error;
use super::{Cluster, ClusterError};
use crate::module::{Ctx, ModuleRef};

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Answer<T> {
    Ok(T),
    Err(String),
}

impl Cluster {
    /// Calls `method` on one node of type `node_type` (load-balanced over that type's queue
    /// group) and waits for its answer, at most `request_timeout`.
    ///
    /// Errors: [`ClusterError::NoResponders`] at once when no node of that type serves the
    /// method, [`ClusterError::Timeout`] when none answers in time, [`ClusterError::Remote`]
    /// when the node could not handle it.
    pub async fn call<Req, Resp>(
        &self,
        node_type: &str,
        method: &str,
        req: &Req,
    ) -> Result<Resp, ClusterError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let subject = self.subjects().rpc(node_type, method);
        self.request(subject, &format!("{node_type}.{method}"), req)
            .await
    }

    /// Calls `method` on the node with this id.
    pub async fn call_node<Req, Resp>(
        &self,
        node_id: &str,
        method: &str,
        req: &Req,
    ) -> Result<Resp, ClusterError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let subject = self.subjects().rpc_node(node_id, method);
        self.request(subject, &format!("node {node_id} {method}"), req)
            .await
    }

    async fn request<Req, Resp>(
        &self,
        subject: String,
        target: &str,
        req: &Req,
    ) -> Result<Resp, ClusterError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        if !super::subjects::fits(&subject) {
            // A name with a space, or so long that nats-server would drop this node's
            // connection (its control line is 4 KiB), never reaches NATS.
            return Err(ClusterError::Codec(format!(
                "not a valid subject ({} bytes): check the node type, node id and method",
                subject.len()
            )));
        }
        let body = serde_json::to_vec(req).map_err(|e| ClusterError::Codec(e.to_string()))?;
        let timeout = self.config().request_timeout;
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, self.nats().request(subject, body.into())).await;
        metrics::histogram!("longlink_cluster_call_seconds").record(started.elapsed());
        let reply = result
            .map_err(|_| ClusterError::Timeout(timeout))?
            .map_err(|e| request_error(target, timeout, e))?;
        match serde_json::from_slice::<Answer<Resp>>(&reply.payload) {
            Ok(Answer::Ok(v)) => Ok(v),
            Ok(Answer::Err(e)) => Err(ClusterError::Remote(e)),
            Err(e) => Err(ClusterError::Codec(format!("answer: {e}"))),
        }
    }

    /// A request (`target` names it in errors) published in order with everything else this
    /// node publishes (`send`): it reaches its subject after what was sent there before it.
    /// The answer's payload, within `request_timeout`.
    pub(crate) async fn request_in_order(
        &self,
        subject: String,
        target: &str,
        payload: bytes::Bytes,
    ) -> Result<bytes::Bytes, ClusterError> {
        let timeout = self.config().request_timeout;
        let inbox = self.nats().new_inbox();
        let mut sub = self
            .nats()
            .subscribe(inbox.clone())
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        // The subscription goes out on the client's connection before the publisher's
        // message, so the answer cannot come before it.
        self.send(subject, Some(inbox), payload);
        let answer = tokio::time::timeout(timeout, sub.next()).await;
        let _ = sub.unsubscribe().await;
        match answer {
            Err(_) => Err(ClusterError::Timeout(timeout)),
            Ok(None) => Err(ClusterError::Nats("subscription ended".into())),
            Ok(Some(m)) if m.status == Some(async_nats::StatusCode::NO_RESPONDERS) => {
                Err(ClusterError::NoResponders(target.to_owned()))
            }
            Ok(Some(m)) => Ok(m.payload),
        }
    }

    /// Serves `method` for this node's type (and for calls addressed to this node), on
    /// `module`'s task: `f` gets the module state and the request, and returns the answer.
    /// Serving lasts as long as the process (or until the module stops, after which calls
    /// get [`ClusterError::Remote`]).
    ///
    /// ```no_run
    /// # async fn run(cluster: longlink::cluster::Cluster, m: longlink::ModuleRef<u64>) {
    /// cluster.serve(&m, "count", |n: &mut longlink::Ctx<u64>, add: u64| { **n += add; **n }).await;
    /// let total: u64 = cluster.call("chat", "count", &2u64).await.unwrap();
    /// # }
    /// ```
    pub async fn serve<S, Req, Resp, F>(&self, module: &ModuleRef<S>, method: &str, f: F)
    where
        S: Send + 'static,
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(&mut Ctx<S>, Req) -> Resp + Send + Sync + 'static,
    {
        let f = std::sync::Arc::new(f);
        let subjects = [
            (self.subjects().rpc(self.node_type(), method), true),
            (self.subjects().rpc_node(self.node_id(), method), false),
        ];
        for (subject, queue) in subjects {
            let sub = if queue {
                self.nats()
                    .queue_subscribe(subject.clone(), self.node_type().to_owned())
                    .await
            } else {
                self.nats().subscribe(subject.clone()).await
            };
            let mut sub = match sub {
                Ok(sub) => sub,
                Err(e) => {
                    tracing::error!(%subject, error = %e, "cannot serve");
                    continue;
                }
            };
            let (cluster, module, f) = (self.clone(), module.clone(), f.clone());
            tokio::spawn(async move {
                while let Some(msg) = sub.next().await {
                    let Some(reply) = msg.reply.as_ref().map(|r| r.to_string()) else {
                        continue;
                    };
                    let answer = |a: Answer<Resp>| {
                        serde_json::to_vec(&a).unwrap_or_else(|e| {
                            format!("{{\"err\":\"cannot encode the answer: {e}\"}}").into_bytes()
                        })
                    };
                    let req = match serde_json::from_slice::<Req>(&msg.payload) {
                        Ok(req) => req,
                        Err(e) => {
                            let body = answer(Answer::Err(format!("bad request: {e}")));
                            cluster.send(reply, None, body.into());
                            continue;
                        }
                    };
                    let (c, f2, r2) = (cluster.clone(), f.clone(), reply.clone());
                    let sent = module
                        .cast(move |ctx| {
                            let resp = f2(ctx, req);
                            c.send(r2, None, answer(Answer::Ok(resp)).into());
                        })
                        .await;
                    if sent.is_err() {
                        let body = serde_json::to_vec(&Answer::<()>::Err("module stopped".into()))
                            .unwrap_or_default();
                        cluster.send(reply, None, body.into());
                    }
                }
            });
        }
        self.sync().await;
    }
}
