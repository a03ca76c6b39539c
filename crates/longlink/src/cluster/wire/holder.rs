//! The directory's entry for a uid ([`Holder`]: which gate and connection hold it, since
//! when) and the clock that orders logins.

use bytes::Bytes;

/// A directory entry: which gate node and connection hold a uid, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) gate: String,
    pub(crate) conn: u64,
    /// When it logged in (microseconds since the Unix epoch).
    pub(crate) at: u64,
    /// Which start of the gate wrote it (its "alive" key names the one running; 0: not
    /// said).
    pub(crate) incarnation: u64,
}

impl Holder {
    pub(crate) fn encode(&self) -> Bytes {
        Bytes::from(format!(
            "{} {} {} {}",
            self.conn, self.at, self.gate, self.incarnation
        ))
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Holder> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        let conn = parts.next()?.parse().ok()?;
        let at = parts.next()?.parse().ok()?;
        let gate = parts.next()?.to_owned();
        let incarnation = match parts.next() {
            Some(n) => n.parse().ok()?,
            None => 0,
        };
        Some(Holder {
            gate,
            conn,
            at,
            incarnation,
        })
    }

    /// The same connection (whenever it claimed).
    pub(crate) fn same_conn(&self, other: &Holder) -> bool {
        self.gate == other.gate && self.conn == other.conn
    }
}

/// Microseconds since the Unix epoch: the login order of the directory.
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
