//! The chat protocol's messages as the soak's clients speak them: written out here from the
//! protocol table (`examples/chat/proto/chat.proto`), not taken from the server's code, so
//! that the soak checks the wire and not a shared line. Only the messages the soak uses
//! carry every field; ids are the table's.

use std::sync::Arc;

use longlink_client::Messages;
use serde::{Deserialize, Serialize};

/// `C2S_UserLogin` (id 1).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub(crate) struct C2sUserLogin {
    #[prost(string, tag = "1")]
    pub(crate) token: String,
    #[prost(int32, tag = "2")]
    pub(crate) login_plat: i32,
}

/// `S2C_UserLogin` (id 2).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub(crate) struct S2cUserLogin {
    #[prost(int32, tag = "1")]
    pub(crate) ret: i32,
    #[prost(string, tag = "2")]
    pub(crate) msg: String,
    #[prost(uint64, tag = "3")]
    pub(crate) uid: u64,
}

/// `C2S_UpdateWatchRoom` (id 3).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub(crate) struct C2sUpdateWatchRoom {
    #[prost(uint64, tag = "1")]
    pub(crate) room_id: u64,
}

/// `S2C_UpdateWatchRoom` (id 4).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub(crate) struct S2cUpdateWatchRoom {
    #[prost(uint64, tag = "1")]
    pub(crate) room_id: u64,
    #[prost(uint32, tag = "2")]
    pub(crate) online: u32,
}

/// `C2S_Message` (id 5): to a room (`to_uid` 0) or to one user.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub(crate) struct C2sMessage {
    #[prost(uint64, tag = "1")]
    pub(crate) room_id: u64,
    #[prost(uint64, tag = "2")]
    pub(crate) to_uid: u64,
    #[prost(string, tag = "3")]
    pub(crate) text: String,
}

/// `S2C_Message` (id 6).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub(crate) struct S2cMessage {
    #[prost(uint64, tag = "1")]
    pub(crate) room_id: u64,
    #[prost(uint64, tag = "2")]
    pub(crate) from_uid: u64,
    #[prost(uint64, tag = "3")]
    pub(crate) to_uid: u64,
    #[prost(string, tag = "4")]
    pub(crate) text: String,
    #[prost(int64, tag = "5")]
    pub(crate) ts: i64,
}

/// `S2C_Kick` (id 7).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub(crate) struct S2cKick {
    #[prost(string, tag = "1")]
    pub(crate) reason: String,
}

/// `S2C_Error` (id 8).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
#[serde(default)]
pub(crate) struct S2cError {
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    #[prost(string, tag = "2")]
    pub(crate) msg: String,
}

/// `S2C_Error.code`: the message needs a login (the node that handled it has none).
pub(crate) const ERR_NOT_LOGGED_IN: i32 = 1;

/// The chat's messages with their names and ids (the heartbeat, id 0, is not used).
pub(crate) fn registry() -> anyhow::Result<Arc<Messages>> {
    let mut m = Messages::new();
    m.register_with::<C2sUserLogin>("C2S_UserLogin", 1)?
        .register_with::<S2cUserLogin>("S2C_UserLogin", 2)?
        .register_with::<C2sUpdateWatchRoom>("C2S_UpdateWatchRoom", 3)?
        .register_with::<S2cUpdateWatchRoom>("S2C_UpdateWatchRoom", 4)?
        .register_with::<C2sMessage>("C2S_Message", 5)?
        .register_with::<S2cMessage>("S2C_Message", 6)?
        .register_with::<S2cKick>("S2C_Kick", 7)?
        .register_with::<S2cError>("S2C_Error", 8)?;
    Ok(Arc::new(m))
}

/// A login token for `uid`, signed with the chat's development secret (HS256), valid a day.
pub(crate) fn token(secret: &str, uid: u64) -> String {
    #[derive(Serialize)]
    struct Claims {
        uid: u64,
        exp: u64,
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        uid,
        exp: now + 86_400,
    };
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
        .expect("HS256 over two integers cannot fail")
}
