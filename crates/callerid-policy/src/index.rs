//! Candidate selection for [`crate::Policy::evaluate`].
//!
//! Every rule is filed under at most one *index key*: the most selective attribute it
//! constrains to exact values (a container id prefix before a cgroup id before a unit
//! before a uid …). A rule with no exact attribute goes to the `always` list. For an
//! identity, each index yields the (ascending) rule numbers filed under the identity's
//! value; merging those lists with `always` gives, in file order, every rule that could
//! match — a rule not among them has an exact condition the identity fails. Evaluating
//! the candidates in ascending order therefore finds the same first match as a linear
//! scan (checked by the `indexed_equals_linear` property test).

use crate::matcher::{Cond, container_key};
use crate::policy::{Context, Rule};
use callerid::Identity;
use serde::Serialize;
use std::collections::HashMap;

/// The attribute a rule is indexed by, most selective first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexKey {
    /// `container`: first 12 characters of the id.
    Container,
    /// `cgroup_id`.
    CgroupId,
    /// `pod_uid` (exact values only).
    PodUid,
    /// `cgroup` (exact paths only).
    Cgroup,
    /// `unit` (exact names only).
    Unit,
    /// `user_unit` (exact names only).
    UserUnit,
    /// `exe` (exact paths only).
    Exe,
    /// `uid`.
    Uid,
    /// `userns_uid`.
    UsernsUid,
    /// `gid`.
    Gid,
    /// `slice` (exact names only).
    Slice,
    /// `tenant` (exact names only).
    Tenant,
    /// The rule's `listener`.
    Listener,
}

impl IndexKey {
    /// All keys, most selective first.
    pub const ALL: [IndexKey; 13] = [
        Self::Container,
        Self::CgroupId,
        Self::PodUid,
        Self::Cgroup,
        Self::Unit,
        Self::UserUnit,
        Self::Exe,
        Self::Uid,
        Self::UsernsUid,
        Self::Gid,
        Self::Slice,
        Self::Tenant,
        Self::Listener,
    ];

    /// The key's name as written in the policy file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::CgroupId => "cgroup_id",
            Self::PodUid => "pod_uid",
            Self::Cgroup => "cgroup",
            Self::Unit => "unit",
            Self::UserUnit => "user_unit",
            Self::Exe => "exe",
            Self::Uid => "uid",
            Self::UsernsUid => "userns_uid",
            Self::Gid => "gid",
            Self::Slice => "slice",
            Self::Tenant => "tenant",
            Self::Listener => "listener",
        }
    }
}

/// A value to file a rule under.
enum Val {
    Str(String),
    Num(u64),
}

/// The exact values `cond` restricts its attribute to, if it is an indexable condition.
fn exact_values(cond: &Cond) -> Option<(IndexKey, Vec<Val>)> {
    fn strs(key: IndexKey, p: &[crate::matcher::StrPat]) -> Option<(IndexKey, Vec<Val>)> {
        let v: Option<Vec<Val>> = p
            .iter()
            .map(|p| p.exact().map(|s| Val::Str(s.to_owned())))
            .collect();
        v.map(|v| (key, v))
    }
    fn nums(key: IndexKey, v: impl Iterator<Item = u64>) -> Option<(IndexKey, Vec<Val>)> {
        Some((key, v.map(Val::Num).collect()))
    }
    match cond {
        Cond::Container(p) => Some((
            IndexKey::Container,
            p.iter()
                .map(|p| Val::Str(container_key(p.src()).into_owned()))
                .collect(),
        )),
        Cond::CgroupId(v) => nums(IndexKey::CgroupId, v.iter().copied()),
        Cond::PodUid(p) => strs(IndexKey::PodUid, p),
        Cond::Cgroup(p) => strs(IndexKey::Cgroup, p),
        Cond::Unit(p) => strs(IndexKey::Unit, p),
        Cond::UserUnit(p) => strs(IndexKey::UserUnit, p),
        Cond::Exe(p) => strs(IndexKey::Exe, p),
        Cond::Uid(v) => nums(IndexKey::Uid, v.iter().map(|&u| u64::from(u))),
        Cond::UsernsUid(v) => nums(IndexKey::UsernsUid, v.iter().map(|&u| u64::from(u))),
        Cond::Gid(v) => nums(IndexKey::Gid, v.iter().map(|&u| u64::from(u))),
        Cond::Slice(p) => strs(IndexKey::Slice, p),
        Cond::Tenant(p) => strs(IndexKey::Tenant, p),
        _ => None,
    }
}

/// Chooses the index key for a rule: the most selective exact attribute it has.
fn choose(rule: &Rule) -> Option<(IndexKey, Vec<Val>)> {
    let mut best: Option<(IndexKey, Vec<Val>)> = rule
        .listener()
        .map(|l| (IndexKey::Listener, vec![Val::Str(l.to_owned())]));
    for c in &rule.matcher().conds {
        if let Some((k, v)) = exact_values(c)
            && best.as_ref().is_none_or(|(b, _)| k < *b)
        {
            best = Some((k, v));
        }
    }
    best
}

