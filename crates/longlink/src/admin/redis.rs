//! The server API from a Redis channel (`[admin] redis_url`, `redis_channel`), the way
//! golib's chat example lets other services push: each message published on the channel is
//! one command, the HTTP API's body for that command with its name beside it:
//!
//! ```text
//! redis-cli PUBLISH longlink.api '{"command": "push", "uid": 42, "message": {"S2C_Message": {"text": "hi"}}}'
//! redis-cli PUBLISH longlink.api '{"command": "broadcast", "group": "room", "key": 7, "message": {..}}'
//! redis-cli PUBLISH longlink.api '{"command": "kick", "uid": 42, "reason": "banned"}'
//! ```
//!
//! A command runs exactly as over HTTP (in a cluster: through the directory to the gate that
//! holds the uid), one at a time, in the order published. Nothing is answered (Redis's
//! publish/subscribe has no reply): each result is logged (`debug`; a refused command at
//! `warn`) and counted in `longlink_redis_commands_total{command, result}`, where `result` is
//! `ok`, `not_online` (a push or a kick whose uid is not connected) or the HTTP API's error
//! `code` (`bad_body`, `bad_message`, `unknown_command`, ...). `longlink_redis_connected` is 1
//! while subscribed.
//!
//! The subscription needs no `api_key`: setting `redis_url` is the operator's choice to take
//! commands from whoever can publish on that Redis. When the connection drops (Redis
//! restarts), it reconnects by itself, after 100 ms and then up to every 5 s, and subscribes
//! again; what was published while it was away is lost (Redis keeps no message for an absent
//! subscriber).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::api::{Api, ApiError, Broadcast, Kick, Push, parse_body};

/// Counter: commands taken from Redis, by `command` and `result`.
pub const REDIS_COMMANDS: &str = "longlink_redis_commands_total";
/// Gauge: 1 while subscribed to the Redis channel, else 0.
pub const REDIS_CONNECTED: &str = "longlink_redis_connected";

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest a connection and its `SUBSCRIBE` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the commands come from: a checked URL and the channel.
#[derive(Clone)]
pub(crate) struct RedisSource {
    client: redis::Client,
    channel: String,
}

impl RedisSource {
    /// Checks `url` (`redis://host:port/db`); the connection is made when the app runs.
    pub(crate) fn new(url: &str, channel: &str) -> Result<RedisSource, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        Ok(RedisSource {
            client,
            channel: channel.to_owned(),
        })
    }
}

/// Subscribes and runs the commands until `stop`, reconnecting whenever the connection ends.
pub(crate) async fn serve(api: Arc<Api>, source: RedisSource, stop: CancellationToken) {
    let connected = ::metrics::gauge!(REDIS_CONNECTED);
    let mut backoff = MIN_BACKOFF;
    loop {
        let subscribed = tokio::select! {
            _ = stop.cancelled() => return,
            s = tokio::time::timeout(CONNECT_TIMEOUT, subscribe(&source)) => s,
        };
        match subscribed {
            Ok(Ok(mut pubsub)) => {
                tracing::info!(channel = %source.channel, "server API: subscribed to Redis");
                connected.set(1.0);
                backoff = MIN_BACKOFF;
                let mut messages = pubsub.on_message();
                loop {
                    let msg = tokio::select! {
                        _ = stop.cancelled() => {
                            connected.set(0.0);
                            return;
                        }
                        msg = messages.next() => msg,
                    };
                    let Some(msg) = msg else { break };
                    run(&api, msg.get_payload_bytes()).await;
                }
                connected.set(0.0);
                tracing::warn!("server API: the Redis connection ended; reconnecting");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "server API: cannot subscribe to Redis"),
            Err(_) => tracing::warn!("server API: Redis did not answer within 5 s"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(source: &RedisSource) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = source.client.get_async_pubsub().await?;
    pubsub.subscribe(&source.channel).await?;
    Ok(pubsub)
}

/// Runs one published command; logs and counts its result.
async fn run(api: &Api, payload: &[u8]) {
    let (command, result) = match split(payload) {
        Ok((command, body)) => {
            let result = execute(api, command, &body).await;
            (command, result)
        }
        Err((command, e)) => (command, Err(e)),
    };
    let label = match &result {
        Ok(true) => "ok",
        Ok(false) => "not_online",
        Err(e) => e.code,
    };
    if crate::metrics::enabled() {
        ::metrics::counter!(REDIS_COMMANDS, "command" => command, "result" => label).increment(1);
    }
    match result {
        Ok(done) => tracing::debug!(command, done, "server API command from Redis"),
        Err(e) => {
            tracing::warn!(command, code = e.code, error = %e.reason, "server API command from Redis refused")
        }
    }
}

/// The command's name (one of the three, else `"unknown"`) and the rest of the object as
/// the HTTP API's body.
fn split(payload: &[u8]) -> Result<(&'static str, Vec<u8>), (&'static str, ApiError)> {
    let bad = |e: &dyn std::fmt::Display| {
        (
            "unknown",
            ApiError::bad_request("bad_body", format!("body: {e}")),
        )
    };
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(payload).map_err(|e| bad(&e))?;
    let command = match object.remove("command") {
        Some(serde_json::Value::String(c)) => c,
        Some(_) => return Err(bad(&"command: not a string")),
        None => return Err(bad(&"missing field `command`")),
    };
    let command = match command.as_str() {
        "push" => "push",
        "broadcast" => "broadcast",
        "kick" => "kick",
        other => {
            let reason = format!("no command {other:?} (push, broadcast or kick)");
            return Err(("unknown", ApiError::bad_request("unknown_command", reason)));
        }
    };
    let body = serde_json::to_vec(&object)
        .map_err(|e| (command, ApiError::bad_request("bad_body", e.to_string())))?;
    Ok((command, body))
}

/// Runs `command` with `body`; `Ok(false)` when its uid is not online.
async fn execute(api: &Api, command: &str, body: &[u8]) -> Result<bool, ApiError> {
    match command {
        "push" => api.push(&parse_body::<Push>(body)?).await,
        "broadcast" => api
            .broadcast(&parse_body::<Broadcast>(body)?)
            .await
            .map(|_| true),
        _ => {
            let kick: Kick = parse_body(body)?;
            api.kick(kick.uid, &kick.reason).await.map(|n| n > 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn a_command_is_split_from_its_body() {
        let (command, body) = split(br#"{"command": "kick", "uid": 7}"#).unwrap();
        assert_eq!(
            (command, body.as_slice()),
            ("kick", br#"{"uid":7}"#.as_slice())
        );
        for (bad, code) in [
            (&br#"{"command": "reboot"}"#[..], "unknown_command"),
            (br#"{"uid": 7}"#, "bad_body"),
            (br#"{"command": 3}"#, "bad_body"),
            (b"not json", "bad_body"),
            (b"[1]", "bad_body"),
        ] {
            let (command, e) = split(bad).unwrap_err();
            assert_eq!((command, e.code), ("unknown", code), "{bad:?}");
        }
    }
}
