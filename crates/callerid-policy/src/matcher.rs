//! Compiled match conditions: `[rule.match]` and a listener's `expect`.
//!
//! A [`Matcher`] is a conjunction of conditions, one per key written. Each condition is
//! an any-of over the values given for its key. An attribute the identity does not
//! have (part not collected, peer gone, no container, …) never matches.

use crate::error::ConfigError;
use crate::policy::Context;
use crate::raw::{IntList, RawMatch, RawProvenance, StrList};
use callerid::workload::{ChainElement, Kind, Qos, Runtime};
use callerid::{DriftKind, Identity, Part, PidfdSource, Provenance};
use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;
use serde::de::IntoDeserializer;
use std::fmt::{self, Write as _};
use toml::Spanned;

/// A string pattern: exact when it has no glob metacharacters (and then indexable).
#[derive(Debug, Clone)]
pub(crate) enum StrPat {
    Exact(String),
    /// `prefix` and `suffix` are the literal text before the first and after the last
    /// metacharacter: a cheap necessary condition checked before the regex, so that a
    /// large policy of distinct globs rejects most of them with a `starts_with`.
    Glob {
        src: String,
        prefix: String,
        suffix: String,
        m: GlobMatcher,
    },
}

impl StrPat {
    fn is_match(&self, s: &str) -> bool {
        match self {
            Self::Exact(e) => e == s,
            Self::Glob {
                prefix, suffix, m, ..
            } => s.starts_with(prefix.as_str()) && s.ends_with(suffix.as_str()) && m.is_match(s),
        }
    }
    pub(crate) fn exact(&self) -> Option<&str> {
        match self {
            Self::Exact(e) => Some(e),
            Self::Glob { .. } => None,
        }
    }
    /// Text every matching value starts with.
    pub(crate) fn literal_prefix(&self) -> &str {
        match self {
            Self::Exact(e) => e,
            Self::Glob { prefix, .. } => prefix,
        }
    }
    fn src(&self) -> &str {
        match self {
            Self::Exact(e) => e,
            Self::Glob { src, .. } => src,
        }
    }
}

/// A `container` value: a hex prefix (≥ 12 chars, case-insensitive) or, for runtimes
/// whose ids are not hex (LXC names, ECS task ids, garden handles), an exact id.
#[derive(Debug, Clone)]
pub(crate) enum ContainerPat {
    HexPrefix(String),
    Exact(String),
}

/// Characters of a container id that the container index keys on.
pub(crate) const CONTAINER_KEY_CHARS: usize = 12;

/// The container index key of an id or pattern: its first 12 characters, ASCII-lowercased.
/// A hex prefix and every id it matches share this key; so do an exact id and itself.
pub(crate) fn container_key(s: &str) -> std::borrow::Cow<'_, str> {
    let end = s
        .char_indices()
        .nth(CONTAINER_KEY_CHARS)
        .map_or(s.len(), |(i, _)| i);
    let head = &s[..end];
    if head.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(head.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(head)
    }
}

impl ContainerPat {
    fn is_match(&self, id: &str) -> bool {
        match self {
            Self::HexPrefix(p) => {
                id.len() >= p.len() && id.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            }
            Self::Exact(e) => e == id,
        }
    }
    pub(crate) fn src(&self) -> &str {
        match self {
            Self::HexPrefix(p) | Self::Exact(p) => p,
        }
    }
}

/// The key of `part` under `provenance` (the JSON name, DESIGN.md §2).
fn part_name(part: Part) -> &'static str {
    match part {
        Part::Peer => "peer",
        Part::Process => "process",
        Part::Cgroup => "cgroup",
        Part::Namespaces => "namespaces",
        Part::UserNamespace => "user_namespace",
        Part::Workload => "workload",
    }
}

/// `drift` (any change) or `drift_<what>` (one kind of change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DriftSel {
    Any,
    One(DriftKind),
}