const N: usize = IndexKey::ALL.len();

/// Rule numbers filed by index key and value; see the module docs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    strs: [HashMap<Box<str>, Vec<u32>>; N],
    nums: [HashMap<u64, Vec<u32>>; N],
    always: Vec<u32>,
    counts: [usize; N],
}

fn push(list: &mut Vec<u32>, i: u32) {
    // Rules are filed in ascending order; a rule listing two values with the same key
    // (e.g. two prefixes of one id) must appear once.
    if list.last() != Some(&i) {
        list.push(i);
    }
}

impl Index {
    /// Files every rule; returns the key chosen for each.
    pub(crate) fn build(rules: &[Rule]) -> (Self, Vec<Option<IndexKey>>) {
        let mut ix = Self::default();
        let mut chosen = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            // A policy has far fewer than 2^32 rules (the file would be gigabytes).
            let n = u32::try_from(i).unwrap_or(u32::MAX);
            match choose(rule) {
                None => {
                    ix.always.push(n);
                    chosen.push(None);
                }
                Some((k, vals)) => {
                    ix.counts[k as usize] += 1;
                    for v in vals {
                        match v {
                            Val::Str(s) => push(
                                ix.strs[k as usize].entry(s.into_boxed_str()).or_default(),
                                n,
                            ),
                            Val::Num(x) => push(ix.nums[k as usize].entry(x).or_default(), n),
                        }
                    }
                    chosen.push(Some(k));
                }
            }
        }
        (ix, chosen)
    }

    /// How many rules each key indexes, and how many are checked for every peer.
    pub(crate) fn stats(&self) -> (Vec<(IndexKey, usize)>, usize) {
        let by = IndexKey::ALL
            .iter()
            .filter(|k| self.counts[**k as usize] > 0)
            .map(|k| (*k, self.counts[*k as usize]))
            .collect();
        (by, self.always.len())
    }

    fn s(&self, k: IndexKey, v: Option<&str>) -> &[u32] {
        let map = &self.strs[k as usize];
        if map.is_empty() {
            return &[];
        }
        v.and_then(|v| map.get(v)).map_or(&[], Vec::as_slice)
    }

    fn n(&self, k: IndexKey, v: Option<u64>) -> &[u32] {
        let map = &self.nums[k as usize];
        if map.is_empty() {
            return &[];
        }
        v.and_then(|v| map.get(&v)).map_or(&[], Vec::as_slice)
    }

    /// Calls `f` on every candidate rule number in ascending order until it returns true;
    /// returns that rule number.
    pub(crate) fn first(
        &self,
        id: &Identity,
        ctx: &Context<'_>,
        mut f: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        let wl = id.workload();
        let container = wl
            .and_then(|w| w.container.as_ref())
            .map(|c| container_key(&c.id));
        let lists: [&[u32]; N + 1] = [
            &self.always,
            self.s(IndexKey::Container, container.as_deref()),
            self.n(IndexKey::CgroupId, id.cgroup().map(|c| c.id.get())),
            self.s(
                IndexKey::PodUid,
                wl.and_then(|w| w.pod.as_ref()).map(|p| &*p.uid),
            ),
            self.s(
                IndexKey::Cgroup,
                id.cgroup().and_then(|c| c.path.as_deref()),
            ),
            self.s(IndexKey::Unit, wl.and_then(|w| w.unit.as_deref())),
            self.s(IndexKey::UserUnit, wl.and_then(|w| w.user_unit.as_deref())),
            self.s(IndexKey::Exe, id.process().and_then(|p| p.exe.as_deref())),
            self.n(IndexKey::Uid, Some(u64::from(id.peer().uid.get()))),
            self.n(
                IndexKey::UsernsUid,
                id.user_namespace()
                    .and_then(|u| u.uid)
                    .map(|u| u64::from(u.get())),
            ),
            self.n(IndexKey::Gid, Some(u64::from(id.peer().gid.get()))),
            self.s(IndexKey::Slice, wl.and_then(|w| w.slice.as_deref())),
            self.s(IndexKey::Tenant, ctx.tenant),
            self.s(IndexKey::Listener, ctx.listener),
        ];
        // Usually one to three lists are non-empty: a k-way merge by scanning heads is
        // cheaper than a heap at that size.
        let mut live: [&[u32]; N + 1] = [&[]; N + 1];
        let mut k = 0;
        for l in lists {
            if !l.is_empty() {
                live[k] = l;
                k += 1;
            }
        }
        let live = &mut live[..k];
        loop {
            let mut best: Option<(usize, u32)> = None;
            for (j, l) in live.iter().enumerate() {
                if let Some(&h) = l.first()
                    && best.is_none_or(|(_, b)| h < b)
                {
                    best = Some((j, h));
                }
            }
            let (j, rule) = best?;
            live[j] = &live[j][1..];
            let rule = rule as usize;
            if f(rule) {
                return Some(rule);
            }
        }
    }
}
