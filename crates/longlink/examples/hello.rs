//! The README's example server.
//!
//! Run: `cargo run -p longlink --example hello`, then send `00 18 {"Hello":{"name":"ann"}}` to 127.0.0.1:3563.

use longlink::{Agent, App, Encoding, Gate, GateConfig, Module, Processor};

#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
struct Hello {
    #[prost(string, tag = "1")]
    name: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A module is an actor: its own task and state; handlers get `&mut` state, no locks.
    let game = Module::new("game", 0u64);

    // Register message types, then route each to a module (or a handler on the reader).
    let mut processor = Processor::new(Encoding::Json);
    processor.register::<Hello>()?;
    processor.route(
        &game.module_ref(),
        |greeted: &mut u64, msg: Hello, agent: &Agent| {
            *greeted += 1;
            let _ = agent.write(&Hello {
                name: format!("hello {}, #{greeted}", msg.name),
            });
        },
    )?;

    // TCP and WebSocket side by side, leaf's settings.
    let config = GateConfig {
        tcp_addr: "127.0.0.1:3563".into(),
        ws_addr: "127.0.0.1:3653".into(),
        ..GateConfig::default()
    };
    let gate = Gate::builder(config, processor).bind().await?;

    // Runs until SIGINT/SIGTERM; then the gate flushes and closes, then modules stop.
    App::new().module(game).gate(gate).run().await?;
    Ok(())
}
