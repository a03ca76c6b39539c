//! The chat example server of longlink: token login, heartbeat, rooms and private messages,
//! over TCP and WebSocket at once, in JSON or protobuf (`[gate] encoding`).
//!
//! Run it with `cargo run --release -p longlink-chat` (TCP on 127.0.0.1:3563, WebSocket on
//! 127.0.0.1:3653); the protocol is in `proto/chat.proto`. It uses only longlink's public API.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let config = longlink_chat::Config::load(None)?;
//! let server = longlink_chat::build(config).await?;
//! println!("tcp {:?} ws {:?}", server.tcp_addr, server.ws_addr);
//! server.app.run().await?;
//! # Ok(()) }
//! ```

pub mod chat;
pub mod login;
pub mod manifest;
pub mod msg;
pub mod presence;
pub mod room;
pub mod rooms;
pub mod token;
pub mod web;

use std::net::SocketAddr;
use std::path::Path;

use longlink::cluster::{Backend, Cluster, ClusterConfig};
use longlink::shutdown::StopHandle;
use longlink::{App, Gate, GateConfig, Module, ModuleRef, Processor};
use serde::{Deserialize, Serialize};

use crate::chat::Chat;

/// The embedded default configuration (`config/default.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

/// Defaults that apply under a `--config` file instead of the embedded ones: development
/// conveniences off.
pub const FILE_DEFAULTS: &str = "[chat]\ndev_tokens = false\n";

/// Environment variables with this prefix override the configuration
/// (`LONGLINK_GATE__MAX_CONN_NUM=500`).
pub const ENV_PREFIX: &str = "LONGLINK_";

/// `[chat]`: the example's own settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    /// HS256 secret for login tokens.
    pub token_secret: String,
    /// Longest text of one message, in characters.
    pub max_text_len: usize,
    /// `C2S_Message`s one connection may send each second (the burst too); over it the
    /// message is answered with `S2C_Error{code: 9}` and not delivered. 0: no limit.
    #[serde(default = "default_max_msgs_per_sec")]
    pub max_msgs_per_sec: u32,
    /// Send `S2C_Typing` and `S2C_RoomInfo` as reliable messages, as every message was
    /// before delivery classes: for comparison runs only (a reader that falls behind is then
    /// cut off by `queue_full`, or holds its queue full). The manifest still states their
    /// own classes.
    #[serde(default)]
    pub presence_reliable: bool,
    /// Serve `GET /dev/token?uid=N` (a login token for any uid) on the WebSocket port, for
    /// the demo page. Development only: anyone who can reach the port can log in as anyone.
    #[serde(default)]
    pub dev_tokens: bool,
    /// The room table (a leaf record file, see [`rooms`]); `""`: every room is open. It
    /// may be a symlink (a Kubernetes ConfigMap's layout included): changes to what it
    /// resolves to are watched too.
    #[serde(default)]
    pub rooms_file: String,
    /// The most bytes the room table may hold (default 64 MiB). A longer file, or one that
    /// never ends, is refused at start-up, and on a reload is logged while the old table
    /// stays; at most this many bytes (plus one) are read. Anything but a regular file at
    /// `rooms_file` (a named pipe, a device) is refused the same way, whatever its size.
    #[serde(default = "default_rooms_file_max_bytes")]
    pub rooms_file_max_bytes: u64,
}

fn default_max_msgs_per_sec() -> u32 {
    msg::DEFAULT_MAX_MSGS_PER_SEC
}

fn default_rooms_file_max_bytes() -> u64 {
    longlink_recordfile::DEFAULT_MAX_BYTES
}

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[gate]`: listeners and limits.
    pub gate: GateConfig,
    /// `[chat]`: the chat module.
    pub chat: ChatConfig,
    /// `[cluster]`: off unless `nats_url` is set; `node_type` is `gate`, `chat` or `all`.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// `[admin]`: `/metrics` and `/healthz` on `addr`, the console on `console_addr`.
    #[serde(default)]
    pub admin: longlink::admin::AdminConfig,
    /// `[log]`: `format` (`"text"` or `"json"`) and `level` (`RUST_LOG` wins).
    #[serde(default)]
    pub log: longlink::log::LogConfig,
}

/// What this process runs, from `[cluster] node_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `gate`: client connections; chat messages go to a chat node over NATS.
    Gate,
    /// `chat`: the chat module for the cluster's gates; no listeners.
    Chat,
    /// `all` (the default): both in one process; with a cluster, it is also one of the
    /// cluster's gates and chat nodes.
    All,
}

impl Config {
    /// This process's role.
    pub fn role(&self) -> Role {
        match self.cluster.node_type.as_str() {
            "gate" => Role::Gate,
            "chat" => Role::Chat,
            _ => Role::All,
        }
    }
}

