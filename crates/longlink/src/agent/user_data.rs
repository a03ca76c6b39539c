//! The application's value stored with a connection ([`Agent::set_user_data`], leaf's
//! `SetUserData`): one value of any type, behind the agent's own lock.

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