/// One compiled condition. All values given for a key are alternatives.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Uid(Vec<u32>),
    Gid(Vec<u32>),
    Groups(Vec<u32>),
    SecurityLabel(Vec<StrPat>),
    Cgroup(Vec<StrPat>),
    CgroupId(Vec<u64>),
    Container(Vec<ContainerPat>),
    Runtime(Vec<Runtime>),
    Kind(Vec<Kind>),
    PodUid(Vec<StrPat>),
    Qos(Vec<Qos>),
    Unit(Vec<StrPat>),
    UserUnit(Vec<StrPat>),
    Slice(Vec<StrPat>),
    Exe(Vec<StrPat>),
    UsernsInitial(bool),
    UsernsUid(Vec<u32>),
    UsernsGid(Vec<u32>),
    Tenant(Vec<StrPat>),
    Provenance(Part, Vec<Provenance>),
    Pidfd(Vec<PidfdSource>),
    Drift(DriftSel, bool),
}

fn innermost(id: &Identity) -> Option<&ChainElement<'static>> {
    id.workload()?.chain.last()
}

fn any_str(pats: &[StrPat], v: Option<&str>) -> bool {
    v.is_some_and(|v| pats.iter().any(|p| p.is_match(v)))
}

fn serde_name<T: serde::Serialize>(v: &T) -> String {
    // Our vocabularies serialise to a bare string; reuse that so names never diverge.
    match toml::Value::try_from(v) {
        Ok(toml::Value::String(s)) => s,
        _ => String::from("?"),
    }
}

impl Cond {
    /// The key as written in the file.
    pub(crate) fn key(&self) -> String {
        match self {
            Self::Uid(_) => "uid".into(),
            Self::Gid(_) => "gid".into(),
            Self::Groups(_) => "groups".into(),
            Self::SecurityLabel(_) => "security_label".into(),
            Self::Cgroup(_) => "cgroup".into(),
            Self::CgroupId(_) => "cgroup_id".into(),
            Self::Container(_) => "container".into(),
            Self::Runtime(_) => "runtime".into(),
            Self::Kind(_) => "kind".into(),
            Self::PodUid(_) => "pod_uid".into(),
            Self::Qos(_) => "qos".into(),
            Self::Unit(_) => "unit".into(),
            Self::UserUnit(_) => "user_unit".into(),
            Self::Slice(_) => "slice".into(),
            Self::Exe(_) => "exe".into(),
            Self::UsernsInitial(_) => "userns_initial".into(),
            Self::UsernsUid(_) => "userns_uid".into(),
            Self::UsernsGid(_) => "userns_gid".into(),
            Self::Tenant(_) => "tenant".into(),
            Self::Provenance(p, _) => format!("provenance.{}", part_name(*p)),
            Self::Pidfd(_) => "provenance.pidfd".into(),
            Self::Drift(DriftSel::Any, _) => "drift".into(),
            Self::Drift(DriftSel::One(k), _) => format!("drift_{}", serde_name(k)),
        }
    }

