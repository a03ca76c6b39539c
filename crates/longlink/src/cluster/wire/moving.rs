//! A connection moving from a stopping backend node to another of its type: the state the
//! stopping node hands off ([`AgentState`], the reply to `ToBackend::HandOff`) and the
//! adoption request that carries it to the new node ([`Adopt`], in `ToBackend::Adopt`).

use bytes::{BufMut, Bytes, BytesMut};

use super::{Reader, WireError, put_str};

/// What a backend node knows of one connection that moves with it: the uid bound to it and
/// the application's user data, serialized (when its type is registered).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct AgentState {
    /// The uid (0: none).
    pub(crate) uid: u64,
    /// The user data as the registered type serialized it; `None`: none, or not movable.
    pub(crate) user_data: Option<Bytes>,
}

impl AgentState {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(16);
        self.put(&mut out);
        out.freeze()
    }

    pub(crate) fn decode(bytes: Bytes) -> Result<AgentState, WireError> {
        Self::read(&mut Reader(bytes))
    }

    fn put(&self, out: &mut BytesMut) {
        out.put_u64_le(self.uid);
        match &self.user_data {
            None => out.put_u8(0),
            Some(data) => {
                out.put_u8(1);
                out.put_slice(data);
            }
        }
    }

    fn read(r: &mut Reader) -> Result<AgentState, WireError> {
        let uid = r.u64()?;
        let user_data = match r.u8()? {
            0 => None,
            1 => Some(std::mem::take(&mut r.0)),
            _ => return Err(WireError("bad user data flag")),
        };
        Ok(AgentState { uid, user_data })
    }
}

/// A gate asks any node of a type to take one of its connections, with its state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Adopt {
    pub(crate) gate: String,
    pub(crate) conn: u64,
    pub(crate) transport: u8,
    pub(crate) local: String,
    pub(crate) remote: String,
    pub(crate) state: AgentState,
}

impl Adopt {
    pub(super) fn put(&self, out: &mut BytesMut) {
        put_str(out, &self.gate);
        out.put_u64_le(self.conn);
        out.put_u8(self.transport);
        put_str(out, &self.local);
        put_str(out, &self.remote);
        self.state.put(out);
    }

    pub(super) fn read(mut r: Reader) -> Result<Adopt, WireError> {
        Ok(Adopt {
            gate: r.str()?,
            conn: r.u64()?,
            transport: r.u8()?,
            local: r.str()?,
            remote: r.str()?,
            state: AgentState::read(&mut r)?,
        })
    }
}
