//! [`Bound`]: one connection's backends (node type -> node id), held for every connection of
//! a clustered gate, so it is small: a list, not a hash map (a connection has one backend
//! per type it forwards to, usually one or two), with node ids shared between connections.

use std::borrow::Borrow;
use std::sync::Arc;

/// One connection's backends: node type -> node id, at most one per type. 24 bytes and one
/// 32-byte block for one backend (a `HashMap` is 48 bytes and a 160-byte table).
#[derive(Debug, Default, Clone)]
pub(super) struct Bound(Vec<(Arc<str>, Arc<str>)>);

impl Bound {
    /// The node of type `ty`.
    pub(super) fn get<Q>(&self, ty: &Q) -> Option<&Arc<str>>
    where
        Arc<str>: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.0
            .iter()
            .find(|(t, _)| t.borrow() == ty)
            .map(|(_, node)| node)
    }

    /// Binds type `ty` to `node`; the node it was bound to before, if any.
    pub(super) fn insert(&mut self, ty: Arc<str>, node: Arc<str>) -> Option<Arc<str>> {
        match self.0.iter_mut().find(|(t, _)| *t == ty) {
            Some((_, old)) => Some(std::mem::replace(old, node)),
            None => {
                // Room for this one only: a `Vec`'s first push makes room for four.
                self.0.reserve_exact(1);
                self.0.push((ty, node));
                None
            }
        }
    }

    /// Unbinds type `ty`; the node it was bound to.
    pub(super) fn remove<Q>(&mut self, ty: &Q) -> Option<Arc<str>>
    where
        Arc<str>: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let i = self.0.iter().position(|(t, _)| t.borrow() == ty)?;
        Some(self.0.swap_remove(i).1)
    }

    /// (type, node) pairs.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<str>)> {
        self.0.iter().map(|(t, n)| (t, n))
    }

    /// The nodes.
    pub(super) fn values(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter().map(|(_, n)| n)
    }
}

impl FromIterator<(Arc<str>, Arc<str>)> for Bound {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, Arc<str>)>>(pairs: I) -> Self {
        let mut bound = Bound::default();
        for (ty, node) in pairs {
            bound.insert(ty, node);
        }
        bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_backend_takes_room_for_one() {
        // Every connection of a clustered gate holds one: room for four would be 96 bytes
        // more of each.
        let mut bound = Bound::default();
        bound.insert("chat".into(), "n1".into());
        assert_eq!(bound.0.capacity(), 1);
    }

    #[test]
    fn one_node_per_type() {
        let a: Arc<str> = "chat".into();
        let b: Arc<str> = "game".into();
        let mut bound = Bound::default();
        assert_eq!(bound.insert(a.clone(), "n1".into()), None);
        assert_eq!(bound.insert(b.clone(), "n2".into()), None);
        assert_eq!(bound.insert(a.clone(), "n3".into()).as_deref(), Some("n1"));
        assert_eq!(bound.get("chat").map(|n| &**n), Some("n3"));
        assert_eq!(bound.get(&b).map(|n| &**n), Some("n2"));
        assert_eq!(bound.values().count(), 2);
        assert_eq!(bound.remove(&a).as_deref(), Some("n3"));
        assert_eq!(bound.get(&a), None);
        assert_eq!(bound.remove("chat"), None);
        let collected: Bound = [(a.clone(), "x".into()), (a, "y".into())]
            .into_iter()
            .collect();
        assert_eq!(collected.iter().count(), 1);
    }
}