    /// Whether the identity satisfies this condition. Allocation-free.
    pub(crate) fn eval(&self, id: &Identity, ctx: &Context<'_>) -> bool {
        let wl = id.workload();
        match self {
            Self::Uid(v) => v.contains(&id.peer().uid.get()),
            Self::Gid(v) => v.contains(&id.peer().gid.get()),
            Self::Groups(v) => id
                .peer()
                .groups
                .as_ref()
                .is_some_and(|g| g.iter().any(|g| v.contains(&g.get()))),
            Self::SecurityLabel(p) => any_str(p, id.peer().security_label.as_deref()),
            Self::Cgroup(p) => any_str(p, id.cgroup().and_then(|c| c.path.as_deref())),
            Self::CgroupId(v) => id.cgroup().is_some_and(|c| v.contains(&c.id.get())),
            Self::Container(p) => wl
                .and_then(|w| w.container.as_ref())
                .is_some_and(|c| p.iter().any(|p| p.is_match(&c.id))),
            Self::Runtime(v) => innermost(id).is_some_and(|e| v.contains(&e.runtime)),
            Self::Kind(v) => innermost(id).is_some_and(|e| v.contains(&e.kind)),
            Self::PodUid(p) => any_str(p, wl.and_then(|w| w.pod.as_ref()).map(|p| &*p.uid)),
            Self::Qos(v) => wl
                .and_then(|w| w.pod.as_ref())
                .is_some_and(|p| v.contains(&p.qos)),
            Self::Unit(p) => any_str(p, wl.and_then(|w| w.unit.as_deref())),
            Self::UserUnit(p) => any_str(p, wl.and_then(|w| w.user_unit.as_deref())),
            Self::Slice(p) => any_str(p, wl.and_then(|w| w.slice.as_deref())),
            Self::Exe(p) => any_str(p, id.process().and_then(|p| p.exe.as_deref())),
            Self::UsernsInitial(b) => id.user_namespace().is_some_and(|u| u.initial == *b),
            Self::UsernsUid(v) => id
                .user_namespace()
                .and_then(|u| u.uid)
                .is_some_and(|u| v.contains(&u.get())),
            Self::UsernsGid(v) => id
                .user_namespace()
                .and_then(|u| u.gid)
                .is_some_and(|g| v.contains(&g.get())),
            Self::Tenant(p) => any_str(p, ctx.tenant),
            Self::Provenance(part, v) => prov_of(id, *part).is_some_and(|p| v.contains(&p)),
            Self::Pidfd(v) => id.provenance().pidfd.is_some_and(|p| v.contains(&p)),
            Self::Drift(sel, want) => id.drift().is_some_and(|d| {
                let changed = match sel {
                    DriftSel::Any => !d.changed.is_empty(),
                    DriftSel::One(k) => d.changed.contains(k),
                };
                changed == *want
            }),
        }
    }

    /// The identity's value for this key, rendered; `None` when the identity lacks it.
    fn observed(&self, id: &Identity, ctx: &Context<'_>) -> Option<String> {
        let wl = id.workload();
        let pod = wl.and_then(|w| w.pod.as_ref());
        match self {
            Self::Uid(_) => Some(id.peer().uid.to_string()),
            Self::Gid(_) => Some(id.peer().gid.to_string()),
            Self::Groups(_) => id.peer().groups.as_ref().map(|g| list(g.iter())),
            Self::SecurityLabel(_) => id.peer().security_label.clone(),
            Self::Cgroup(_) => id.cgroup().and_then(|c| c.path.clone()),
            Self::CgroupId(_) => id.cgroup().map(|c| c.id.to_string()),
            Self::Container(_) => wl
                .and_then(|w| w.container.as_ref())
                .map(|c| c.id.to_string()),
            Self::Runtime(_) => innermost(id).map(|e| serde_name(&e.runtime)),
            Self::Kind(_) => innermost(id).map(|e| serde_name(&e.kind)),
            Self::PodUid(_) => pod.map(|p| p.uid.to_string()),
            Self::Qos(_) => pod.map(|p| serde_name(&p.qos)),
            Self::Unit(_) => wl.and_then(|w| w.unit.as_deref()).map(str::to_owned),
            Self::UserUnit(_) => wl.and_then(|w| w.user_unit.as_deref()).map(str::to_owned),
            Self::Slice(_) => wl.and_then(|w| w.slice.as_deref()).map(str::to_owned),
            Self::Exe(_) => id.process().and_then(|p| p.exe.clone()),
            Self::UsernsInitial(_) => id.user_namespace().map(|u| u.initial.to_string()),
            Self::UsernsUid(_) => id
                .user_namespace()
                .and_then(|u| u.uid)
                .map(|u| u.to_string()),
            Self::UsernsGid(_) => id
                .user_namespace()
                .and_then(|u| u.gid)
                .map(|g| g.to_string()),
            Self::Tenant(_) => ctx.tenant.map(str::to_owned),
            Self::Provenance(part, _) => prov_of(id, *part).map(|p| serde_name(&p)),
            Self::Pidfd(_) => id.provenance().pidfd.map(|p| serde_name(&p)),
            Self::Drift(sel, _) => id.drift().map(|d| match sel {
                DriftSel::Any if d.changed.is_empty() => "no drift".to_owned(),
                DriftSel::Any => format!("changed: {}", list(d.changed.iter().map(serde_name))),
                DriftSel::One(k) if d.changed.contains(k) => format!("{} changed", serde_name(k)),
                DriftSel::One(k) => format!("{} unchanged", serde_name(k)),
            }),
        }
    }

