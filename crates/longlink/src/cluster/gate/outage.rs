//! A gate through a NATS outage: nothing it refuses is handled later, nobody is bound
//! afresh, and what it missed of the group broadcasts is sent again.
//!
//! While the NATS connection is down, and after it is back until every backend node the
//! gate's connections are bound to answers again (each within `request_timeout`), the gate
//! is *not ready*: a client message to forward waits at the gate, in order, and is refused
//! (`on_forward_error`) if the gate is not ready within `request_timeout` of its arrival;
//! never published, it is never handled. Messages published before the outage keep waiting
//! for their acknowledgement: their timeouts count again from the moment the gate is ready.
//! A failure meanwhile ("no responders": its node is not back yet) does not unbind the
//! connection. Once ready, the gate asks every publisher of group broadcasts or commands it
//! has heard for what came after the last one it delivered (`feed`, `order`), and does the
//! same whenever a number is missing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::order::Fetch;
use super::{GateLink, lock};
use crate::cluster::wire::{ReplayAnswer, ReplayRequest, ToBackend};
use crate::cluster::{ClusterError, request_error};

/// How long to wait before asking again a node that is not subscribed yet.
const RETRY: Duration = Duration::from_millis(100);

/// What a gate asks a node for again.
#[derive(Clone, Copy)]
pub(super) enum Stream {
    /// Its group broadcasts (`feed`).
    Groups,
    /// Its commands to this gate.
    Commands,
}

impl GateLink {
    /// Follows the NATS connection's state until the gate stops.
    pub(super) async fn watch_nats(self: Arc<Self>) {
        let mut online = self.cluster.online();
        loop {
            let up = *online.borrow_and_update();
            if !up {
                if self.ready.send_replace(false) {
                    tracing::warn!("gate holds its forwarded messages until NATS is back");
                }
            } else if !*self.ready.borrow() {
                self.recover().await;
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                changed = online.changed() => if changed.is_err() { return },
            }
        }
    }

    /// NATS is back (the client subscribed again before anything sent from here): once the
    /// bound backend nodes answer, the gate is ready; then it asks for the broadcasts it
    /// missed.
    async fn recover(&self) {
        let nodes: HashSet<Arc<str>> = lock(&self.bindings)
            .values()
            .flat_map(|b| b.values().cloned())
            .collect();
        let deadline = tokio::time::Instant::now() + self.cluster.config().request_timeout;
        futures_util::future::join_all(nodes.iter().map(|n| self.probe(n, deadline))).await;
        if !*self.cluster.online().borrow() {
            return;
        }
        let renewed = std::time::Instant::now() + self.cluster.config().request_timeout;
        for f in lock(&self.inflight).values_mut() {
            f.renew(renewed);
        }
        self.ready.send_replace(true);
        tracing::info!(
            nodes = nodes.len(),
            "gate forwards again after a NATS outage"
        );
        for fetch in self.feed.sweep() {
            self.fetch_missing(Stream::Groups, fetch);
        }
        let commands = lock(&self.commands).sweep();
        for fetch in commands {
            self.fetch_missing(Stream::Commands, fetch);
        }
    }

    /// Waits (until `deadline`) for node `node` to answer on its own subject, then asks it
    /// which of this gate's messages it acknowledged lately: an acknowledgement it sent
    /// before this gate had subscribed again was lost, and those messages count as
    /// acknowledged now.
    async fn probe(&self, node: &str, deadline: tokio::time::Instant) {
        let subject = self.cluster.subjects().node(node);
        loop {
            let request = self
                .cluster
                .nats()
                .request(subject.clone(), ToBackend::Probe.encode());
            match tokio::time::timeout_at(deadline, request).await {
                Ok(Ok(_)) => break,
                Err(_) => return,
                Ok(Err(_)) if tokio::time::Instant::now() + RETRY < deadline => {
                    tokio::time::sleep(RETRY).await;
                }
                Ok(Err(_)) => return,
            }
        }
        let ask = ToBackend::Acked {
            gate: self.cluster.node_id().to_owned(),
        };
        let request = self.cluster.nats().request(subject, ask.encode());
        if let Ok(Ok(answer)) = tokio::time::timeout_at(deadline, request).await {
            let mut inflight = lock(&self.inflight);
            for seq in crate::cluster::backend::acks::read(&answer.payload) {
                inflight.remove(&seq);
            }
        }
    }

