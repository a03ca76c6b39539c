//! Bounds on a test: on its whole body, on one wait, on a server's stop.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// Bound on a single wait inside a test: one reply, one close, one condition.
pub const STEP: Duration = Duration::from_secs(5);

/// Runs a test body; panics if it has not finished within `limit`.
pub async fn bounded<F: Future<Output = ()>>(limit: Duration, body: F) {
    tokio::time::timeout(limit, body)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {limit:?}"));
}

/// Polls `cond` every 5 ms until it holds, for at most [`STEP`]; panics naming `what`
/// otherwise.
pub async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + STEP;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits for a server's task (an app's `run()`, spawned) to end, within `limit`, and asserts
/// that it ended well: no timeout, no panic, `Ok`.
pub async fn stops_within<E: Display>(limit: Duration, task: JoinHandle<Result<(), E>>) {
    match tokio::time::timeout(limit, task).await {
        Err(_) => panic!("the server did not stop within {limit:?}"),
        Ok(Err(e)) => panic!("the server's task failed: {e}"),
        Ok(Ok(Err(e))) => panic!("the server stopped with an error: {e}"),
        Ok(Ok(Ok(()))) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_for_returns_once_the_condition_holds() {
        let mut n = 0;
        wait_for("three polls", || {
            n += 1;
            let done = n >= 3;
            async move { done }
        })
        .await;
        assert_eq!(n, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "test did not finish within")]
    async fn a_body_past_its_limit_panics() {
        bounded(Duration::from_millis(10), std::future::pending()).await;
    }

    #[tokio::test]
    async fn stops_within_accepts_ok_and_names_an_error() {
        stops_within(STEP, tokio::spawn(async { Ok::<(), String>(()) })).await;
        let failed = tokio::spawn(stops_within(
            STEP,
            tokio::spawn(async { Err::<(), _>("boom".to_owned()) }),
        ))
        .await
        .expect_err("an error is a panic");
        assert!(failed.is_panic());
    }
}
