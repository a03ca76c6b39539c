//! An [`App`] running in its own task, for tests that start several (cluster nodes).

use longlink::App;
use longlink::shutdown::StopHandle;

use super::{STEP, stops_within};

/// A running app: stop it with [`Running::shutdown`].
pub struct Running {
    stop: StopHandle,
    task: tokio::task::JoinHandle<Result<(), longlink::app::AppError>>,
}

impl Running {
    /// Stops the app and waits (bounded) until it has finished.
    pub async fn shutdown(self) {
        self.stop.stop();
        stops_within(STEP * 2, self.task).await;
    }
}

/// Runs `app` (without signal handlers) in its own task.
pub fn run(app: App) -> Running {
    let app = app.handle_signals(false);
    let stop = app.stop_handle();
    Running {
        stop,
        task: tokio::spawn(app.run()),
    }
}
