//! One uid wherever it is in the cluster: the directory says which gate holds it
//! ([`Cluster::locate`]), and that gate is sent a command for its connection (push, kick,
//! goodbye).

use super::wire::ToGate;
use super::{Cluster, ClusterError};
use crate::codec::Encoded;

impl Cluster {
    /// Where `uid` is connected: the gate node's id, if it is online anywhere.
    pub async fn locate(&self, uid: u64) -> Result<Option<String>, ClusterError> {
        Ok(self.holder(uid).await?.map(|h| h.gate))
    }

    /// Queues `msg` on `uid`'s connection, wherever in the cluster it is.
    /// [`ClusterError::NotOnline`] if the directory has no such uid.
    pub async fn push_uid(&self, uid: u64, msg: &Encoded) -> Result<(), ClusterError> {
        let payload = msg.bytes().clone();
        self.tell_holder(uid, |conn| ToGate::PushUid { conn, uid, payload })
            .await
    }

    /// Writes `msg` (if given) to `uid`'s connection, wherever it is, then closes it.
    pub async fn kick_uid(&self, uid: u64, msg: Option<&Encoded>) -> Result<(), ClusterError> {
        let payload = msg.map(|m| m.bytes().clone()).unwrap_or_default();
        self.tell_holder(uid, |conn| ToGate::KickUid { conn, uid, payload })
            .await
    }

    /// Kicks `uid`'s connection, wherever it is, with the application's goodbye: the gate
    /// that holds it runs its `on_goodbye` hook with
    /// [`Goodbye::Kicked`](crate::gate::Goodbye::Kicked)`(reason)`, flushes, then closes.
    pub async fn goodbye_uid(&self, uid: u64, reason: &str) -> Result<(), ClusterError> {
        let reason = reason.to_owned();
        self.tell_holder(uid, |conn| ToGate::Goodbye { conn, uid, reason })
            .await
    }

    /// Sends the gate that holds `uid` the command `make` builds for its connection.
    async fn tell_holder(
        &self,
        uid: u64,
        make: impl FnOnce(u64) -> ToGate,
    ) -> Result<(), ClusterError> {
        let holder = self
            .holder(uid)
            .await?
            .ok_or(ClusterError::NotOnline(uid))?;
        self.send_to_gate(&holder.gate, &make(holder.conn));
        Ok(())
    }
}
