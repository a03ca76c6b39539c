//! How a connection's user data is carried to another node: the type an application
//! registers ([`BackendBuilder::user_data`](crate::cluster::BackendBuilder::user_data) for a
//! backend's connections moving to another backend,
//! [`GateBuilder::user_data`](crate::gate::GateBuilder::user_data) for sessions moving to
//! another gate), as JSON.

use super::Agent;

/// The agent's user data, serialized, if it is of the registered type.
type Save = Box<dyn Fn(&Agent) -> Option<Result<Vec<u8>, String>> + Send + Sync>;
/// Deserializes user data and stores it with the agent.
type Restore = Box<dyn Fn(&Agent, &[u8]) -> Result<(), String> + Send + Sync>;

/// How a registered user data type is carried to another node.
pub(crate) struct UserDataCodec {
    pub(crate) save: Save,
    pub(crate) restore: Restore,
}

impl UserDataCodec {
    pub(crate) fn new<T>() -> UserDataCodec
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
