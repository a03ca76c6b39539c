//! The chat protocol's messages, generated from `proto/chat.proto` by prost (with serde
//! derives), and their registration: JSON names as in the protocol table, protobuf ids pinned
//! to the table's order.

#![allow(missing_docs, unreachable_pub)]

include!(concat!(env!("OUT_DIR"), "/chat.rs"));

use longlink::Processor;
use longlink::processor::MessageOptions;
use longlink::processor::{MessageInfo, ProcessorError};

/// Registers every chat message: ids 0..=8 in the protocol's order, names as in the table.
pub fn register_all(p: &mut Processor) -> Result<(), ProcessorError> {
    fn opts(name: &str, id: u16) -> MessageOptions {
        MessageOptions::new().name(name).id(id)
    }
    p.register_with::<C2sUserHeartBeat>(opts("C2S_UserHeartBeat", 0))?;
    p.register_with::<C2sUserLogin>(opts("C2S_UserLogin", 1))?;
    p.register_with::<S2cUserLogin>(opts("S2C_UserLogin", 2).outgoing())?;
    p.register_with::<C2sUpdateWatchRoom>(opts("C2S_UpdateWatchRoom", 3))?;
    p.register_with::<S2cUpdateWatchRoom>(opts("S2C_UpdateWatchRoom", 4).outgoing())?;
    p.register_with::<C2sMessage>(opts("C2S_Message", 5))?;
    p.register_with::<S2cMessage>(opts("S2C_Message", 6).outgoing())?;
    p.register_with::<S2cKick>(opts("S2C_Kick", 7).outgoing())?;
    p.register_with::<S2cError>(opts("S2C_Error", 8).outgoing())?;
    Ok(())
}

/// The registered messages, for diagnostics and manifests.
pub fn infos(p: &Processor) -> Vec<MessageInfo> {
    p.messages().cloned().collect()
}
