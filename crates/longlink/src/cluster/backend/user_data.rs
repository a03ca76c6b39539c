//! How a connection's user data moves with it to another node: the type registered with
//! [`BackendBuilder::user_data`](super::BackendBuilder::user_data), as JSON.

use crate::agent::Agent;

/// The agent's user data, serialized, if it is of the registered type.
type Save = Box<dyn Fn(&Agent) -> Option<Result<Vec<u8>, String>> + Send + Sync>;
/// Deserializes user data and stores it with the agent.
type Restore = Box<dyn Fn(&Agent, &[u8]) -> Result<(), String> + Send + Sync>;

/// How a registered user data type is carried to another node.
pub(super) struct UserDataCodec {
    pub(super) save: Save,
    pub(super) restore: Restore,
}

impl UserDataCodec {
    pub(super) fn new<T>() -> UserDataCodec
    where
        T: serde::Serialize + serde::de::DeserializeOwned + std::any::Any + Send + Sync,
    {
        UserDataCodec {
            save: Box::new(|agent| {
                agent.with_user_data(|data: &mut T| {
                    serde_json::to_vec(&*data).map_err(|e| e.to_string())
                })
            }),
            restore: Box::new(|agent, bytes| {
                let data: T = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
                agent.set_user_data(data);
                Ok(())
            }),
        }
    }
}
