//! `[log] format = "json"`: one object per line, `timestamp`, `level`, `target`, `message`,
//! `fields` (the fields of the spans the event is in, outermost first, then its own) and
//! `spans` (their names).

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// A span's fields, kept as the text of a JSON object.
pub(super) struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = Fields::new(Map::new(), false);
        fields.record(&mut visitor);
        writer.write_str(&Value::Object(visitor.fields).to_string())
    }

    fn add_fields(
        &self,
        current: &mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let known = match serde_json::from_str(&current.fields) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let mut visitor = Fields::new(known, false);
        fields.record(&mut visitor);
        current.fields = Value::Object(visitor.fields).to_string();
        Ok(())
    }
}

/// An event as one line of JSON.
pub(super) struct JsonEvent;

impl<S, N> FormatEvent<S, N> for JsonEvent
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // An event from the `log` crate (rustls) carries its real target in `log.*` fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut fields = Map::new();
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                spans.push(Value::from(span.name()));
                let extensions = span.extensions();
                let Some(formatted) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(map)) = serde_json::from_str(&formatted.fields) {
                    fields.extend(map);
                }
            }
        }
        let mut visitor = Fields::new(fields, true);
        event.record(&mut visitor);
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        writeln!(
            writer,
            "{{\"timestamp\":{},\"level\":{},\"target\":{},\"message\":{},\"fields\":{},\"spans\":{}}}",
            Value::from(timestamp),
            Value::from(meta.level().as_str()),
            Value::from(meta.target()),
            Value::from(visitor.message.unwrap_or_default()),
            Value::Object(visitor.fields),
            Value::Array(spans),
        )
    }
}

/// Collects fields as JSON values; an event's `message` apart.
struct Fields {
    fields: Map<String, Value>,
    /// Whether `message` is the event's message (else it is a field like any other).
    message_apart: bool,
    message: Option<String>,
}

impl Fields {
    fn new(fields: Map<String, Value>, message_apart: bool) -> Fields {
        Fields {
            fields,
            message_apart,
            message: None,
        }
    }

    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name.starts_with("log.") {
            return; // `log` records' metadata, already in `target`
        }
        if self.message_apart && name == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
            return;
        }
        self.fields.insert(name.to_owned(), value);
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What the subscriber wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(log: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields)
            .event_format(JsonEvent)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn an_event_carries_its_spans_fields_and_its_own() {
        let lines = lines_of(|| {
            let conn = tracing::debug_span!("conn", id = 7u64, remote = %"10.0.0.1:5", uid = tracing::field::Empty);
            let _entered = conn.enter();
            conn.record("uid", 42u64);
            let inner = tracing::debug_span!("login", id = "inner wins");
            inner.in_scope(|| {
                tracing::info!(ok = true, ratio = 0.5, why = ?Some("x"), "logged \"in\"\nnow");
            });
            tracing::warn!("bare");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let first = &lines[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "logged \"in\"\nnow");
        assert_eq!(
            first["fields"],
            serde_json::json!({
                "id": "inner wins", "remote": "10.0.0.1:5", "uid": 42,
                "ok": true, "ratio": 0.5, "why": "Some(\"x\")",
            })
        );
        assert_eq!(first["spans"], serde_json::json!(["conn", "login"]));
        assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
        let second = &lines[1];
        assert_eq!(second["message"], "bare");
        assert_eq!(
            second["fields"],
            serde_json::json!({"id": 7, "remote": "10.0.0.1:5", "uid": 42})
        );
        assert_eq!(second["spans"], serde_json::json!(["conn"]));
    }
}
