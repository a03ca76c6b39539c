//! The effective configuration as TOML, each key with its origin as a trailing comment.

use serde::Serialize;
use toml_edit::{DocumentMut, Item, Table};

use super::{ConfigError, Origins};

/// `value` as TOML (the layout `toml` gives it: one `[section]` per table), every value
/// followed by `# <origin>`, or `# built-in default` when no layer sets it.
pub(super) fn to_toml<T: Serialize>(value: &T, origins: &Origins) -> Result<String, ConfigError> {
    let cannot = |e: &dyn std::fmt::Display| ConfigError::Invalid {
        key: String::new(),
        message: format!("cannot write the configuration as TOML: {e}"),
    };
    let text = toml::to_string(value).map_err(|e| cannot(&e))?;
    let mut doc: DocumentMut = text.parse().map_err(|e| cannot(&e))?;
    annotate(doc.as_table_mut(), &mut Vec::new(), origins);
    Ok(doc.to_string())
}

fn annotate(table: &mut Table, path: &mut Vec<String>, origins: &Origins) {
    for (key, item) in table.iter_mut() {
        path.push(key.get().to_owned());
        match item {
            Item::Value(value) => {
                let origin = origins
                    .of(&path.join("."))
                    .map_or_else(|| "built-in default".to_owned(), |o| o.to_string());
                value.decor_mut().set_suffix(format!(" # {origin}"));
            }
            Item::Table(inner) => annotate(inner, path, origins),
            Item::ArrayOfTables(tables) => {
                for inner in tables.iter_mut() {
                    annotate(inner, path, origins);
                }
            }
            Item::None => {}
        }
        path.pop();
    }
}
