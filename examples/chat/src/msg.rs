//! The chat protocol's messages, generated from `proto/chat.proto` by prost (with serde
//! derives), and their registration: JSON names as in the protocol table, protobuf ids pinned
//! to the table's order.

#![allow(missing_docs, unreachable_pub)]

include!(concat!(env!("OUT_DIR"), "/chat.rs"));

use longlink::Processor;
use longlink::processor::{MessageInfo, ProcessorError};
use longlink::processor::{MessageOptions, RateLimit};

/// `[chat] max_msgs_per_sec`'s default: room and private messages a connection may send
/// each second.
pub const DEFAULT_MAX_MSGS_PER_SEC: u32 = 20;

/// `C2S_Typing` signals a connection may send each second; more are dropped.
pub const MAX_TYPING_PER_SEC: u32 = 5;

/// Registers every chat message with the default limits and classes (see
/// [`register_all_with`]).
pub fn register_all(p: &mut Processor) -> Result<(), ProcessorError> {
    register_all_with(p, DEFAULT_MAX_MSGS_PER_SEC, false)
}

/// Registers every chat message: ids 0..=11 in the protocol's order, names as in the table;
/// `S2C_Typing` volatile, `S2C_RoomInfo` latest per `room_id`; `C2S_Typing` limited to
/// [`MAX_TYPING_PER_SEC`] and `C2S_Message` to `max_msgs_per_sec` (0: no limit) per
/// connection, both dropped over it. `all_reliable`: `S2C_Typing` and `S2C_RoomInfo` go
/// reliable too (`[chat] presence_reliable`, for comparison runs).
pub fn register_all_with(
    p: &mut Processor,
    max_msgs_per_sec: u32,
    all_reliable: bool,
) -> Result<(), ProcessorError> {
    fn opts(name: &str, id: u16) -> MessageOptions {
        MessageOptions::new().name(name).id(id)
    }
    let message = match max_msgs_per_sec {
        0 => opts("C2S_Message", 5),
        n => opts("C2S_Message", 5).rate_limit(RateLimit::per_second(n)),
    };
    p.register_with::<C2sUserHeartBeat>(opts("C2S_UserHeartBeat", 0))?;
    p.register_with::<C2sUserLogin>(opts("C2S_UserLogin", 1))?;
    p.register_with::<S2cUserLogin>(opts("S2C_UserLogin", 2).outgoing())?;
    p.register_with::<C2sUpdateWatchRoom>(opts("C2S_UpdateWatchRoom", 3))?;
    p.register_with::<S2cUpdateWatchRoom>(opts("S2C_UpdateWatchRoom", 4).outgoing())?;
    p.register_with::<C2sMessage>(message)?;
    p.register_with::<S2cMessage>(opts("S2C_Message", 6).outgoing())?;
    p.register_with::<S2cKick>(opts("S2C_Kick", 7).outgoing())?;
    p.register_with::<S2cError>(opts("S2C_Error", 8).outgoing())?;
    let typing = RateLimit::per_second(MAX_TYPING_PER_SEC);
    p.register_with::<C2sTyping>(opts("C2S_Typing", 9).rate_limit(typing))?;
    let (typing, info) = (
        opts("S2C_Typing", 10).outgoing(),
        opts("S2C_RoomInfo", 11).outgoing(),
    );
    if all_reliable {
        p.register_with::<S2cTyping>(typing)?;
        p.register_with::<S2cRoomInfo>(info)?;
    } else {
        p.register_with::<S2cTyping>(typing.volatile())?;
        p.register_with::<S2cRoomInfo>(info.latest_by(|m: &S2cRoomInfo| m.room_id))?;
    }
    Ok(())
}

/// The registered messages, for diagnostics and manifests.
pub fn infos(p: &Processor) -> Vec<MessageInfo> {
    p.messages().cloned().collect()
}
