//! The cluster under test: one NATS, gate slots (each a gate node behind two cutting
//! proxies, TCP and WebSocket, whose addresses the clients keep for the whole run) and chat
//! nodes; and the planned restarts: a gate or chat node replaced by a new process (the new
//! one started first, then the old one stopped), NATS killed and started again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use longlink_client::Transport;
use longlink_testkit::{Proxy, free_addr};

use crate::Options;
use crate::node::{Nats, Node};

/// How long a stopping node may take to exit.
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// One gate place: the node serving it now and the proxies in front of it.
struct Slot {
    node: Node,
    tcp: Proxy,
    ws: Proxy,
    generation: u32,
}

/// What a planned restart took: the new node's start and the old one's stop.
#[derive(Debug, Clone)]
pub(crate) struct Restart {
    /// The node replaced, e.g. `gate2-0`.
    pub(crate) old: String,
    pub(crate) start: Duration,
    pub(crate) stop: Duration,
    /// The old node's exit status, or why it had to be killed.
    pub(crate) exit: String,
}

/// The running cluster.
pub(crate) struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    encoding: String,
    extra_gate: String,
    extra_chat: String,
    pub(crate) nats: Nats,
    slots: Vec<Slot>,
    chats: Vec<(Node, u32)>,
}

impl Cluster {
    /// Starts NATS, the chat nodes, then the gates and their proxies.
    pub(crate) async fn start(opts: &Options, dir: &Path) -> Result<Cluster> {
        let nats = Nats::start(&opts.nats_bin, dir).await?;
        let mut cluster = Cluster {
            bin: opts.chat_bin.clone(),
            dir: dir.to_owned(),
            encoding: opts.encoding.to_string(),
            extra_gate: opts.gate_settings.clone(),
            extra_chat: opts.chat_settings.clone(),
            nats,
            slots: Vec::new(),
            chats: Vec::new(),
        };
        for i in 0..opts.chat_nodes {
            let node = cluster.start_chat(i, 0).await?;
            cluster.chats.push((node, 0));
        }
        for i in 0..opts.gates {
            let node = cluster.start_gate(i, 0).await?;
            let (tcp, ws) = (node.tcp.expect("a gate"), node.ws.expect("a gate"));
            let (tcp, ws) = (Proxy::start(tcp).await?, Proxy::start(ws).await?);
            cluster.slots.push(Slot {
                node,
                tcp,
                ws,
                generation: 0,
            });
        }
        Ok(cluster)
    }

    /// The `[cluster]` table of a node.
    fn cluster_toml(&self, node_type: &str, id: &str) -> String {
        format!(
            "[cluster]\nnats_url = \"{}\"\nnode_type = \"{node_type}\"\nnode_id = \"{id}\"\n",
            self.nats.url()
        )
    }

    async fn start_gate(&self, slot: usize, generation: u32) -> Result<Node> {
        let name = format!("gate{}-{generation}", slot + 1);
        let mut last = String::new();
        for _ in 0..3 {
            let (tcp, ws) = (free_addr(), free_addr());
            // Every client comes from 127.0.0.1: the per-address bounds would end sessions.
            let toml = format!(
                "[gate]\ntcp_addr = \"{tcp}\"\nws_addr = \"{ws}\"\nencoding = \"{}\"\n\
                 resume_window = 60\nmax_waiting_per_ip = 100000\nmax_conn_per_ip = 0\n{}\n\
                 [admin]\naddr = \"\"\n\n[chat]\ndev_tokens = false\n\n{}",
                self.encoding,
                self.extra_gate,
                self.cluster_toml("gate", &name)
            );
            match Node::start(&self.bin, &self.dir, &name, &toml, Some((tcp, ws))).await {
                Ok(node) => return Ok(node),
                Err(e) if e.to_string().contains("in use") => last = e.to_string(),
                Err(e) => return Err(e),
            }
        }
        bail!("{name} found no free ports: {last}")
    }

    async fn start_chat(&self, i: usize, generation: u32) -> Result<Node> {
        let name = format!("chat{}-{generation}", i + 1);
        let toml = format!(
            "[gate]\ntcp_addr = \"\"\nws_addr = \"\"\nencoding = \"{}\"\n\n[admin]\naddr = \"\"\n\n\
             [chat]\n{}\n\n{}",
            self.encoding,
            self.extra_chat,
            self.cluster_toml("chat", &name)
        );
        Node::start(&self.bin, &self.dir, &name, &toml, None).await
    }

    /// The address clients of `slot` use for `transport` (a proxy's).
    pub(crate) fn addr(&self, slot: usize, transport: Transport) -> SocketAddr {
        let s = &self.slots[slot];
        match transport {
            Transport::Ws => s.ws.addr(),
            _ => s.tcp.addr(),
        }
    }

    pub(crate) fn gates(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn chat_nodes(&self) -> usize {
        self.chats.len()
    }

    /// Every proxy: random cuts on (`Some((seed, min, max))`) or off.
    pub(crate) fn random_cuts(&self, cuts: Option<(u64, usize, usize)>) {
        for (i, s) in self.slots.iter().enumerate() {
            for (j, p) in [&s.tcp, &s.ws].into_iter().enumerate() {
                match cuts {
                    Some((seed, min, max)) => p.random_cuts(seed ^ (i * 2 + j) as u64, min, max),
                    None => p.no_random_cuts(),
                }
            }
        }
    }

    /// Resets every connection through the proxies.
    pub(crate) fn cut_all(&self) {
        for s in &self.slots {
            s.tcp.cut_all();
            s.ws.cut_all();
        }
    }

    /// Replaces the gate of `slot`: a new node on new ports, the proxies moved to it, then
    /// the old one stopped (SIGTERM) and waited for.
    pub(crate) async fn restart_gate(&mut self, slot: usize) -> Result<Restart> {
        let t0 = Instant::now();
        let generation = self.slots[slot].generation + 1;
        let node = self.start_gate(slot, generation).await?;
        let start = t0.elapsed();
        let s = &mut self.slots[slot];
        s.tcp.retarget(node.tcp.expect("a gate"))?;
        s.ws.retarget(node.ws.expect("a gate"))?;
        s.generation = generation;
        let mut old = std::mem::replace(&mut s.node, node);
        let t1 = Instant::now();
        let exit = stop(&mut old).await;
        Ok(Restart {
            old: old.proc.name.clone(),
            start,
            stop: t1.elapsed(),
            exit,
        })
    }

    /// Replaces chat node `i`: a new one started, then the old one stopped.
    pub(crate) async fn restart_chat(&mut self, i: usize) -> Result<Restart> {
        let t0 = Instant::now();
        let generation = self.chats[i].1 + 1;
        let node = self.start_chat(i, generation).await?;
        let start = t0.elapsed();
        let (mut old, _) = std::mem::replace(&mut self.chats[i], (node, generation));
        let t1 = Instant::now();
        let exit = stop(&mut old).await;
        Ok(Restart {
            old: old.proc.name.clone(),
            start,
            stop: t1.elapsed(),
            exit,
        })
    }
}

/// The warnings and errors in the logs of every node the run started (the old ones too).
pub(crate) fn log_warnings(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines() {
            if line.contains(" WARN ") || line.contains(" ERROR ") {
                out.push(format!("{name}: {line}"));
            }
        }
    }
    out.sort();
    out
}

/// Stops a node: its exit status, or why it had to be killed.
async fn stop(node: &mut Node) -> String {
    match node.stop(STOP_LIMIT).await {
        Ok(status) => status.to_string(),
        Err(e) => e.to_string(),
    }
}
