//! [`StopHandle`]: one shared "stop now" flag for an app and everything it runs (a leaf: every
//! layer may hold one; none of them needs the app itself).

use tokio_util::sync::CancellationToken;

/// Stops a running (or not yet running) [`App`](crate::App). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StopHandle(pub(crate) CancellationToken);

impl StopHandle {
    /// Asks the app to shut down. Idempotent; works before, during and after start-up.
    pub fn stop(&self) {
        self.0.cancel();
    }

    /// Whether stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0.is_cancelled()
    }
}
