//! The header naming the one member a group broadcast is not for (`Ll-Except`:
//! `"<conn> <gate>"`): `Groups::broadcast_except` leaves out the sender of what it answers,
//! and only that connection's gate reads it.

use async_nats::HeaderMap;

/// The header naming the one connection a broadcast is not for: `"<conn> <gate>"`.
const EXCEPT: &str = "Ll-Except";

/// Names connection `conn` of gate `gate` as the one member the broadcast is not for.
pub(crate) fn except(headers: &mut HeaderMap, gate: &str, conn: u64) {
    headers.insert(EXCEPT, format!("{conn} {gate}").as_str());
}

/// The connection of gate `gate` a broadcast is not for, if its headers name one there.
pub(crate) fn except_here(headers: Option<&HeaderMap>, gate: &str) -> Option<u64> {
    let (conn, at) = headers?.get(EXCEPT)?.as_str().split_once(' ')?;
    (at == gate).then(|| conn.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exception_is_read_on_its_gate_only() {
        let mut h = HeaderMap::new();
        assert_eq!(except_here(Some(&h), "g1"), None);
        except(&mut h, "g1", 42);
        assert_eq!(except_here(Some(&h), "g1"), Some(42));
        assert_eq!(except_here(Some(&h), "g2"), None);
        assert_eq!(except_here(None, "g1"), None);
        h.insert(EXCEPT, "x g1");
        assert_eq!(except_here(Some(&h), "g1"), None);
    }
}