    /// What the condition asks for, rendered as in the file.
    fn expected(&self) -> String {
        match self {
            Self::Uid(v)
            | Self::Gid(v)
            | Self::Groups(v)
            | Self::UsernsUid(v)
            | Self::UsernsGid(v) => list(v.iter()),
            Self::CgroupId(v) => list(v.iter()),
            Self::SecurityLabel(p)
            | Self::Cgroup(p)
            | Self::PodUid(p)
            | Self::Unit(p)
            | Self::UserUnit(p)
            | Self::Slice(p)
            | Self::Exe(p)
            | Self::Tenant(p) => list(p.iter().map(|p| format!("{:?}", p.src()))),
            Self::Container(p) => list(p.iter().map(|p| format!("{:?}", p.src()))),
            Self::Runtime(v) => list(v.iter().map(serde_name)),
            Self::Kind(v) => list(v.iter().map(serde_name)),
            Self::Qos(v) => list(v.iter().map(serde_name)),
            Self::UsernsInitial(b) => b.to_string(),
            Self::Provenance(_, v) => list(v.iter().map(serde_name)),
            Self::Pidfd(v) => list(v.iter().map(serde_name)),
            Self::Drift(DriftSel::Any, want) => {
                (if *want { "some drift" } else { "no drift" }).to_owned()
            }
            Self::Drift(DriftSel::One(k), want) => {
                format!(
                    "{} {}",
                    serde_name(k),
                    if *want { "changed" } else { "unchanged" }
                )
            }
        }
    }

    /// Explains this condition against an identity.
    pub(crate) fn check(&self, id: &Identity, ctx: &Context<'_>) -> KeyCheck {
        let matched = self.eval(id, ctx);
        let key = self.key();
        let expected = self.expected();
        let detail = match self.observed(id, ctx) {
            None if matches!(self, Self::Tenant(_)) => {
                format!("listener has no tenant; wanted {expected}")
            }
            None if matches!(self, Self::Drift(..)) => {
                format!("drift unknown (no connect-time comparison); wanted {expected}")
            }
            None => format!("peer has no {key} (unknown never matches); wanted {expected}"),
            Some(o) if matched => format!("{o} matches {expected}"),
            Some(o) => format!("{o} does not match {expected}"),
        };
        KeyCheck {
            key,
            matched,
            detail,
        }
    }
}

fn prov_of(id: &Identity, part: Part) -> Option<Provenance> {
    let p = id.provenance();
    match part {
        Part::Peer => p.peer,
        Part::Process => p.process,
        Part::Cgroup => p.cgroup,
        Part::Namespaces => p.namespaces,
        Part::UserNamespace => p.user_namespace,
        Part::Workload => p.workload,
    }
}

fn list<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let mut out = String::from("[");
    for (i, it) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{it}");
    }
    out.push(']');
    out
}

/// Why one key of a rule (or listener `expect`) matched or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyCheck {
    /// The key as written in the file (`uid`, `cgroup`, `provenance.cgroup`, `drift_cgroup`, …).
    pub key: String,
    /// Whether the identity satisfied it.
    pub matched: bool,
    /// The identity's value and what was asked, in words.
    pub detail: String,
}

/// A compiled `[rule.match]` table or listener `expect`: every condition must hold.
///
/// An empty matcher matches every identity.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub(crate) conds: Vec<Cond>,
}

impl Matcher {
    /// Whether `identity` satisfies every condition. Allocation-free.
    pub fn matches(&self, identity: &Identity, ctx: &Context<'_>) -> bool {
        self.conds.iter().all(|c| c.eval(identity, ctx))
    }

    /// Every condition with why it matched or not (no short-circuit).
    pub fn explain(&self, identity: &Identity, ctx: &Context<'_>) -> Vec<KeyCheck> {
        self.conds.iter().map(|c| c.check(identity, ctx)).collect()
    }

    /// The keys this matcher checks, in file-independent canonical order.
    pub fn keys(&self) -> Vec<String> {
        self.conds.iter().map(Cond::key).collect()
    }

