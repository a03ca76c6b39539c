//! `[log]`: how a server logs, and [`init`], the subscriber a binary installs with it.
//!
//! One line per event on stderr, as text (colour only when stderr is a terminal and
//! `NO_COLOR` is not set) or as JSON (one object per line: `timestamp`, `level`, `target`,
//! `message`, `fields`, `spans`). The fields of the spans an event happens in (the gate's
//! `conn` span: `id`, `transport`, `remote`) go with it: in text as `conn{id=3 ...}:`, in
//! JSON among its `fields`. The level is `[log] level` unless `RUST_LOG` is set.
//!
//! ```no_run
//! let config = longlink::log::LogConfig {
//!     format: longlink::log::LogFormat::Json,
//!     ..Default::default()
//! };
//! longlink::log::init(&config).expect("a logger");
//! tracing::info!(answer = 42, "started");
//! // {"timestamp":"...","level":"INFO","target":"...","message":"started","fields":{"answer":42},"spans":[]}
//! ```

mod json;

use std::io::IsTerminal;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

use crate::config::ConfigError;

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: `2026-12-06T04:51:10.123Z  INFO conn{id=3}: target: message key=value`.
    #[default]
    Text,
    /// For log pipelines: one JSON object per line.
    Json,
}

/// `[log]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `"text"` (default) or `"json"`.
    pub format: LogFormat,
    /// Which events are written, as `RUST_LOG` takes it: `"info"` (default), `"debug"`,
    /// `"warn,longlink::gate=debug"`. `RUST_LOG`, when set, wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl LogConfig {
    /// Checks `level`; the error names `log.level`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        EnvFilter::try_new(&self.level)
            .map(drop)
            .map_err(|e| ConfigError::Invalid {
                key: "log.level".into(),
                message: format!("{:?} is not a level or filter: {e}", self.level),
            })
    }
}

/// Why [`init`] could not install the subscriber.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// `[log] level` is not a filter.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A global subscriber is installed already.
    #[error("cannot install the logger: {0}")]
    Install(String),
}

/// Installs the global subscriber for `config`, writing to stderr. `RUST_LOG`, when set and
/// valid, gives the level instead of `[log] level` (when set and invalid, a warning says so and
/// `level` applies). Call once, early in `main`.
pub fn init(config: &LogConfig) -> Result<(), LogError> {
    config.validate()?;
    let (filter, rust_log_error) = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new(&config.level), Some(format!("{v:?}: {e}"))),
        },
        _ => (EnvFilter::new(&config.level), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Text => builder.with_ansi(colour(&std::io::stderr())).try_init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .fmt_fields(json::JsonFields)
            .event_format(json::JsonEvent)
            .try_init(),
    };
    installed.map_err(|e| LogError::Install(e.to_string()))?;
    if let Some(why) = rust_log_error {
        tracing::warn!("RUST_LOG ignored, [log] level applies: {why}");
    }
    Ok(())
}

/// Whether text written to `out` may carry colour: it is a terminal, and `NO_COLOR` is unset
/// or empty (<https://no-color.org>).
pub fn colour(out: &impl IsTerminal) -> bool {
    out.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