impl Config {
    /// The embedded default, then `file`, then `LONGLINK_*` environment variables; every
    /// value checked.
    ///
    /// `[chat] dev_tokens` is on in the embedded default only: with a file it is off unless
    /// the file (or `LONGLINK_CHAT__DEV_TOKENS`) turns it on.
    ///
    /// An error names the file and line, or the environment variable, of the bad value.
    pub fn load(file: Option<&Path>) -> Result<Config, longlink::config::ConfigError> {
        Ok(Config::load_traced(file)?.value)
    }

    /// [`Config::load`], keeping where each value came from (for `config print`).
    pub fn load_traced(
        file: Option<&Path>,
    ) -> Result<longlink::config::Loaded<Config>, longlink::config::ConfigError> {
        longlink::config::load_traced(&[DEFAULT_CONFIG], &[FILE_DEFAULTS], file, ENV_PREFIX)?
            .check(Config::validate)
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), longlink::config::ConfigError> {
        self.gate.validate()?;
        self.cluster.validate()?;
        self.log.validate()?;
        let invalid = |message: &str| longlink::config::ConfigError::Invalid {
            key: "cluster.node_type".into(),
            message: message.into(),
        };
        match self.cluster.node_type.as_str() {
            "all" => {}
            "gate" | "chat" if !self.cluster.enabled() => {
                return Err(invalid("gate and chat nodes need [cluster] nats_url"));
            }
            "gate" | "chat" => {}
            _ => return Err(invalid("must be \"gate\", \"chat\" or \"all\"")),
        }
        if self.chat.token_secret.is_empty() {
            return Err(longlink::config::ConfigError::Invalid {
                key: "chat.token_secret".into(),
                message: "must not be empty".into(),
            });
        }
        if self.chat.rooms_file_max_bytes == 0 {
            return Err(longlink::config::ConfigError::Invalid {
                key: "chat.rooms_file_max_bytes".into(),
                message: "must be at least 1".into(),
            });
        }
        if self.chat.max_text_len == 0 {
            return Err(longlink::config::ConfigError::Invalid {
                key: "chat.max_text_len".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// A chat server, bound and ready to run.
pub struct Server {
    /// Run it with `app.run().await`.
    pub app: App,
    /// The TCP address it listens on.
    pub tcp_addr: Option<SocketAddr>,
    /// The WebSocket address it listens on.
    pub ws_addr: Option<SocketAddr>,
    /// Stops it.
    pub stop: StopHandle,
    /// The chat module, for looking inside (tests, tools); `None` on a gate node.
    pub chat: Option<ModuleRef<Chat>>,
    /// The cluster connection, when `[cluster] nats_url` is set.
    pub cluster: Option<Cluster>,
    /// The bound `/metrics` and `/healthz` address, if `[admin] addr` is set.
    pub admin_addr: Option<SocketAddr>,
    /// The bound admin console address, if `[admin] console_addr` is set.
    pub console_addr: Option<SocketAddr>,
}

/// The processor for `encoding`, with every chat message registered: routed to the chat
/// module when it runs here (`chat`), else forwarded to the cluster's chat nodes. The
/// heartbeat is answered by the gate itself.
pub fn processor(config: &Config, chat: Option<&ModuleRef<Chat>>) -> anyhow::Result<Processor> {
    let mut p = Processor::new(config.gate.encoding);
    let (limit, all_reliable) = (config.chat.max_msgs_per_sec, config.chat.presence_reliable);
    msg::register_all_with(&mut p, limit, all_reliable)?;
    p.handle(login::heartbeat)?;
    if config.chat.max_msgs_per_sec > 0 {
        p.on_limited::<msg::C2sMessage>(room::too_fast)?;
    }
    match chat {
        Some(chat) => {
            p.route(chat, login::login)?;
            p.route(chat, room::watch)?;
            p.route(chat, room::message)?;
            p.route(chat, presence::typing)?;
        }
        None => {
            p.forward::<msg::C2sUserLogin>(CHAT_NODE_TYPE)?;
            p.forward::<msg::C2sUpdateWatchRoom>(CHAT_NODE_TYPE)?;
            p.forward::<msg::C2sMessage>(CHAT_NODE_TYPE)?;
            p.forward::<msg::C2sTyping>(CHAT_NODE_TYPE)?;
        }
    }
    Ok(p)
}

/// The node type that runs the chat module in a cluster.
pub const CHAT_NODE_TYPE: &str = "chat";

/// Builds what `[cluster] node_type` asks for (the chat module, the gate, or both; with a
/// cluster, connected to NATS) and binds the listeners.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    config.validate()?;
    let role = config.role();
    let cluster = if config.cluster.enabled() {
        Some(Cluster::connect(&config.cluster).await?)
    } else {
        None
    };
    let mut admin = longlink::admin::AdminServer::bind(&config.admin).await?;
    if let Some(cluster) = &cluster {
        admin = admin.cluster(cluster);
    }
    let (admin_addr, console_addr) = (admin.addr(), admin.console_addr());
    let mut app = App::new().admin(admin);
    let mut chat = None;
    if role != Role::Gate {
        let rooms = match config.chat.rooms_file.as_str() {
            "" => rooms::Rooms::open(),
            file => rooms::Rooms::load(Path::new(file), config.chat.rooms_file_max_bytes)?,
        };
        let state = Chat::new(&config.chat, cluster.as_ref()).with_rooms(rooms.clone());
        let module = Module::new("chat", state);
        let chat_ref = module.module_ref();
        rooms.notify(&chat_ref);
        if let Some(cluster) = &cluster {
            // This node serves the cluster's gates too.
            let backend = Backend::builder(
                cluster,
                CHAT_NODE_TYPE,
                processor(&config, Some(&chat_ref))?,
            )
            .on_new_agent(&chat_ref, chat::on_new_agent)
            .on_close_agent(&chat_ref, chat::on_close_agent)
            // A chat node that stops hands its users to another: logged in, in their rooms.
            .user_data::<chat::Conn>()
            .on_hand_off_agent(&chat_ref, chat::on_hand_off_agent)
            .on_adopt_agent(&chat_ref, chat::on_adopt_agent)
            .build()?;
            app = app.backend(backend);
        }
        app = app.module(module);
        app = app.console_stats(console_stats(chat_ref.clone()));
        chat = Some(chat_ref);
    }
    if role == Role::Chat {
        let stop = app.stop_handle();
        return Ok(Server {
            app,
            tcp_addr: None,
            ws_addr: None,
            stop,
            chat,
            cluster,
            admin_addr,
            console_addr,
        });
    }
    let processor = processor(&config, chat.as_ref())?;
    if config.chat.dev_tokens {
        tracing::warn!(
            "[chat] dev_tokens is on: GET /dev/token?uid=N hands out login tokens for any uid; \
             turn it off outside development"
        );
    }
    let mut gate = Gate::builder(config.gate.clone(), processor)
        .on_http(web::handler(&config.chat, config.gate.encoding))
        .serve_manifest(manifest::chat_descriptors())
        .on_goodbye(chat::on_goodbye);
    if let Some(chat_ref) = &chat {
        gate = gate
            .on_upgrade(login::on_upgrade(config.chat.token_secret.as_bytes()))
            .on_new_agent(chat_ref, chat::on_new_agent)
            .on_close_agent(chat_ref, chat::on_close_agent)
            // A session that resumes on another gate (this one stopping) takes its login
            // and room along to that gate's chat module.
            .user_data::<chat::Conn>()
            .on_hand_off_agent(chat_ref, chat::on_hand_off_agent)
            .on_adopt_agent(chat_ref, chat::on_adopt_agent);
    } else {
        gate = gate.on_upgrade(login::refuse_upgrade_login);
    }
    if let Some(cluster) = &cluster {
        gate = gate
            .cluster(cluster)
            .on_forward_error(chat::on_forward_error)
            .on_broadcast_loss(chat::on_broadcast_loss);
    }
    let gate = gate.bind().await?;
    let (tcp_addr, ws_addr) = (gate.tcp_addr(), gate.ws_addr());
    let app = app.gate(gate);
    let stop = app.stop_handle();
    Ok(Server {
        app,
        tcp_addr,
        ws_addr,
        stop,
        chat,
        cluster,
        admin_addr,
        console_addr,
    })
}

/// The console's `stats` lines of the chat module: users logged in, rooms watched.
fn console_stats(
    chat: ModuleRef<Chat>,
) -> impl Fn() -> longlink::admin::ConsoleFuture<Vec<(String, String)>> + Send + Sync + 'static {
    move || {
        let chat = chat.clone();
        Box::pin(async move {
            let asked = chat.call(std::time::Duration::from_secs(2), |ctx| {
                (ctx.online(), ctx.rooms.len())
            });
            match asked.await {
                Ok((sessions, rooms)) => vec![
                    ("sessions".to_owned(), sessions.to_string()),
                    ("rooms".to_owned(), rooms.to_string()),
                ],
                Err(e) => vec![("chat".to_owned(), format!("no answer: {e}"))],
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_file(text: &str) -> Config {
        let path = std::env::temp_dir().join(format!(
            "longlink-chat-config-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).unwrap();
        let config = Config::load(Some(&path));
        let _ = std::fs::remove_file(&path);
        config.unwrap()
    }

    #[test]
    fn dev_tokens_are_on_only_in_the_embedded_default_or_where_a_file_says_so() {
        assert!(Config::load(None).unwrap().chat.dev_tokens);
        assert!(!load_file("[gate]\nmax_conn_num = 5\n").chat.dev_tokens);
        assert!(load_file("[chat]\ndev_tokens = true\n").chat.dev_tokens);
        // The rest of [chat] still comes from the embedded default.
        let c = load_file("[chat]\nmax_text_len = 7\n");
        assert_eq!((c.chat.max_text_len, c.chat.dev_tokens), (7, false));
        assert_eq!(c.chat.token_secret, "longlink-dev-secret");
    }
}
