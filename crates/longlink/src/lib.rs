//! # longlink
//!
//! A long-connection server framework for game, chat and push servers, wire-compatible with
//! the Go framework leaf: one process serves TCP and WebSocket side by side, decodes JSON and
//! protobuf messages into registered Rust types, routes each to the module that handles it,
//! and pushes replies and broadcasts back.
//!
//! ## Layout
//!
//! - [`codec`]: TCP length-prefix framing (1, 2 or 4 bytes, either byte order).
//! - [`processor`]: the message registry, JSON and protobuf payloads, handler / router / raw.
//! - [`gate`]: the TCP and WebSocket listeners, connection limit, per-connection reader and
//!   writer.
//! - [`agent`]: one connection as the application sees it: write, close, destroy, user data.
//! - [`module`]: actors with their own task and state; calls between them ([`ModuleRef`]).
//! - [`timer`]: timers and cron on a module's task.
//! - [`session`]: uid to agent, one login per uid; groups (rooms) with encode-once broadcast.
//! - [`app`]: runs modules and gates, shuts down on SIGINT/SIGTERM or [`StopHandle::stop`].
//! - [`admin`]: Prometheus metrics, a health check and an admin console (`[admin]`).
//! - [`cluster`]: several processes as one over NATS: forwarding, remote calls, push by uid.
//! - [`config`]: TOML configuration with an embedded default and environment overrides.
//!
//! ## A server in a few lines
//!
//! ```no_run
//! use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Module, Processor};
//!
//! #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
//! struct Hello {
//!     #[prost(string, tag = "1")]
//!     name: String,
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let game = Module::new("game", 0u64);
//!     let mut processor = Processor::new(Encoding::Json);
//!     processor.register::<Hello>()?;
//!     processor.route(&game.module_ref(), |n: &mut Ctx<u64>, msg: Hello, agent: &Agent| {
//!         **n += 1;
//!         let _ = agent.write(&Hello { name: format!("hello {} (#{})", msg.name, **n) });
//!     })?;
//!     let config = GateConfig { tcp_addr: "127.0.0.1:3563".into(), ..GateConfig::default() };
//!     let gate = Gate::builder(config, processor).bind().await?;
//!     App::new().module(game).gate(gate).run().await?;
//!     Ok(())
//! }
//! ```

pub mod admin;
pub mod agent;
pub mod app;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod gate;
pub mod module;
pub mod processor;
pub mod session;
pub mod timer;

pub use admin::{AdminConfig, AdminError, AdminServer};
pub use agent::{Agent, QueueFullPolicy, Transport, WriteError};
pub use app::{App, AppError, StopHandle};
pub use config::ConfigError;
pub use gate::{Gate, GateConfig, GateError, Goodbye};
pub use module::{CallError, Ctx, Module, ModuleRef};
pub use processor::{Encoded, Encoding, MessageOptions, Processor};
pub use session::{Group, Groups, Sessions};