    /// `true` when there is no condition (matches everything).
    pub fn is_empty(&self) -> bool {
        self.conds.is_empty()
    }

    pub(crate) fn required(&self, parts: &mut crate::RequiredParts) {
        for c in &self.conds {
            match c {
                Cond::Uid(_)
                | Cond::Gid(_)
                | Cond::Groups(_)
                | Cond::SecurityLabel(_)
                | Cond::CgroupId(_)
                | Cond::Tenant(_)
                | Cond::Cgroup(_)
                | Cond::Provenance(Part::Peer | Part::Cgroup, _) => {}
                Cond::Container(_)
                | Cond::Runtime(_)
                | Cond::Kind(_)
                | Cond::PodUid(_)
                | Cond::Qos(_)
                | Cond::Unit(_)
                | Cond::UserUnit(_)
                | Cond::Slice(_)
                | Cond::Provenance(Part::Workload, _) => parts.workload = true,
                Cond::Exe(_) => {
                    parts.process = true;
                    parts.exe = true;
                }
                Cond::UsernsInitial(_)
                | Cond::UsernsUid(_)
                | Cond::UsernsGid(_)
                | Cond::Provenance(Part::UserNamespace, _) => parts.user_namespace = true,
                Cond::Provenance(Part::Namespaces, _) => parts.namespaces = true,
                Cond::Provenance(Part::Process, _) | Cond::Pidfd(_) => parts.process = true,
                Cond::Drift(..) => {
                    parts.process = true;
                    parts.drift = true;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Compilation from the raw file.

/// Compiles and validates `[rule.match]` / `expect`. `text` is the whole file (for spans).
pub(crate) fn compile(text: &str, raw: &RawMatch) -> Result<Matcher, ConfigError> {
    let err = |span: std::ops::Range<usize>, msg: String| ConfigError::invalid(text, span, msg);
    for (key, v, why) in [
        (
            "comm",
            &raw.comm,
            "the process chooses its own name (prctl, exec argv[0])",
        ),
        (
            "cmdline",
            &raw.cmdline,
            "the process writes its own command line",
        ),
        (
            "pid",
            &raw.pid,
            "pids are reused; match uid, cgroup, container or unit instead",
        ),
        (
            "ppid",
            &raw.ppid,
            "pids are reused; match uid, cgroup, container or unit instead",
        ),
    ] {
        if let Some(v) = v {
            let hint = if key == "comm" || key == "cmdline" {
                format!(
                    "`{key}` is not matchable: it is forgeable ({why}); match `exe`, `unit`, `container` or `cgroup` instead"
                )
            } else {
                format!("`{key}` is not matchable: {why}")
            };
            return Err(err(key_span(text, v.span(), key), hint));
        }
    }

    let mut conds = Vec::new();
    let ints32 = |v: &Spanned<IntList>, key: &str| -> Result<Vec<u32>, ConfigError> {
        nonempty(text, v.span(), &v.get_ref().0, key)?;
        v.get_ref()
            .0
            .iter()
            .map(|&i| {
                u32::try_from(i).map_err(|_| {
                    err(
                        v.span(),
                        format!("`{key}`: {i} is not a valid id (0..=4294967295)"),
                    )
                })
            })
            .collect()
    };
    let globs =
        |v: &Spanned<StrList>, key: &str, path_like: bool| -> Result<Vec<StrPat>, ConfigError> {
            nonempty(text, v.span(), &v.get_ref().0, key)?;
            v.get_ref()
                .0
                .iter()
                .map(|s| str_pat(s, path_like).map_err(|m| err(v.span(), format!("`{key}`: {m}"))))
                .collect()
        };

    if let Some(v) = &raw.uid {
        conds.push(Cond::Uid(ints32(v, "uid")?));
    }
    if let Some(v) = &raw.gid {
        conds.push(Cond::Gid(ints32(v, "gid")?));
    }
    if let Some(v) = &raw.groups {
        conds.push(Cond::Groups(ints32(v, "groups")?));
    }
    if let Some(v) = &raw.security_label {
        conds.push(Cond::SecurityLabel(globs(v, "security_label", false)?));
    }
    if let Some(v) = &raw.cgroup {
        conds.push(Cond::Cgroup(globs(v, "cgroup", true)?));
    }
    if let Some(v) = &raw.cgroup_id {
        nonempty(text, v.span(), &v.get_ref().0, "cgroup_id")?;
        let ids = v
            .get_ref()
            .0
            .iter()
            .map(|&i| {
                u64::try_from(i)
                    .map_err(|_| err(v.span(), format!("`cgroup_id`: {i} is not a cgroup id")))
            })
            .collect::<Result<_, _>>()?;
        conds.push(Cond::CgroupId(ids));
    }
    if let Some(v) = &raw.container {
        nonempty(text, v.span(), &v.get_ref().0, "container")?;
        let pats = v
            .get_ref()
            .0
            .iter()
            .map(|s| container_pat(s).map_err(|m| err(v.span(), format!("`container`: {m}"))))
            .collect::<Result<_, _>>()?;
        conds.push(Cond::Container(pats));
    }
    if let Some(v) = &raw.runtime {
        conds.push(Cond::Runtime(vocab(text, v, "runtime")?));
    }
    if let Some(v) = &raw.kind {
        conds.push(Cond::Kind(vocab(text, v, "kind")?));
    }
    if let Some(v) = &raw.pod_uid {
        conds.push(Cond::PodUid(globs(v, "pod_uid", false)?));
    }
    if let Some(v) = &raw.qos {
        conds.push(Cond::Qos(vocab(text, v, "qos")?));
    }
    if let Some(v) = &raw.unit {
        conds.push(Cond::Unit(globs(v, "unit", false)?));
    }
    if let Some(v) = &raw.user_unit {
        conds.push(Cond::UserUnit(globs(v, "user_unit", false)?));
    }
    if let Some(v) = &raw.slice {
        conds.push(Cond::Slice(globs(v, "slice", false)?));
    }
    if let Some(v) = &raw.exe {
        conds.push(Cond::Exe(globs(v, "exe", true)?));
    }
    if let Some(b) = raw.userns_initial {
        conds.push(Cond::UsernsInitial(b));
    }
    if let Some(v) = &raw.userns_uid {
        conds.push(Cond::UsernsUid(ints32(v, "userns_uid")?));
    }
    if let Some(v) = &raw.userns_gid {
        conds.push(Cond::UsernsGid(ints32(v, "userns_gid")?));
    }
    if let Some(v) = &raw.tenant {
        conds.push(Cond::Tenant(globs(v, "tenant", false)?));
    }
    if let Some(p) = &raw.provenance {
        compile_provenance(text, p, &mut conds)?;
    }
    for (sel, v) in [
        (DriftSel::Any, raw.drift),
        (DriftSel::One(DriftKind::Cgroup), raw.drift_cgroup),
        (DriftSel::One(DriftKind::Euid), raw.drift_euid),
        (DriftSel::One(DriftKind::Egid), raw.drift_egid),
        (DriftSel::One(DriftKind::Exe), raw.drift_exe),
    ] {
        if let Some(b) = v {
            conds.push(Cond::Drift(sel, b));
        }
    }
    Ok(Matcher { conds })
}

/// The span of `key` written before the value at `value` on the same line, so that an
/// error about the key itself points at the key; the value's span when not found.
fn key_span(text: &str, value: std::ops::Range<usize>, key: &str) -> std::ops::Range<usize> {
    let start = value.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    match text[line_start..start].rfind(key) {
        Some(i) => line_start + i..line_start + i + key.len(),
        None => value,
    }
}

fn compile_provenance(
    text: &str,
    p: &Spanned<RawProvenance>,
    conds: &mut Vec<Cond>,
) -> Result<(), ConfigError> {
    let raw = p.get_ref();
    let before = conds.len();
    for (part, v) in [
        (Part::Peer, &raw.peer),
        (Part::Process, &raw.process),
        (Part::Cgroup, &raw.cgroup),
        (Part::Namespaces, &raw.namespaces),
        (Part::UserNamespace, &raw.user_namespace),
        (Part::Workload, &raw.workload),
    ] {
        if let Some(v) = v {
            let key = format!("provenance.{}", part_name(part));
            conds.push(Cond::Provenance(part, vocab(text, v, &key)?));
        }
    }
    if let Some(v) = &raw.pidfd {
        conds.push(Cond::Pidfd(vocab(text, v, "provenance.pidfd")?));
    }
    if conds.len() == before {
        return Err(ConfigError::invalid(
            text,
            p.span(),
            "`provenance` is empty: name a part, e.g. `provenance = { cgroup = [\"kernel_connect\", \"kernel_now\"] }`",
        ));
    }
    Ok(())
}

/// An empty list would be a rule that silently never matches, so it is refused.
fn nonempty<T>(
    text: &str,
    span: std::ops::Range<usize>,
    items: &[T],
    key: &str,
) -> Result<(), ConfigError> {
    if items.is_empty() {
        return Err(ConfigError::invalid(
            text,
            span,
            format!("`{key}` is an empty list, which never matches; remove the key or give values"),
        ));
    }
    Ok(())
}

/// Parses each string through the type's own serde names, so the policy vocabulary is
/// exactly the JSON vocabulary of DESIGN.md §2.
fn vocab<T: for<'de> Deserialize<'de>>(
    text: &str,
    v: &Spanned<StrList>,
    key: &str,
) -> Result<Vec<T>, ConfigError> {
    nonempty(text, v.span(), &v.get_ref().0, key)?;
    v.get_ref()
        .0
        .iter()
        .map(|s| {
            T::deserialize(s.as_str().into_deserializer()).map_err(|e: serde::de::value::Error| {
                ConfigError::invalid(text, v.span(), format!("`{key}`: {e}"))
            })
        })
        .collect()
}

const GLOB_META: [char; 6] = ['*', '?', '[', ']', '{', '}'];

fn has_glob_meta(s: &str) -> bool {
    s.contains(GLOB_META)
}

/// Compiles a string pattern. `path_like`: `*` and `?` stop at `/` (use `**` to cross),
/// and the pattern must be absolute.
pub(crate) fn str_pat(s: &str, path_like: bool) -> Result<StrPat, String> {
    if s.is_empty() {
        return Err("empty pattern".into());
    }
    if path_like && !s.starts_with(['/', '*', '{']) {
        return Err(format!(
            "{s:?} is not absolute: paths start with `/` (use `/**` for any path)"
        ));
    }
    if !has_glob_meta(s) {
        return Ok(StrPat::Exact(s.to_owned()));
    }
    let glob = GlobBuilder::new(s)
        .literal_separator(path_like)
        .backslash_escape(false)
        .build()
        .map_err(|e| format!("bad glob {s:?}: {}", e.kind()))?;
    let first = s.find(GLOB_META).unwrap_or(s.len());
    let last = s.rfind(GLOB_META).map_or(s.len(), |i| i + 1);
    Ok(StrPat::Glob {
        src: s.to_owned(),
        prefix: s[..first].to_owned(),
        suffix: s[last.max(first)..].to_owned(),
        m: glob.compile_matcher(),
    })
}

fn container_pat(s: &str) -> Result<ContainerPat, String> {
    if s.is_empty() {
        return Err("empty container id".into());
    }
    if has_glob_meta(s) {
        return Err(format!(
            "{s:?}: container ids are not globs; give a full id or a prefix of at least 12 hex characters (match many containers with `runtime`, `cgroup` or `pod_uid`)"
        ));
    }
    if s.bytes().all(|b| b.is_ascii_hexdigit()) {
        if s.len() < CONTAINER_KEY_CHARS {
            return Err(format!(
                "{s:?} is too short: a container id prefix needs at least {CONTAINER_KEY_CHARS} hex characters, so that it cannot match a container you did not mean"
            ));
        }
        if s.len() > 64 {
            return Err(format!(
                "{s:?} is longer than a 64-hex-character container id"
            ));
        }
        return Ok(ContainerPat::HexPrefix(s.to_ascii_lowercase()));
    }
    Ok(ContainerPat::Exact(s.to_owned()))
}
