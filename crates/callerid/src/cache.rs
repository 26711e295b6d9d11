//! Small bounded caches.
//!
//! What is cached, and why that is sound:
//! - **cgroup id → (path, workload)**: cgroup ids are kernfs node ids and are not
//!   reused within a boot, so an id never comes to mean another cgroup. A cached path
//!   can only go stale if the cgroup is removed (or renamed, which cgroup2 allows only
//!   within the same parent and no runtime does); a removed cgroup has no members left to
//!   connect from, except a connect-time or exit-time record of it, for which the last
//!   known path is the right answer.
//! - **user namespace inode → (uid_map, gid_map)**: a map is written once and never
//!   changes afterwards, and namespace inodes are not reused while the namespace exists.
//!   Empty (not yet written) maps are never cached.
//!
//! - **pidfs id → pid namespace inode**: a pidfs id names one `struct pid` for the whole
//!   boot, and a process's own pid namespace is fixed at `fork()` (`setns`/`unshare` of a
//!   pid namespace only change the one its *children* get).
//!
//! Nothing else is cached per process: credentials, cgroup, the other namespaces
//! (`setns`, `unshare`), `comm` (`prctl(PR_SET_NAME)`, a write to `/proc/self/comm`) and
//! `exe` (`execve`) can all change while the pidfs id stays the same, and the kernel
//! exposes no counter that would tell us they did; a cached value could only be
//! re-validated by reading it again, which is the cost the cache would save. They are
//! read per identification, and only when the [`crate::Parts`] ask for them.
//!
//! Eviction is generational: two maps, `current` and `previous`; when `current` is
//! full it becomes `previous` (dropping the old `previous`). A hit in `previous` is
//! promoted. That is LRU-like at the cost of a hash lookup, with no per-entry
//! bookkeeping.

use std::collections::HashMap;
use std::hash::Hash;

/// A bounded map with generational eviction; holds at most `capacity` entries.
#[derive(Debug)]
pub(crate) struct GenCache<K, V> {
    half: usize,
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
}

impl<K: Hash + Eq + Copy, V: Clone> GenCache<K, V> {
    /// A cache of at most `capacity` entries (0 disables caching).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            half: capacity / 2,
            current: HashMap::new(),
            previous: HashMap::new(),
        }
    }

    /// Looks `key` up in the current generation only (no promotion, so a shared
    /// reference will do: the hot path of a warm cache takes only a read lock).
    pub(crate) fn peek(&self, key: &K) -> Option<V> {
        self.current.get(key).cloned()
    }

    /// Looks `key` up, promoting it if it was in the older generation.
    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        if let Some(v) = self.current.get(key) {
            return Some(v.clone());
        }
        let v = self.previous.remove(key)?;
        self.insert(*key, v.clone());
        Some(v)
    }

    /// Inserts (or replaces) `key`.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.half == 0 {
            return;
        }
        if self.current.len() >= self.half && !self.current.contains_key(&key) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, value);
    }

    /// Number of entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::GenCache;

    #[test]
    fn bounded_and_promoting() {
        let mut c = GenCache::new(4);
        for i in 0..100u64 {
            c.insert(i, i * 2);
            assert!(c.len() <= 4);
        }
        assert_eq!(c.get(&99), Some(198));
        assert_eq!(c.get(&0), None);
        let mut c = GenCache::new(4);
        c.insert(1u64, 1u64);
        c.insert(2, 2);
        c.insert(3, 3); // 1, 2 move to previous
        assert_eq!(c.get(&1), Some(1)); // promoted
        c.insert(4, 4);
        c.insert(5, 5);
        assert_eq!(c.get(&1), Some(1));
        let mut off = GenCache::new(0);
        off.insert(1u64, 1u64);
        assert_eq!(off.get(&1), None);
    }
}
