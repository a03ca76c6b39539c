//! `longlink-chat`: the chat example server.
//!
//! ```text
//! longlink-chat                      # TCP 127.0.0.1:3563, WebSocket 127.0.0.1:3653
//! longlink-chat --config chat.toml   # settings from a TOML file ([gate], [chat])
//! longlink-chat token --uid 42       # print a login token for uid 42 (dev secret)
//! longlink-chat manifest             # print the message manifest (JSON) for client code
//! longlink-chat config check FILE    # check a config file: exit 0, or 2 with every error
//! longlink-chat config print         # the effective config as TOML, each key's origin after it
//! ```
//!
//! With `--features dhat-heap` (development only) every heap allocation is tracked by dhat:
//! `kill -USR1` writes `dhat-heap.json` (in the working directory) with the heap live at
//! that moment by allocation site, and stops tracking; otherwise it is written at exit.
//! View it with dhat's `dh_view.html`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use longlink_chat::{Config, token};

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// jemalloc rather than glibc's malloc: every idle connection holds a few 128-byte-aligned
/// blocks (tokio's task cell and IO entry), and glibc leaves a free fragment before each.
#[cfg(all(feature = "jemalloc", not(feature = "dhat-heap")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options (its `malloc_conf`, a C string): a background thread returns freed
/// pages to the system once they have been free for the decay time (10 s), also while the
/// server is idle. Without it, jemalloc returns pages only while that arena allocates, so
/// memory freed after a burst (a `cpuprof` report: about 150 MB; a flood of large messages)
/// stays resident in an idle server. `prof:true,prof_active:false`: the heap profiler is
/// there but idle (no sampling, no cost) until `prof heap start` in the console or
/// `POST /debug/pprof/heap/start`. `_RJEM_MALLOC_CONF` in the environment overrides any of
/// them (`prof_active:true` samples from start-up).
#[cfg(all(feature = "jemalloc", not(feature = "dhat-heap")))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &u8 = &b"background_thread:true,prof:true,prof_active:false\0"[0];

#[derive(Parser)]
#[command(
    name = "longlink-chat",
    version,
    about = "longlink's chat example server"
)]
struct Cli {
    /// A TOML configuration file, merged over the embedded default.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a login token signed with the configured secret.
    Token {
        /// The user id.
        #[arg(long)]
        uid: u64,
        /// Seconds until it expires.
        #[arg(long, default_value_t = 86_400)]
        ttl: i64,
    },
    /// Print the message manifest: every message's name, protobuf id, direction and fields,
    /// as JSON, for generating client code.
    Manifest,
    /// Check or print the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load FILE (or --config) over the embedded default and the environment, as the server
    /// would: exit 0 if it is good, else 2 with each error (its file line or variable).
    Check {
        /// The TOML file to check; without it, --config.
        file: Option<PathBuf>,
    },
    /// Print the effective configuration (embedded default, --config, environment) as TOML:
    /// every key, each followed by a comment naming where its value came from.
    Print,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Config { command }) = &cli.command {
        return config_command(command, cli.config.as_deref());
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("longlink-chat: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = longlink::log::init(&config.log) {
        eprintln!("longlink-chat: {e}");
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Command::Token { uid, ttl }) => {
            let claims = token::Claims {
                uid,
                exp: longlink_chat::chat::now_unix().saturating_add(ttl),
            };
            println!(
                "{}",
                token::sign(config.chat.token_secret.as_bytes(), &claims)
            );
            ExitCode::SUCCESS
        }
        Some(Command::Manifest) => {
            print!(
                "{}",
                longlink_chat::manifest::to_json(&longlink_chat::manifest::chat())
            );
            ExitCode::SUCCESS
        }
        // Answered above, before the configuration is loaded (it may be the broken one).
        Some(Command::Config { command }) => config_command(&command, cli.config.as_deref()),
        None => serve(config),
    }
}

/// `config check` and `config print`: exit 0, or 2 with every error on a line of its own.
fn config_command(command: &ConfigCommand, config_flag: Option<&Path>) -> ExitCode {
    let file = match command {
        ConfigCommand::Check { file } => file.as_deref().or(config_flag),
        ConfigCommand::Print => config_flag,
    };
    let loaded = match Config::load_traced(file) {
        Ok(loaded) => loaded,
        Err(e) => {
            for line in e.lines() {
                eprintln!("longlink-chat: bad config: {line}");
            }
            return ExitCode::from(2);
        }
    };
    match command {
        ConfigCommand::Check { .. } => {
            let what = file.map_or("the embedded default".into(), |f| f.display().to_string());
            println!("{what}: ok");
            ExitCode::SUCCESS
        }
        ConfigCommand::Print => match loaded.to_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("longlink-chat: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// tokio's multi-thread runtime, or its current-thread one when this process may run on one
/// CPU only (`taskset`, a one-CPU container). On one CPU the multi-thread scheduler serves a
/// few connections over and over while others wait: at 1,000 ping-pong connections its p99 is
/// 155 ms against 11 ms on the current-thread runtime, at the same throughput (BENCHMARKS.md,
/// "Fairness at 1,000 connections").
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    if one_cpu {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    }
}

fn serve(config: Config) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("longlink-chat: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    #[cfg(feature = "dhat-heap")]
    let _profile = runtime.block_on(heap_profile::start());
    runtime.block_on(async {
        let server = match longlink_chat::build(config).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("longlink-chat: {e:#}");
                // A broken room table is a configuration error, like a bad setting.
                if e.downcast_ref::<longlink_recordfile::Error>().is_some() {
                    return ExitCode::from(2);
                }
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(tcp = ?server.tcp_addr, ws = ?server.ws_addr, "longlink-chat serving");
        match server.app.run().await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("longlink-chat: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The `dhat-heap` feature's profiler: written at the first SIGUSR1, or else at exit.
#[cfg(feature = "dhat-heap")]
mod heap_profile {
    use std::sync::Mutex;

    /// Frames kept per allocation site: enough to reach the connection task's code through
    /// the allocator, collection and tokio frames.
    const FRAMES: usize = 32;

    static PROFILER: Mutex<Option<dhat::Profiler>> = Mutex::new(None);

    /// Writes the profile when dropped (at exit), unless SIGUSR1 wrote it before.
    pub(crate) struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            write();
        }
    }

    /// Starts tracking every allocation; a task waits for SIGUSR1. Call on the runtime.
    pub(crate) async fn start() -> Guard {
        *lock() = Some(
            dhat::Profiler::builder()
                .trim_backtraces(Some(FRAMES))
                .build(),
        );
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::user_defined1()) {
                Ok(mut usr1) => {
                    tokio::spawn(async move {
                        if usr1.recv().await.is_some() {
                            write();
                        }
                    });
                }
                Err(e) => {
                    eprintln!("dhat: no SIGUSR1 handler ({e}); the profile is written at exit")
                }
            }
        }
        Guard
    }

    /// Writes `dhat-heap.json` once, with the heap live now, and stops tracking.
    fn write() {
        let profiler = lock().take();
        if profiler.is_some() {
            let stats = dhat::HeapStats::get();
            eprintln!(
                "dhat: live now: {} bytes in {} blocks",
                stats.curr_bytes, stats.curr_blocks
            );
        }
        drop(profiler);
    }

    fn lock() -> std::sync::MutexGuard<'static, Option<dhat::Profiler>> {
        PROFILER.lock().unwrap_or_else(|p| p.into_inner())
    }
}
