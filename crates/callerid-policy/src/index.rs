//! Candidate selection for [`crate::Policy::evaluate`].
//!
//! Every rule is filed under at most one *index key*: the most selective attribute it
//! constrains to exact values (a container id prefix before a cgroup id before a unit
//! before a uid …), or, failing that, the literal prefix of its `cgroup`, `exe` or
//! `unit` globs, or its low-cardinality `tenant`, `runtime`, `qos`, `kind` or
//! `listener`. A rule with none of these goes to the `always` list. For an identity, each
//! index yields the (ascending) rule numbers filed under the identity's value (for a
//! prefix index: under every prefix of it); merging those lists with `always` gives, in
//! file order, every rule that could match — a rule not among them has a condition the
//! identity fails. Evaluating the candidates in ascending order therefore finds the
//! same first match as a linear scan (checked by the `indexed_equals_linear` property
//! test).

use crate::matcher::{Cond, StrPat, container_key};
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
    /// `cgroup` globs, by their literal prefix (`/kubepods.slice/pod1*/**` is filed
    /// under `/kubepods.slice/pod1`).
    CgroupPrefix,
    /// `exe` globs, by their literal prefix.
    ExePrefix,
    /// `unit` globs, by their literal prefix.
    UnitPrefix,
    /// `tenant` (exact names only).
    Tenant,
    /// `runtime` (a dozen values: only better than nothing).
    Runtime,
    /// `qos`.
    Qos,
    /// `kind`.
    Kind,
    /// The rule's `listener`.
    Listener,
}

impl IndexKey {
    /// All keys, most selective first.
    pub const ALL: [IndexKey; 19] = [
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
        Self::CgroupPrefix,
        Self::ExePrefix,
        Self::UnitPrefix,
        Self::Tenant,
        Self::Runtime,
        Self::Qos,
        Self::Kind,
        Self::Listener,
    ];

    /// The key's name: the policy key, with `_prefix` for the glob-prefix indexes.
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
            Self::CgroupPrefix => "cgroup_prefix",
            Self::ExePrefix => "exe_prefix",
            Self::UnitPrefix => "unit_prefix",
            Self::Tenant => "tenant",
            Self::Runtime => "runtime",
            Self::Qos => "qos",
            Self::Kind => "kind",
            Self::Listener => "listener",
        }
    }

    fn is_prefix(self) -> bool {
        matches!(
            self,
            Self::CgroupPrefix | Self::ExePrefix | Self::UnitPrefix
        )
    }
}

/// A value to file a rule under.
enum Val {
    Str(String),
    Num(u64),
}

type Filing = Option<(IndexKey, Vec<Val>)>;

fn exact_strs(key: IndexKey, p: &[StrPat]) -> Filing {
    let v: Option<Vec<Val>> = p
        .iter()
        .map(|p| p.exact().map(|s| Val::Str(s.to_owned())))
        .collect();
    v.map(|v| (key, v))
}

/// Every value a pattern matches starts with its literal prefix (an exact pattern is
/// its own prefix). One-character prefixes (`/`) would put nearly every rule into one
/// bucket: such rules stay unindexed.
fn prefixes(key: IndexKey, p: &[StrPat]) -> Filing {
    let v: Option<Vec<Val>> = p
        .iter()
        .map(|p| {
            Some(p.literal_prefix())
                .filter(|x| x.len() >= 2)
                .map(|x| Val::Str(x.to_owned()))
        })
        .collect();
    v.map(|v| (key, v))
}

fn nums(key: IndexKey, v: impl Iterator<Item = u64>) -> Filing {
    Some((key, v.map(Val::Num).collect()))
}

/// How `cond` could index its rule, if at all.
fn filing(cond: &Cond) -> Filing {
    match cond {
        Cond::Container(p) => Some((
            IndexKey::Container,
            p.iter()
                .map(|p| Val::Str(container_key(p.src()).into_owned()))
                .collect(),
        )),
        Cond::CgroupId(v) => nums(IndexKey::CgroupId, v.iter().copied()),
        Cond::PodUid(p) => exact_strs(IndexKey::PodUid, p),
        Cond::Cgroup(p) => {
            exact_strs(IndexKey::Cgroup, p).or_else(|| prefixes(IndexKey::CgroupPrefix, p))
        }
        Cond::Unit(p) => {
            exact_strs(IndexKey::Unit, p).or_else(|| prefixes(IndexKey::UnitPrefix, p))
        }
        Cond::UserUnit(p) => exact_strs(IndexKey::UserUnit, p),
        Cond::Exe(p) => exact_strs(IndexKey::Exe, p).or_else(|| prefixes(IndexKey::ExePrefix, p)),
        Cond::Uid(v) => nums(IndexKey::Uid, v.iter().map(|&u| u64::from(u))),
        Cond::UsernsUid(v) => nums(IndexKey::UsernsUid, v.iter().map(|&u| u64::from(u))),
        Cond::Gid(v) => nums(IndexKey::Gid, v.iter().map(|&u| u64::from(u))),
        Cond::Slice(p) => exact_strs(IndexKey::Slice, p),
        Cond::Tenant(p) => exact_strs(IndexKey::Tenant, p),
        // Fieldless enums: their discriminant is a stable key within one process.
        Cond::Runtime(v) => nums(IndexKey::Runtime, v.iter().map(|&r| r as u64)),
        Cond::Qos(v) => nums(IndexKey::Qos, v.iter().map(|&q| q as u64)),
        Cond::Kind(v) => nums(IndexKey::Kind, v.iter().map(|&k| k as u64)),
        _ => None,
    }
}

