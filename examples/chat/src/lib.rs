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
pub mod msg;
pub mod room;
pub mod token;

use std::net::SocketAddr;
use std::path::Path;

use longlink::{App, Gate, GateConfig, Module, ModuleRef, Processor, StopHandle};
use serde::{Deserialize, Serialize};

use crate::chat::Chat;

/// The embedded default configuration (`config/default.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

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
}

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[gate]`: listeners and limits.
    pub gate: GateConfig,
    /// `[chat]`: the chat module.
    pub chat: ChatConfig,
}

impl Config {
    /// The embedded default, then `file`, then `LONGLINK_*` environment variables; every
    /// value checked.
    pub fn load(file: Option<&Path>) -> Result<Config, longlink::ConfigError> {
        let config: Config = longlink::config::load(DEFAULT_CONFIG, file, ENV_PREFIX)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), longlink::ConfigError> {
        self.gate.validate()?;
        if self.chat.token_secret.is_empty() {
            return Err(longlink::ConfigError::Invalid {
                key: "chat.token_secret".into(),
                message: "must not be empty".into(),
            });
        }
        if self.chat.max_text_len == 0 {
            return Err(longlink::ConfigError::Invalid {
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
    /// The chat module, for looking inside (tests, tools).
    pub chat: ModuleRef<Chat>,
}

/// The processor for `encoding`, with every chat message registered and routed.
pub fn processor(config: &Config, chat: &ModuleRef<Chat>) -> anyhow::Result<Processor> {
    let mut p = Processor::new(config.gate.encoding);
    msg::register_all(&mut p)?;
    p.handle(login::heartbeat)?;
    p.route(chat, login::login)?;
    p.route(chat, room::watch)?;
    p.route(chat, room::message)?;
    Ok(p)
}

/// Builds the chat module and the gate and binds the listeners.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    config.validate()?;
    let module = Module::new("chat", Chat::new(&config.chat));
    let chat = module.module_ref();
    let processor = processor(&config, &chat)?;
    let gate = Gate::builder(config.gate.clone(), processor)
        .on_new_agent(&chat, chat::on_new_agent)
        .on_close_agent(&chat, chat::on_close_agent)
        .on_goodbye(chat::on_goodbye)
        .bind()
        .await?;
    let (tcp_addr, ws_addr) = (gate.tcp_addr(), gate.ws_addr());
    let app = App::new().module(module).gate(gate);
    let stop = app.stop_handle();
    Ok(Server {
        app,
        tcp_addr,
        ws_addr,
        stop,
        chat,
    })
}
