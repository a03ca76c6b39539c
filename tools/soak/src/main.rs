//! `longlink-soak`: the cluster fault soak (see the library's documentation).
//!
//! ```text
//! longlink-soak --chat-bin target/release/longlink-chat --nats-bin .venv/bin/nats-server \
//!     --clients 300 --phase-secs 30 --encoding json --assert all
//! ```
//!
//! Prints the summary table (Markdown) on stdout; exits 1 when a phase named by `--assert`
//! broke a guarantee, 2 when the run itself failed. SIGINT and SIGTERM end the run and
//! every process it started.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use longlink_client::Encoding;
use longlink_soak::{Options, Phase, run};

#[derive(Parser)]
#[command(
    name = "longlink-soak",
    version,
    about = "The cluster fault soak of longlink-chat"
)]
struct Cli {
    /// The longlink-chat binary (default: beside this one).
    #[arg(long)]
    chat_bin: Option<PathBuf>,
    /// The nats-server binary (default: $LONGLINK_NATS_SERVER, else .venv/bin/nats-server).
    #[arg(long)]
    nats_bin: Option<PathBuf>,
    /// Simulated users.
    #[arg(long, default_value_t = 300)]
    clients: usize,
    /// Rooms.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Gate nodes.
    #[arg(long, default_value_t = 3)]
    gates: usize,
    /// Chat nodes.
    #[arg(long, default_value_t = 2)]
    chat_nodes: usize,
    /// json or protobuf (every node the same).
    #[arg(long, default_value = "json")]
    encoding: Encoding,
    /// Messages per second per user.
    #[arg(long, default_value_t = 0.5)]
    rate: f64,
    /// The share of private messages.
    #[arg(long, default_value_t = 0.3)]
    private_share: f64,
    /// Seconds of chat per phase.
    #[arg(long, default_value_t = 30.0)]
    phase_secs: f64,
    /// Phases to run, in order: baseline, cuts, gates, chats, nats.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "baseline,cuts,gates,chats,nats"
    )]
    phases: Vec<Phase>,
    /// Phases whose guarantees must hold (exit 1 if not), or "all".
    #[arg(long, value_delimiter = ',')]
    assert: Vec<String>,
    /// Random cuts stay on from the cuts phase to the end.
    #[arg(long)]
    cuts_throughout: bool,
    /// The random cuts' budget in bytes to the client, MIN-MAX.
    #[arg(long, default_value = "2000-20000")]
    cut_bytes: String,
    /// Seconds NATS stays down.
    #[arg(long, default_value_t = 3.0)]
    nats_outage: f64,
    /// TOML lines for every gate's [gate] table (e.g. 'drain_spread = 1').
    #[arg(long, default_value = "")]
    gate_settings: String,
    /// TOML lines for every chat node's [chat] table.
    #[arg(long, default_value = "")]
    chat_settings: String,
    /// Seeds the users and the cuts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the nodes' configurations and logs here.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn options(cli: Cli) -> Result<(Options, Vec<Phase>), String> {
    let here = std::env::current_exe().map_err(|e| e.to_string())?;
    let chat_bin = cli
        .chat_bin
        .unwrap_or_else(|| here.with_file_name("longlink-chat"));
    let nats_bin = cli
        .nats_bin
        .or_else(|| std::env::var_os("LONGLINK_NATS_SERVER").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".venv/bin/nats-server"));
    let (min, max) = cli
        .cut_bytes
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .filter(|(a, b)| a <= b)
        .ok_or("--cut-bytes is MIN-MAX, MIN <= MAX")?;
    let assert = if cli.assert.iter().any(|a| a == "all") {
        cli.phases.clone()
    } else {
        let parsed: Result<Vec<Phase>, String> = cli.assert.iter().map(|a| a.parse()).collect();
        parsed?
    };
    let mut opts = Options::new(chat_bin, nats_bin);
    opts.clients = cli.clients;
    opts.rooms = cli.rooms;
    opts.gates = cli.gates;
    opts.chat_nodes = cli.chat_nodes;
    opts.encoding = cli.encoding;
    opts.rate = cli.rate;
    opts.private_share = cli.private_share;
    opts.phase_time = Duration::from_secs_f64(cli.phase_secs);
    opts.phases = cli.phases;
    opts.cut_bytes = (min, max);
    opts.cuts_throughout = cli.cuts_throughout;
    opts.nats_outage = Duration::from_secs_f64(cli.nats_outage);
    opts.gate_settings = cli.gate_settings;
    opts.chat_settings = cli.chat_settings;
    opts.seed = cli.seed;
    opts.dir = cli.dir;
    Ok((opts, assert))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (opts, assert) = match options(Cli::parse()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("longlink-soak: {e}");
            return ExitCode::from(2);
        }
    };
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("longlink-soak: no SIGTERM handler: {e}");
            return ExitCode::from(2);
        }
    };
    // The run is polled here, on the main thread, so its children's death signal holds.
    let report = tokio::select! {
        r = run(&opts) => r,
        _ = tokio::signal::ctrl_c() => return interrupted(),
        _ = term.recv() => return interrupted(),
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("longlink-soak: {e:#}");
            return ExitCode::from(2);
        }
    };
    println!("{}", report.table());
    let broken = report.broken(&assert);
    if broken.is_empty() {
        return ExitCode::SUCCESS;
    }
    for b in broken {
        eprintln!("longlink-soak: broken: {b}");
    }
    ExitCode::from(1)
}

/// The run was dropped (its processes killed, its directory removed).
fn interrupted() -> ExitCode {
    eprintln!("longlink-soak: interrupted");
    ExitCode::from(130)
}
