//! Configuration: TOML with an embedded default, a file on top, environment variables on top
//! of that. The server runs with no file at all.
//!
//! Environment variables are `PREFIX` + `SECTION__KEY` in upper case, e.g.
//! `LONGLINK_GATE__MAX_CONN_NUM=500` sets `[gate] max_conn_num = 500`.
//!
//! Every value remembers where it came from ([`Origin`]): an error names the file and line,
//! or the environment variable, that gave the bad value, and [`Loaded::to_toml`] prints the
//! effective configuration with each key's origin.
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
//! assert!(err.to_string().contains("embedded default"), "{err}");
//! ```

mod origin;
mod print;
pub mod secs;

use std::fmt;
use std::path::Path;

use figment::error::Kind;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Profile, Provider};
use serde::de::DeserializeOwned;

pub use origin::{Origin, Origins};

/// A configuration that cannot be used. The message names the key and, where one gave it,
/// the layer the bad value came from.
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
    /// Values with the wrong type, unknown keys, TOML that does not parse, or (from
    /// [`Loaded::check`]) a value out of range: each with its origin.
    #[error("bad config: {}", list(.0))]
    Bad(Vec<Problem>),
    /// A value is out of range. [`Loaded::check`] turns it into [`ConfigError::Bad`] with the
    /// value's origin.
    #[error("bad config: {key}: {message}")]
    Invalid {
        /// The key, e.g. `gate.len_msg_len`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// Each problem on a line of its own (one for [`ConfigError::Read`] and
    /// [`ConfigError::Invalid`]), without the `bad config: ` prefix.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Bad(problems) => problems.iter().map(ToString::to_string).collect(),
            ConfigError::Invalid { key, message } => vec![format!("{key}: {message}")],
            other => vec![other.to_string()],
        }
    }
}

fn list(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

/// One bad value: its key, what is wrong, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key, e.g. `gate.max_conn_num`; empty for a file that is not TOML.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// The layer that gave the value; `None` when no layer has it (a missing key).
    pub origin: Option<Origin>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(origin) = &self.origin {
            write!(f, " (from {origin})")?;
        }
        Ok(())
    }
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
    Ok(load_traced(embedded, under_file, file, env_prefix)?.value)
}

/// Like [`load_layers`], keeping where every value came from: for checks after loading
/// ([`Loaded::check`]) and for printing ([`Loaded::to_toml`]).
///
/// ```
/// use longlink::config::{self, Origin};
///
/// #[derive(Debug, serde::Deserialize, serde::Serialize)]
/// struct Config {
///     gate: longlink::GateConfig,
/// }
///
/// let loaded = config::load_traced::<Config>(&["[gate]\nmax_conn_num = 5\n"], &[], None, "DOCTEST_").unwrap();
/// assert_eq!(loaded.value.gate.max_conn_num, 5);
/// assert_eq!(loaded.origins.of("gate.max_conn_num"), Some(Origin::Embedded { layer: 0 }));
/// assert_eq!(loaded.origins.of("gate.tcp_addr"), None); // the type's own default
/// let err = loaded
///     .check(|c| if c.gate.max_conn_num < 10 {
///         Err(config::ConfigError::Invalid { key: "gate.max_conn_num".into(), message: "too few".into() })
///     } else {
///         Ok(())
///     })
///     .unwrap_err();
/// assert_eq!(err.to_string(), "bad config: gate.max_conn_num: too few (from embedded default)");
/// ```
pub fn load_traced<T: DeserializeOwned>(
    embedded: &[&str],
    under_file: &[&str],
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<Loaded<T>, ConfigError> {
    let mut figment = Figment::new();
    for (layer, text) in embedded.iter().enumerate() {
        figment = figment.merge(origin::named(
            Toml::string(text),
            &Origin::Embedded { layer },
        ));
    }
    let base = figment.clone();
    let mut origins = Origins::new(env_prefix);
    if let Some(path) = file {
        for (layer, text) in under_file.iter().enumerate() {
            figment = figment.merge(origin::named(
                Toml::string(text),
                &Origin::UnderFile { layer },
            ));
        }
        // Read it ourselves so a missing file is an error, not silently skipped.
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.display().to_string(),
            error,
        })?;
        let file_origin = origins.set_file(path, &text)?;
        figment = figment.merge(origin::named(Toml::string(&text), &file_origin));
    }
    // Only PREFIX + SECTION__KEY variables are settings, so other variables that happen to
    // share the prefix do not become unknown keys.
    figment = figment.merge(origin::named(
        Env::prefixed(env_prefix)
            .filter(|key| key.as_str().contains("__"))
            .split("__"),
        &Origin::Env { var: String::new() },
    ));
    origins.figment = figment;
    match extract_all(&origins, &base) {
        Ok(value) => Ok(Loaded { value, origins }),
        Err(problems) => Err(ConfigError::Bad(problems)),
    }
}

