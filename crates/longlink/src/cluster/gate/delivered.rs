//! The gate's reports of the commands it has applied: about once a second, to every node
//! whose commands it applied since the last report, the last number applied
//! (`P.delivered.<node>`). The node keeps its commands to this gate for a gate that missed
//! some (`cluster::groupseq`); what is reported applied it keeps no longer.

use std::collections::HashMap;
use std::time::Duration;

use super::{GateLink, lock};
use crate::cluster::wire::ReplayRequest;

/// How often a gate reports what it has applied.
const EVERY: Duration = Duration::from_secs(1);

impl GateLink {
    /// Reports every [`EVERY`] what was applied since, until the gate stops.
    pub(super) async fn delivered_loop(&self) {
        let mut reported: HashMap<u64, u64> = HashMap::new();
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = every.tick() => {}
            }
            if !self.is_ready() {
                // Through an outage the gate asks for what it missed (`outage`).
                continue;
            }
            for (node, report) in self.news(&mut reported) {
                let subject = self.cluster.subjects().delivered(&node);
                let _ = self.cluster.nats().publish(subject, report.encode()).await;
            }
        }
    }

    /// The reports due: per publisher whose mark moved since `reported`, its node and the
    /// report. `reported` keeps only publishers still heard.
    fn news(&self, reported: &mut HashMap<u64, u64>) -> Vec<(String, ReplayRequest)> {
        let order = lock(&self.commands);
        let mut due = Vec::new();
        let mut heard = HashMap::with_capacity(reported.len());
        for (src, node, mark) in order.marks_by_node() {
            heard.insert(src, mark);
            if reported.get(&src) != Some(&mark) {
                due.push((
                    node.to_owned(),
                    ReplayRequest {
                        src,
                        after: mark,
                        gate: self.cluster.node_id().to_owned(),
                    },
                ));
            }
        }
        *reported = heard;
        due
    }
}
