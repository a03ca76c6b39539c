//! Where a value came from: each layer's figment metadata says which layer it is, a key's
//! line is found in the file's own parse, and an environment variable by its name.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::{ConfigError, Problem};

/// The layer a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An embedded layer (the application's default), numbered from 0.
    Embedded {
        /// Its place among the embedded layers.
        layer: usize,
    },
    /// An embedded layer that applies under a config file, numbered from 0.
    UnderFile {
        /// Its place among those layers.
        layer: usize,
    },
    /// The config file.
    File {
        /// The path as given.
        path: PathBuf,
        /// The line of the key (1-based), when it is found in the file.
        line: Option<usize>,
    },
    /// An environment variable.
    Env {
        /// The variable's name, e.g. `LONGLINK_GATE__MAX_CONN_NUM`.
        var: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Embedded { .. } => write!(f, "embedded default"),
            Origin::UnderFile { .. } => write!(f, "default under a config file"),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}, line {line}", path.display()),
            Origin::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

/// The name a layer's values carry in figment: its [`Origin`] without line or variable.
fn source_of(origin: &Origin) -> Source {
    match origin {
        Origin::Embedded { layer } => Source::Custom(format!("embedded:{layer}")),
        Origin::UnderFile { layer } => Source::Custom(format!("under-file:{layer}")),
        Origin::File { path, .. } => Source::File(path.clone()),
        Origin::Env { .. } => Source::Custom("env".into()),
    }
}

/// `provider` with metadata that names `origin`, so each value it gives can be traced back.
pub(super) fn named<P: Provider>(provider: P, origin: &Origin) -> Named<P> {
    Named {
        provider,
        metadata: Metadata::from(origin.to_string(), source_of(origin)),
    }
}

/// A provider under a name of our choosing (figment names every TOML string alike).
pub(super) struct Named<P> {
    provider: P,
    metadata: Metadata,
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.provider.data()
    }
}

/// Where each value of a loaded configuration came from.
pub struct Origins {
    pub(super) figment: Figment,
    env_prefix: String,
    /// The config file's path and its parse with spans, for line numbers.
    file: Option<(PathBuf, String, toml_edit::ImDocument<String>)>,
}

impl fmt::Debug for Origins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Origins")
            .field("env_prefix", &self.env_prefix)
            .field("file", &self.file.as_ref().map(|(path, ..)| path))
            .finish()
    }
}

impl Origins {
    pub(super) fn new(env_prefix: &str) -> Origins {
        Origins {
            figment: Figment::new(),
            env_prefix: env_prefix.to_owned(),
            file: None,
        }
    }

    /// Keeps the file's text and parse; a file that is not TOML is an error naming its line.
    pub(super) fn set_file(&mut self, path: &Path, text: &str) -> Result<Origin, ConfigError> {
        let doc = toml_edit::ImDocument::parse(text.to_owned()).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((None, None), |span| line_column(text, span.start));
            let at = column.map_or(String::new(), |c| format!(" at column {c}"));
            ConfigError::Bad(vec![Problem {
                key: String::new(),
                message: format!("TOML parse error{at}: {}", e.message().trim_end()),
                origin: Some(Origin::File {
                    path: path.to_owned(),
                    line,
                }),
            }])
        })?;
        self.file = Some((path.to_owned(), text.to_owned(), doc));
        Ok(Origin::File {
            path: path.to_owned(),
            line: None,
        })
    }

    /// The origin of the value at `key` (`gate.max_conn_num`), or `None` when no layer sets
    /// it (the type's own default applies).
    pub fn of(&self, key: &str) -> Option<Origin> {
        let metadata = self.figment.find_metadata(key)?;
        self.of_metadata(metadata, key)
    }

    /// The origin a layer's metadata names, with the line or variable of `key` in it.
    pub(super) fn of_metadata(&self, metadata: &Metadata, key: &str) -> Option<Origin> {
        match metadata.source.as_ref()? {
            Source::File(path) => Some(Origin::File {
                path: path.clone(),
                line: self.line_of(key),
            }),
            Source::Custom(name) if name == "env" => Some(Origin::Env {
                var: self.env_var(key),
            }),
            Source::Custom(name) => {
                let (kind, layer) = name.split_once(':')?;
                let layer = layer.parse().ok()?;
                match kind {
                    "embedded" => Some(Origin::Embedded { layer }),
                    "under-file" => Some(Origin::UnderFile { layer }),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The line of `key` in the config file: of the key itself, or of the deepest table on
    /// its path that the file has.
    fn line_of(&self, key: &str) -> Option<usize> {
        let (_, text, doc) = self.file.as_ref()?;
        let mut table: &dyn toml_edit::TableLike = doc.as_table();
        let mut found = None;
        for part in key.split('.') {
            let Some((k, item)) = table.get_key_value(part) else {
                break;
            };
            if let Some(span) = k.span().or_else(|| item.span()) {
                found = Some(span.start);
            }
            match item.as_table_like() {
                Some(inner) => table = inner,
                None => break,
            }
        }
        line_column(text, found?).0
    }

    /// The environment variable that sets `key`: the one figment read, found again by the
    /// same rule (prefix, `__` between parts, any case).
    fn env_var(&self, key: &str) -> String {
        let prefix = self.env_prefix.to_ascii_uppercase();
        for (name, _) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            let trimmed = name.trim();
            let upper = trimmed.to_ascii_uppercase();
            let Some(rest) = upper.strip_prefix(&prefix) else {
                continue;
            };
            if rest.contains("__") && rest.replace("__", ".").eq_ignore_ascii_case(key) {
                return name.to_owned();
            }
        }
        format!("{prefix}{}", key.replace('.', "__").to_ascii_uppercase())
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (Option<usize>, Option<usize>) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (Some(line), Some(column))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(text: &str) -> Origins {
        let mut origins = Origins::new("ORIGIN_TEST_");
        origins.set_file(Path::new("t.toml"), text).expect("TOML");
        origins
    }

    #[test]
    fn keys_are_found_on_their_lines() {
        let o = origins(
            "# top\n[gate]\nmax_conn_num = 1\n\n[gate.inner]\nx = 2\n[chat]\ninline = { a = 1, b = 2 }\n\
             [log]\nlevel.deep = 3\n",
        );
        for (key, line) in [
            ("gate", Some(2)),
            ("gate.max_conn_num", Some(3)),
            ("gate.inner", Some(5)),
            ("gate.inner.x", Some(6)),
            ("chat.inline.b", Some(8)),
            ("log.level.deep", Some(10)),
            // A key the file lacks: the deepest table it has.
            ("gate.missing", Some(2)),
            ("nowhere", None),
        ] {
            assert_eq!(o.line_of(key), line, "{key}");
        }
    }

    #[test]
    fn a_file_that_is_not_toml_names_its_line_and_column() {
        let mut o = Origins::new("ORIGIN_TEST_");
        let err = o
            .set_file(Path::new("t.toml"), "[gate]\nmax_conn_num = 1\nx = = 2\n")
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("TOML parse error at column 5"), "{text}");
        assert!(text.ends_with("(from t.toml, line 3)"), "{text}");
    }
}