/// Chooses the index key for a rule: the most selective one it offers.
fn choose(rule: &Rule) -> Filing {
    let mut best: Filing = rule
        .listener()
        .map(|l| (IndexKey::Listener, vec![Val::Str(l.to_owned())]));
    for c in &rule.matcher().conds {
        if let Some((k, v)) = filing(c)
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
    /// For prefix indexes: the distinct key lengths in bytes, ascending.
    prefix_lens: [Vec<usize>; N],
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
            let Some((k, vals)) = choose(rule) else {
                ix.always.push(n);
                chosen.push(None);
                continue;
            };
            let slot = k as usize;
            ix.counts[slot] += 1;
            for v in vals {
                match v {
                    Val::Str(s) => {
                        if k.is_prefix() {
                            ix.prefix_lens[slot].push(s.len());
                        }
                        push(ix.strs[slot].entry(s.into_boxed_str()).or_default(), n);
                    }
                    Val::Num(x) => push(ix.nums[slot].entry(x).or_default(), n),
                }
            }
            chosen.push(Some(k));
        }
        for lens in &mut ix.prefix_lens {
            lens.sort_unstable();
            lens.dedup();
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

    /// Rule lists filed under every literal prefix of `v` in prefix index `k`.
    fn prefixed<'a>(&'a self, k: IndexKey, v: Option<&str>, out: &mut Lists<'a>) {
        let Some(v) = v else { return };
        let map = &self.strs[k as usize];
        for &len in &self.prefix_lens[k as usize] {
            if len > v.len() {
                break;
            }
            if let Some(l) = v.get(..len).and_then(|head| map.get(head)) {
                out.push(l);
            }
        }
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
        let cgroup = id.cgroup().and_then(|c| c.path.as_deref());
        let unit = wl.and_then(|w| w.unit.as_deref());
        let exe = id.process().and_then(|p| p.exe.as_deref());
        let userns_uid = id
            .user_namespace()
            .and_then(|u| u.uid)
            .map(|u| u64::from(u.get()));

        let mut lists = Lists::default();
        lists.push(&self.always);
        lists.push(self.s(IndexKey::Container, container.as_deref()));
        lists.push(self.n(IndexKey::CgroupId, id.cgroup().map(|c| c.id.get())));
        lists.push(self.s(
            IndexKey::PodUid,
            wl.and_then(|w| w.pod.as_ref()).map(|p| &*p.uid),
        ));
        lists.push(self.s(IndexKey::Cgroup, cgroup));
        lists.push(self.s(IndexKey::Unit, unit));
        lists.push(self.s(IndexKey::UserUnit, wl.and_then(|w| w.user_unit.as_deref())));
        lists.push(self.s(IndexKey::Exe, exe));
        lists.push(self.n(IndexKey::Uid, Some(u64::from(id.peer().uid.get()))));
        lists.push(self.n(IndexKey::UsernsUid, userns_uid));
        lists.push(self.n(IndexKey::Gid, Some(u64::from(id.peer().gid.get()))));
        lists.push(self.s(IndexKey::Slice, wl.and_then(|w| w.slice.as_deref())));
        self.prefixed(IndexKey::CgroupPrefix, cgroup, &mut lists);
        self.prefixed(IndexKey::ExePrefix, exe, &mut lists);
        self.prefixed(IndexKey::UnitPrefix, unit, &mut lists);
        lists.push(self.s(IndexKey::Tenant, ctx.tenant));
        let inner = wl.and_then(|w| w.chain.last());
        lists.push(self.n(IndexKey::Runtime, inner.map(|e| e.runtime as u64)));
        lists.push(self.n(
            IndexKey::Qos,
            wl.and_then(|w| w.pod.as_ref()).map(|p| p.qos as u64),
        ));
        lists.push(self.n(IndexKey::Kind, inner.map(|e| e.kind as u64)));
        lists.push(self.s(IndexKey::Listener, ctx.listener));

        // Usually one to three lists are non-empty: a k-way merge by scanning heads is
        // cheaper than a heap at that size.
        let live = lists.as_mut_slice();
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

/// The non-empty candidate lists of one decision: on the stack unless an identity hits
/// more than 32 (many distinct glob-prefix lengths).
#[derive(Default)]
struct Lists<'a> {
    arr: [&'a [u32]; 32],
    n: usize,
    more: Vec<&'a [u32]>,
}

impl<'a> Lists<'a> {
    fn push(&mut self, l: &'a [u32]) {
        if l.is_empty() {
            return;
        }
        if self.n < self.arr.len() {
            self.arr[self.n] = l;
            self.n += 1;
        } else {
            self.more.push(l);
        }
    }

    fn as_mut_slice(&mut self) -> &mut [&'a [u32]] {
        if self.more.is_empty() {
            &mut self.arr[..self.n]
        } else {
            self.more.extend_from_slice(&self.arr[..self.n]);
            self.n = 0;
            &mut self.more
        }
    }
}
