//! Events about one connection, with its fields on the event itself: `id`, `transport` and
//! `remote` (the client's address, after a PROXY header or a trusted forwarded header).
//!
//! The gate's `conn` span carries the same fields, but only when debug logging is on: an
//! enabled span in every connection's task costs memory in the subscriber's registry for as
//! long as the connection lives and an enter and an exit at every poll. The fields on the
//! event cost nothing until the event is logged, so every info, warn or error event about a
//! connection names it at the default level.

/// Logs an event at `$level` (`INFO`, `WARN`, `ERROR`, ...) about the connection `$agent` (an
/// [`Agent`](crate::agent::Agent) or a reference to one), with its `id`, `transport` and
/// `remote` before the event's own fields and message, as `tracing::event!` takes them.
macro_rules! conn_event {
    ($level:ident, $agent:expr, $($rest:tt)+) => {{
        let agent = &$agent;
        ::tracing::event!(
            ::tracing::Level::$level,
            id = agent.id(),
            transport = %agent.transport(),
            remote = %agent.remote_addr(),
            $($rest)+
        )
    }};
}

pub(crate) use conn_event;
