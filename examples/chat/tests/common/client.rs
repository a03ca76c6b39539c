//! What the tests that speak through `longlink-client` share: the chat's registry on the
//! client side, and the client's name for a test server's encoding.

use std::sync::Arc;

use longlink_chat::msg::{
    C2sMessage, C2sTyping, C2sUpdateWatchRoom, C2sUserHeartBeat, C2sUserLogin, S2cError, S2cKick,
    S2cMessage, S2cRoomInfo, S2cTyping, S2cUpdateWatchRoom, S2cUserLogin,
};
use longlink_client::{Encoding, MessageOptions, Messages};

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
        .and_then(|m| m.register_with::<C2sTyping>("C2S_Typing", 9))
        .and_then(|m| m.register_options::<S2cTyping>(presence("S2C_Typing", 10).volatile()))
        .and_then(|m| m.register_with::<S2cRoomInfo>("S2C_RoomInfo", 11))
        .expect("chat messages register");
    Arc::new(m)
}

fn presence(name: &str, id: u16) -> MessageOptions {
    MessageOptions::new().name(name).id(id)
}

/// The client's encoding for a test server's.
pub fn encoding(enc: Enc) -> Encoding {
    match enc {
        Enc::Json => Encoding::Json,
        Enc::Protobuf => Encoding::Protobuf,
    }
}

/// Whether a message is one of the room's presence messages (`S2C_Typing`,
/// `S2C_RoomInfo`), which tests written before them skip.
pub fn is_presence(m: &longlink_client::Message) -> bool {
    matches!(m.name(), "S2C_Typing" | "S2C_RoomInfo")
}

/// The next message that is not a presence message, which must be a `T` (as
/// `Client::recv_as`).
pub async fn recv_skipping<T: 'static>(
    c: &mut longlink_client::Client,
) -> longlink_client::Result<T> {
    loop {
        let m = c.recv().await?;
        if is_presence(&m) {
            continue;
        }
        let name = m.name().to_owned();
        return m
            .downcast::<T>()
            .map_err(|_| longlink_client::Error::Unexpected {
                expected: std::any::type_name::<T>().to_owned(),
                got: name,
            });
    }
}
