//! What the tests that speak through `longlink-client` share: the chat's registry on the
//! client side, and the client's name for a test server's encoding.

use std::sync::Arc;

use longlink_chat::msg::{
    C2sMessage, C2sUpdateWatchRoom, C2sUserHeartBeat, C2sUserLogin, S2cError, S2cKick, S2cMessage,
    S2cUpdateWatchRoom, S2cUserLogin,
};
use longlink_client::{Encoding, Messages};

use super::Enc;

/// The chat protocol's registry: names and ids of `proto/chat.proto`.
pub fn chat_messages() -> Arc<Messages> {
    let mut m = Messages::new();
    m.register_with::<C2sUserHeartBeat>("C2S_UserHeartBeat", 0)
        .and_then(|m| m.register_with::<C2sUserLogin>("C2S_UserLogin", 1))
        .and_then(|m| m.register_with::<S2cUserLogin>("S2C_UserLogin", 2))
        .and_then(|m| m.register_with::<C2sUpdateWatchRoom>("C2S_UpdateWatchRoom", 3))
        .and_then(|m| m.register_with::<S2cUpdateWatchRoom>("S2C_UpdateWatchRoom", 4))
        .and_then(|m| m.register_with::<C2sMessage>("C2S_Message", 5))
        .and_then(|m| m.register_with::<S2cMessage>("S2C_Message", 6))
        .and_then(|m| m.register_with::<S2cKick>("S2C_Kick", 7))
        .and_then(|m| m.register_with::<S2cError>("S2C_Error", 8))
        .expect("chat messages register");
    Arc::new(m)
}

/// The client's encoding for a test server's.
pub fn encoding(enc: Enc) -> Encoding {
    match enc {
        Enc::Json => Encoding::Json,
        Enc::Protobuf => Encoding::Protobuf,
    }
}
