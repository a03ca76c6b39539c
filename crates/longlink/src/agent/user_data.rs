//! The application's values stored with a connection: one value of any type, behind the
//! agent's own lock ([`Agent::set_user_data`], leaf's `SetUserData`), and those attached at
//! the WebSocket upgrade, fixed from then on ([`Agent::attached`]).

use std::any::Any;
use std::sync::MutexGuard;

use super::Agent;

impl Agent {
    /// Stores a value of any type with this connection, replacing what was there.
    pub fn set_user_data<T: Any + Send + Sync>(&self, data: T) {
        *self.lock_user_data() = Some(Box::new(data));
    }

    /// A copy of the stored value, if it is a `T`.
    pub fn user_data<T: Any + Clone>(&self) -> Option<T> {
        self.lock_user_data()
            .as_ref()
            .and_then(|d| d.downcast_ref::<T>())
            .cloned()
    }

    /// Runs `f` on the stored value, if it is a `T`, and returns what `f` returns.
    pub fn with_user_data<T: Any, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.lock_user_data()
            .as_mut()
            .and_then(|d| d.downcast_mut::<T>())
            .map(f)
    }

    /// The value of type `T` the application attached to this connection when it accepted
    /// its WebSocket upgrade ([`Accept::attach`](crate::gate::Accept::attach)); `None` for
    /// another type, a TCP connection, or a connection held by another node's gate (values
    /// do not cross the cluster). A resumed session keeps the values of the connection that
    /// began it.
    pub fn attached<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.inner.attached.get::<T>()
    }

    /// Every value attached at the upgrade.
    pub(crate) fn attached_values(&self) -> &http::Extensions {
        &self.inner.attached
    }

    /// Removes the stored value.
    pub fn clear_user_data(&self) {
        *self.lock_user_data() = None;
    }

    fn lock_user_data(&self) -> MutexGuard<'_, Option<Box<dyn Any + Send + Sync>>> {
        self.inner
            .user_data
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}
