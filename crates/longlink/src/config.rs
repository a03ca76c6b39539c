//! Configuration: TOML with an embedded default, a file on top, environment variables on top
//! of that. The server runs with no file at all.
//!
//! Environment variables are `PREFIX` + `SECTION__KEY` in upper case, e.g.
//! `LONGLINK_GATE__MAX_CONN_NUM=500` sets `[gate] max_conn_num = 500`.
//!
//! ```
//! use longlink::GateConfig;
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct Config {
//!     gate: GateConfig,
//! }
//!
//! let config: Config = longlink::config::load("[gate]\ntcp_addr = \"127.0.0.1:3563\"\n", None, "DOCTEST_").unwrap();
//! assert_eq!(config.gate.tcp_addr, "127.0.0.1:3563");
//! assert_eq!(config.gate.len_msg_len, 2);
//!
//! let err = longlink::config::load::<Config>("[gate]\nmax_conn_num = \"many\"\n", None, "DOCTEST_").unwrap_err();
//! assert!(err.to_string().contains("gate.max_conn_num"), "{err}");
//! ```

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;

/// A configuration that cannot be used. The message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {error}")]
    Read {
        /// The path given.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// A value has the wrong type, a key is unknown, or the TOML does not parse.
    #[error("bad config: {0}")]
    Parse(String),
    /// A value is out of range.
    #[error("bad config: {key}: {message}")]
    Invalid {
        /// The key, e.g. `gate.len_msg_len`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Loads `T` from the embedded default TOML, then `file` (if any), then environment variables
/// starting with `env_prefix` (sections and keys separated by `__`).
pub fn load<T: DeserializeOwned>(
    embedded: &str,
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, ConfigError> {
    load_layers(&[embedded], &[], file, env_prefix)
}

/// Like [`load`], with several embedded layers, each merged over the one before, and
/// `under_file`: layers that apply only when a file is given, just under it (defaults that
/// differ for a configured deployment, e.g. development conveniences that only the
/// embedded default turns on).
pub fn load_layers<T: DeserializeOwned>(
    embedded: &[&str],
    under_file: &[&str],
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, ConfigError> {
    let mut figment = Figment::new();
    for layer in embedded {
        figment = figment.merge(Toml::string(layer));
    }
    if let Some(path) = file {
        for layer in under_file {
            figment = figment.merge(Toml::string(layer));
        }
        // Read it ourselves so a missing file is an error, not silently skipped.
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.display().to_string(),
            error,
        })?;
        figment = figment.merge(Toml::string(&text));
    }
    // Only PREFIX + SECTION__KEY variables are settings, so other variables that happen to
    // share the prefix do not become unknown keys.
    figment = figment.merge(
        Env::prefixed(env_prefix)
            .filter(|key| key.as_str().contains("__"))
            .split("__"),
    );
    figment.extract().map_err(|e| {
        let messages: Vec<String> = e
            .into_iter()
            .map(|e| {
                let key = e.path.join(".");
                if key.is_empty() {
                    e.kind.to_string()
                } else {
                    format!("{key}: {}", e.kind)
                }
            })
            .collect();
        ConfigError::Parse(messages.join("; "))
    })
}

/// Durations as a number of seconds (`http_timeout = 10`, `0.5`), for `#[serde(with = ..)]`.
pub(crate) mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(|_| {
            serde::de::Error::custom(format!("{secs} is not a number of seconds >= 0"))
        })
    }
}
