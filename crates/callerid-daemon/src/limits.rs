//! Connection limits: per listener and per identity (container id, else uid).

use callerid::Identity;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Who a per-identity limit counts against. Container ids are hashed with a
/// per-process random key so counting never allocates; a collision (2^-64) would only
/// make two containers share one quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IdentityKey {
    Container(u64),
    Uid(u32),
}

/// Limits state of one listener.
#[derive(Debug)]
pub(crate) struct Limits {
    max_connections: Option<usize>,
    max_per_identity: Option<usize>,
    active: AtomicUsize,
    per_identity: Mutex<HashMap<IdentityKey, usize>>,
    hasher: std::collections::hash_map::RandomState,
}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    MaxConnections(usize),
    MaxPerIdentity(usize),
}

impl Refusal {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::MaxConnections(_) => "max_connections",
            Self::MaxPerIdentity(_) => "max_per_identity",
        }
    }
    pub(crate) fn reason(self) -> String {
        match self {
            Self::MaxConnections(n) => {
                format!("limit: listener already has max_connections = {n} open")
            }
            Self::MaxPerIdentity(n) => {
                format!("limit: this identity already has max_per_identity = {n} open")
            }
        }
    }
}

impl Limits {
    pub(crate) fn new(max_connections: Option<usize>, max_per_identity: Option<usize>) -> Self {
        Self {
            max_connections,
            max_per_identity,
            active: AtomicUsize::new(0),
            per_identity: Mutex::new(HashMap::new()),
            hasher: Default::default(),
        }
    }

    pub(crate) fn key(&self, id: &Identity) -> IdentityKey {
        match id.workload().and_then(|w| w.container.as_ref()) {
            Some(c) => IdentityKey::Container(self.hasher.hash_one(c.id.as_ref())),
            None => IdentityKey::Uid(id.peer().uid.get()),
        }
    }

    /// Takes a slot for one connection, or says which limit is full. The slot is given
    /// back when the returned guard drops.
    pub(crate) fn admit(self: &Arc<Self>, key: Option<IdentityKey>) -> Result<Slot, Refusal> {
        let n = self.active.fetch_add(1, Ordering::AcqRel);
        if let Some(max) = self.max_connections
            && n >= max
        {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::MaxConnections(max));
        }
        let key = match (self.max_per_identity, key) {
            (Some(max), Some(key)) => {
                let mut map = self.per_identity.lock().unwrap_or_else(|p| p.into_inner());
                let count = map.entry(key).or_insert(0);
                if *count >= max {
                    drop(map);
                    self.active.fetch_sub(1, Ordering::AcqRel);
                    return Err(Refusal::MaxPerIdentity(max));
                }
                *count += 1;
                Some(key)
            }
            _ => None,
        };
        Ok(Slot {
            limits: self.clone(),
            key,
        })
    }

    pub(crate) fn wants_identity_key(&self) -> bool {
        self.max_per_identity.is_some()
    }
}

/// One admitted connection.
#[derive(Debug)]
pub(crate) struct Slot {
    limits: Arc<Limits>,
    key: Option<IdentityKey>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.active.fetch_sub(1, Ordering::AcqRel);
        if let Some(key) = self.key {
            let mut map = self
                .limits
                .per_identity
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(c) = map.get_mut(&key) {
                *c -= 1;
                if *c == 0 {
                    map.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_returned() {
        let l = Arc::new(Limits::new(Some(3), Some(2)));
        let a = IdentityKey::Uid(1);
        let b = IdentityKey::Uid(2);
        let s1 = l.admit(Some(a)).unwrap();
        let s2 = l.admit(Some(a)).unwrap();
        assert_eq!(l.admit(Some(a)).unwrap_err(), Refusal::MaxPerIdentity(2));
        let s3 = l.admit(Some(b)).unwrap();
        assert_eq!(l.admit(Some(b)).unwrap_err(), Refusal::MaxConnections(3));
        drop(s1);
        let s4 = l.admit(Some(a)).unwrap();
        drop((s2, s3, s4));
        assert_eq!(l.active.load(Ordering::Relaxed), 0);
        assert!(l.per_identity.lock().unwrap().is_empty());
    }
}