/// Most bad values named by one load.
const MAX_PROBLEMS: usize = 32;

/// The configuration, or every bad value in it (up to [`MAX_PROBLEMS`]). Deserializing stops
/// at the first bad value, so each one found is put back to its value in `base` (the
/// embedded layers), or taken out where `base` has none, and the whole is read again.
fn extract_all<T: DeserializeOwned>(origins: &Origins, base: &Figment) -> Result<T, Vec<Problem>> {
    let first = match origins.figment.extract() {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let mut problems: Vec<Problem> = first.into_iter().map(|e| problem(e, origins)).collect();
    let Some(mut data) = origins
        .figment
        .data()
        .ok()
        .and_then(|mut map| map.remove(&Profile::Default))
    else {
        return Err(problems);
    };
    let mut looked_at = 0;
    while problems.len() < MAX_PROBLEMS {
        let fresh = &problems[looked_at..];
        let put_back =
            |data: &mut Dict, p: &Problem| replace(data, &p.key, base.find_value(&p.key).ok());
        if fresh.is_empty() || !fresh.iter().all(|p| put_back(&mut data, p)) {
            break;
        }
        looked_at = problems.len();
        let Err(e) = Figment::from(Serialized::defaults(&data)).extract::<T>() else {
            break;
        };
        let more: Vec<Problem> = e
            .into_iter()
            .map(|e| problem(e, origins))
            .filter(|p| problems.iter().all(|known| known.key != p.key))
            .collect();
        problems.extend(more);
    }
    problems.truncate(MAX_PROBLEMS);
    Err(problems)
}

/// Sets the value at `key` (`gate.max_conn_num`) in `data` to `value`, or takes it out;
/// false if `data` has no value there.
fn replace(data: &mut Dict, key: &str, value: Option<Value>) -> bool {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut dict = data;
    for part in parts {
        match dict.get_mut(part) {
            Some(Value::Dict(_, inner)) => dict = inner,
            _ => return false,
        }
    }
    match (dict.get_mut(last), value) {
        (None, _) => false,
        (Some(slot), Some(value)) => {
            *slot = value;
            true
        }
        (Some(_), None) => dict.remove(last).is_some(),
    }
}

/// One of figment's errors as a [`Problem`]: its full key (an unknown key's own name
/// included) and the origin of the value at that key.
fn problem(e: figment::Error, origins: &Origins) -> Problem {
    let mut path = e.path.clone();
    if let Kind::UnknownField(field, _) = &e.kind
        && path.last() != Some(field)
    {
        path.push(field.clone());
    }
    let key = path.join(".");
    let origin = match &e.kind {
        Kind::MissingField(_) => None,
        _ => origins.of(&key).or_else(|| {
            e.metadata
                .as_ref()
                .and_then(|m| origins.of_metadata(m, &key))
        }),
    };
    Problem {
        key,
        message: e.kind.to_string(),
        origin,
    }
}

/// A loaded configuration with the origin of each of its values.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The configuration.
    pub value: T,
    /// Where each value came from.
    pub origins: Origins,
}

impl<T> Loaded<T> {
    /// Runs `check` (e.g. a `validate` method) on the value; a [`ConfigError::Invalid`] it
    /// returns comes back as [`ConfigError::Bad`] naming the origin of the key's value.
    pub fn check(
        self,
        check: impl FnOnce(&T) -> Result<(), ConfigError>,
    ) -> Result<Loaded<T>, ConfigError> {
        match check(&self.value) {
            Ok(()) => Ok(self),
            Err(ConfigError::Invalid { key, message }) => Err(ConfigError::Bad(vec![Problem {
                origin: self.origins.of(&key),
                key,
                message,
            }])),
            Err(other) => Err(other),
        }
    }
}

impl<T: serde::Serialize> Loaded<T> {
    /// The effective configuration as TOML, every key with its origin as a trailing comment
    /// (`max_conn_num = 500 # environment variable LONGLINK_GATE__MAX_CONN_NUM`). Loaded back
    /// as a file it gives the same configuration.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        print::to_toml(&self.value, &self.origins)
    }
}
