//! Nodes of a chat cluster in this process, over a real `nats-server`: one [`Node`] per
//! `longlink-chat` role, and the cluster walk-through's [`Layout`] (one chat node, two gates).

use std::net::SocketAddr;
use std::time::Duration;

use longlink_testkit::NatsServer;
use longlink_testkit::prometheus::{scrape, sum};
use tokio::time::Instant;

use super::*;

/// `S2C_Error.code` for "the chat service did not answer" (src/chat.rs).
pub const ERR_UNAVAILABLE: i32 = 5;

/// One node of the cluster, in this process.
pub struct Node {
    pub tcp: Option<SocketAddr>,
    /// The WebSocket listener, if the config has one (`start` leaves it off).
    pub ws: Option<SocketAddr>,
    /// The node's cluster connection (a NATS client for the tests too).
    pub cluster: Option<longlink::cluster::Cluster>,
    pub admin: Option<SocketAddr>,
    pub stop: longlink::shutdown::StopHandle,
    pub chat: Option<longlink::ModuleRef<longlink_chat::chat::Chat>>,
    task: Option<tokio::task::JoinHandle<Result<(), longlink::app::AppError>>>,
}

impl Node {
    pub async fn start(nats: &NatsServer, node_type: &str) -> Node {
        Self::start_with(nats, node_type, |_| {}).await
    }

    pub async fn start_with(
        nats: &NatsServer,
        node_type: &str,
        tweak: impl FnOnce(&mut longlink_chat::Config),
    ) -> Node {
        let mut config = longlink_chat::Config::load(None).expect("embedded config loads");
        config.gate.tcp_addr = "127.0.0.1:0".into();
        config.gate.ws_addr = String::new();
        config.admin.addr = "127.0.0.1:0".into(); // not the fixed default port: nodes run in parallel
        config.cluster.nats_url = nats.url();
        config.cluster.node_type = node_type.into();
        config.cluster.request_timeout = Duration::from_secs(1);
        config.chat.max_msgs_per_sec = 0; // bursts, as TestServer
        tweak(&mut config);
        let server = longlink_chat::build(config).await.expect("node builds");
        let stop = server.stop.clone();
        let task = tokio::spawn(server.app.handle_signals(false).run());
        Node {
            tcp: server.tcp_addr,
            ws: server.ws_addr,
            cluster: server.cluster,
            admin: server.admin_addr,
            stop,
            chat: server.chat,
            task: Some(task),
        }
    }

    pub async fn login(&self, uid: u64) -> Client {
        let mut c = self.connect().await;
        c.login_uid(uid).await;
        c
    }

    pub async fn connect(&self) -> Client {
        Client::connect(
            Transport::Tcp,
            Enc::Json,
            self.tcp.expect("a gate node listens"),
        )
        .await
    }

    /// Users logged in on this node's chat module.
    pub async fn online(&self) -> usize {
        let chat = self.chat.as_ref().expect("a chat node");
        chat.call(TIMEOUT, |ctx| ctx.online())
            .await
            .expect("chat answers")
    }

    /// The value of a metric (summed over its label sets) from this node's `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        sum(&scrape(self.admin.expect("admin listener")).await, name)
    }

    pub async fn shutdown(mut self) {
        self.stop.stop();
        let task = self.task.take().expect("running");
        longlink_testkit::stops_within(Duration::from_secs(15), task).await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// Logs in on a new connection, retrying while the gate has no chat node bound yet (a node
/// that just started may not have subscribed when the first client comes).
pub async fn login_when_ready(gate: &Node, uid: u64) -> Client {
    let mut c = gate.connect().await;
    login_until_served(&mut c, uid).await;
    c
}

/// Logs `c` in as `uid`, again while the answer is `S2C_Error{5}` (no chat node answered;
/// the connection stays open and binds afresh on its next message), within [`TIMEOUT`].
pub async fn login_until_served(c: &mut Client, uid: u64) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        c.send(&longlink_chat::msg::C2sUserLogin {
            token: token(uid),
            login_plat: 1,
        })
        .await;
        match c.recv().await {
            Reply::Login(l) if l.ret == 1 => {
                c.uid = Some(uid);
                return;
            }
            Reply::Error(e) if e.code == ERR_UNAVAILABLE && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("login as {uid}: {other:?}"),
        }
    }
}

/// The layout of the cluster walk-through (docs/cluster.md): one chat node, two gate nodes.
pub struct Layout {
    pub chat: Node,
    pub g1: Node,
    pub g2: Node,
}

impl Layout {
    pub async fn start(nats: &NatsServer) -> Layout {
        let chat = Node::start(nats, "chat").await;
        let g1 = Node::start(nats, "gate").await;
        let g2 = Node::start(nats, "gate").await;
        Layout { chat, g1, g2 }
    }

    pub async fn shutdown(self) {
        self.g1.shutdown().await;
        self.g2.shutdown().await;
        self.chat.shutdown().await;
    }
}
