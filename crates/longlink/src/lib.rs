//! # longlink
//!
//! A long-connection server framework for game, chat and push servers, wire-compatible with
//! the Go framework leaf: one process serves TCP and WebSocket side by side, decodes JSON and
//! protobuf messages into registered Rust types, routes each to the module that handles it,
//! and pushes replies and broadcasts back.
//!
//! ## Layout
//!
//! The modules form layers: each one uses only those above it in this list (the test command
//! checks it with `scripts/check-layers.py`). Where a lower layer must reach a higher one, it
//! defines a small trait that the higher one implements.
//!
//! - leaves: [`config`] (TOML with an embedded default and environment overrides; every
//!   value's origin), [`metrics`] (Prometheus names and handles), [`shutdown`]
//!   ([`StopHandle`](shutdown::StopHandle)).
//! - `log` (feature `log`): `[log]` and the subscriber a binary installs.
//! - [`timer`]: timer tables and cron expressions, for modules.
//! - [`module`]: actors with their own task and state; calls between them ([`ModuleRef`]).
//! - [`codec`]: one gate's messages as bytes: the registry of [`wire`] (`longlink-wire`, the
//!   crate the client shares: framing, registry, `Encoding`, `Transport`) in one encoding.
//! - [`agent`]: one connection as the application sees it: write, close, destroy, user data;
//!   its outgoing queue; `ConnLink`, the trait through which the cluster hears of it.
//! - [`processor`]: registration and destinations (handler, module, raw, forward); the
//!   router every connection shares; `Forwarder`, the trait the cluster forwards through.
//! - [`gate`]: the TCP and WebSocket listeners, admission, handshakes, the liveness sweep,
//!   one task per connection; `ClusterLink`, the trait a cluster implements to join in.
//! - [`cluster`]: several processes as one over NATS: forwarding, remote calls, push by uid.
//! - [`session`]: uid to agent, one login per uid; groups (rooms) with encode-once broadcast.
//! - [`admin`]: `/metrics`, `/healthz` and an admin console (`[admin]`).
//! - [`app`]: runs modules and gates, shuts down on SIGINT/SIGTERM or `StopHandle::stop`.
//!
//! The root re-exports the names a server needs; everything else is reached through its
//! module (`longlink::gate::Goodbye`, `longlink::agent::Transport`, ...).
//!
//! ## Features
//!
//! All on by default; without them the gate, modules, sessions and metrics remain.
//!
//! - `cluster`: [`cluster`] on NATS (async-nats), `App::backend`, `Groups::in_cluster`.
//! - `admin`: [`admin`]: `/metrics`, `/healthz`, the server API and the console (axum,
//!   hyper); takes `cluster` with it, as its API reaches across the cluster.
//! - `profiler`: the console's `cpuprof` (pprof); takes `admin` with it.
//! - `log`: `longlink::log`, `[log]` settings and [`log::init`], the
//!   subscriber for a binary (text or JSON lines on stderr), on tracing-subscriber.
//! - `tls`: TLS on the listeners (rustls with ring); without it, `tls_tcp` or `tls_ws` is an
//!   error at bind.
//!
//! ## Platforms
//!
//! Linux, where it is built and tested; other Unix systems should work but are not tested.
//! Two parts are Unix only (`cfg(unix)`): raising the open-file limit to `max_conn_num` at
//! bind (`RLIMIT_NOFILE`), and stopping on SIGTERM (elsewhere [`App`] stops on Ctrl-C only).
//! Nothing is built or tested on Windows.
//!
//! ## A server in a few lines
//!
//! ```no_run
//! use longlink::{Agent, App, Encoding, Gate, GateConfig, Module, Processor};
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
//!     processor.route(&game.module_ref(), |greeted: &mut u64, msg: Hello, agent: &Agent| {
//!         *greeted += 1;
//!         let _ = agent.write(&Hello { name: format!("hello {} (#{greeted})", msg.name) });
//!     })?;
//!     let config = GateConfig { tcp_addr: "127.0.0.1:3563".into(), ..GateConfig::default() };
//!     let gate = Gate::builder(config, processor).bind().await?;
//!     App::new().module(game).gate(gate).run().await?;
//!     Ok(())
//! }
//! ```

// Without the cluster or the admin console, what only they call is unused; the default
// build (every feature) is the one the lints hold to.
#![cfg_attr(
    not(all(feature = "cluster", feature = "admin")),
    allow(dead_code, unused_imports)
)]

#[cfg(feature = "admin")]
pub mod admin;
pub mod agent;
pub mod app;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod codec;
pub mod config;
pub mod gate;
#[cfg(feature = "log")]
pub mod log;
pub mod metrics;
pub mod module;
pub mod processor;
pub mod session;
pub mod shutdown;
pub mod timer;

pub use longlink_wire as wire;

pub use agent::Agent;
pub use app::App;
pub use codec::Encoded;
pub use gate::{Gate, GateConfig};
pub use longlink_wire::Encoding;
pub use module::{Ctx, Module, ModuleRef};
pub use processor::Processor;
pub use session::{Groups, Sessions};