    /// Whether forwarded messages go out now.
    pub(super) fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the gate is ready, at most `request_timeout`: whether it is.
    pub(super) async fn wait_ready(&self) -> bool {
        let mut ready = self.ready.subscribe();
        let timeout = self.cluster.config().request_timeout;
        matches!(
            tokio::time::timeout(timeout, ready.wait_for(|r| *r)).await,
            Ok(Ok(_))
        )
    }

    /// Asks `fetch`'s node for the broadcasts (or commands) after its number, in a task of
    /// its own; what comes back is delivered in order (and may call for another request).
    pub(super) fn fetch_missing(&self, stream: Stream, fetch: Fetch) {
        let Some(link) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let answer = link.ask_replay(stream, &fetch).await;
            match stream {
                Stream::Groups => {
                    let next =
                        link.with_targets(None, |to| link.feed.replayed(fetch.src, answer, to));
                    if let Some(next) = next {
                        link.follow(next);
                    }
                }
                Stream::Commands => {
                    let mut order = lock(&link.commands);
                    let gone = answer.as_ref().is_none_or(|a| !a.known);
                    let ready = order.answered(fetch.src, answer);
                    link.apply_ready(ready);
                    if gone {
                        order.forget_if_idle(fetch.src);
                    }
                }
            }
        });
    }

    /// Publisher `fetch.src`'s broadcasts after `fetch.after`, from its node; `None` if it
    /// does not answer within `request_timeout` (asked again while it is not subscribed).
    async fn ask_replay(&self, stream: Stream, fetch: &Fetch) -> Option<ReplayAnswer> {
        let timeout = self.cluster.config().request_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let subject = self.cluster.subjects().replay(&fetch.node);
        let body = ReplayRequest {
            src: fetch.src,
            after: fetch.after,
            gate: match stream {
                Stream::Groups => String::new(),
                Stream::Commands => self.cluster.node_id().to_owned(),
            },
        }
        .encode();
        loop {
            let request = self.cluster.nats().request(subject.clone(), body.clone());
            let error = match tokio::time::timeout_at(deadline, request).await {
                Ok(Ok(reply)) => return ReplayAnswer::decode(reply.payload).ok(),
                Ok(Err(e)) => request_error(&fetch.node, timeout, e),
                Err(_) => ClusterError::Timeout(timeout),
            };
            if matches!(error, ClusterError::NoResponders(_))
                && tokio::time::Instant::now() + RETRY < deadline
            {
                tokio::time::sleep(RETRY).await;
                continue;
            }
            // A node that is gone: what it sent is lost (counted by the caller when known).
            tracing::debug!(node = %fetch.node, error = %error, "missed messages could not be asked for again");
            return None;
        }
    }

    /// `lost` broadcasts cannot be delivered any more: every connection in a group here
    /// hears of it (the application's `on_broadcast_loss`), as any of them may have missed
    /// some.
    pub(super) fn report_loss(&self, lost: u64) {
        metrics::counter!("longlink_cluster_broadcasts_lost_total").increment(lost);
        let Some(shared) = self.gate() else {
            return;
        };
        let members = shared.live.membership.all_members();
        tracing::warn!(
            lost,
            connections = members.len(),
            "group broadcasts missed in a NATS outage could not be sent again"
        );
        let Some(hook) = &self.on_loss else {
            return;
        };
        for agent in members.into_iter().filter_map(|c| shared.live.agent(c)) {
            let run = std::panic::AssertUnwindSafe(|| hook(&agent));
            if std::panic::catch_unwind(run).is_err() {
                crate::agent::logged::conn_event!(ERROR, agent, "on_broadcast_loss hook panicked");
            }
        }
    }
}

impl GateLink {
    /// Runs `f` with where the feed's broadcasts go (this gate's members, save connection
    /// `except`, and agents), once the gate has started and while it lives.
    pub(super) fn with_targets<R>(
        &self,
        except: Option<u64>,
        f: impl FnOnce(&super::feed::Targets<'_>) -> R,
    ) -> Option<R> {
        let shared = self.gate()?;
        let members = |token: &str| {
            let mut members = shared.live.membership.members_of_token(token);
            members.retain(|m| Some(*m) != except);
            members
        };
        let agent = |conn: u64| shared.live.agent(conn);
        Some(f(&super::feed::Targets {
            members: &members,
            agent: &agent,
        }))
    }

    /// What the feed asks for next: broadcasts to ask for again, losses to report.
    pub(super) fn follow(&self, next: super::feed::Next) {
        if next.lost > 0 {
            self.report_loss(next.lost);
        }
        if let Some(fetch) = next.fetch {
            self.fetch_missing(Stream::Groups, fetch);
        }
    }
}
