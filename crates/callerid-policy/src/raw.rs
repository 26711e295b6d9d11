//! The file as written: serde structs that mirror the TOML exactly, with spans kept on
//! every value that validation may complain about. Nothing here is trusted yet.

use serde::Deserialize;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use std::fmt;
use toml::Spanned;

/// `allow` or `deny`, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawAction {
    Allow,
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub(crate) version: Option<Spanned<i64>>,
    pub(crate) default: Option<RawAction>,
    #[serde(default)]
    pub(crate) rule: Vec<RawRule>,
    #[serde(default)]
    pub(crate) listener: Vec<RawListener>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) name: Spanned<String>,
    pub(crate) action: RawAction,
    pub(crate) listener: Option<Spanned<String>>,
    #[serde(rename = "match")]
    pub(crate) matches: Option<Spanned<RawMatch>>,
}

/// `[rule.match]` and a listener's `expect`: the same keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    pub(crate) uid: Option<Spanned<IntList>>,
    pub(crate) gid: Option<Spanned<IntList>>,
    pub(crate) groups: Option<Spanned<IntList>>,
    pub(crate) security_label: Option<Spanned<StrList>>,
    pub(crate) cgroup: Option<Spanned<StrList>>,
    pub(crate) cgroup_id: Option<Spanned<IntList>>,
    pub(crate) container: Option<Spanned<StrList>>,
    pub(crate) runtime: Option<Spanned<StrList>>,
    pub(crate) kind: Option<Spanned<StrList>>,
    pub(crate) pod_uid: Option<Spanned<StrList>>,
    pub(crate) qos: Option<Spanned<StrList>>,
    pub(crate) unit: Option<Spanned<StrList>>,
    pub(crate) user_unit: Option<Spanned<StrList>>,
    pub(crate) slice: Option<Spanned<StrList>>,
    pub(crate) exe: Option<Spanned<StrList>>,
    pub(crate) userns_initial: Option<bool>,
    pub(crate) userns_uid: Option<Spanned<IntList>>,
    pub(crate) userns_gid: Option<Spanned<IntList>>,
    pub(crate) tenant: Option<Spanned<StrList>>,
    pub(crate) provenance: Option<Spanned<RawProvenance>>,
    pub(crate) drift: Option<bool>,
    pub(crate) drift_cgroup: Option<bool>,
    pub(crate) drift_euid: Option<bool>,
    pub(crate) drift_egid: Option<bool>,
    pub(crate) drift_exe: Option<bool>,
    // Accepted by the parser only to be refused with a reason (see `compile`).
    pub(crate) comm: Option<Spanned<IgnoredAny>>,
    pub(crate) cmdline: Option<Spanned<IgnoredAny>>,
    pub(crate) pid: Option<Spanned<IgnoredAny>>,
    pub(crate) ppid: Option<Spanned<IgnoredAny>>,
}

/// `provenance = { cgroup = ["kernel_connect", "kernel_now"], … }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvenance {
    pub(crate) peer: Option<Spanned<StrList>>,
    pub(crate) process: Option<Spanned<StrList>>,
    pub(crate) cgroup: Option<Spanned<StrList>>,
    pub(crate) namespaces: Option<Spanned<StrList>>,
    pub(crate) user_namespace: Option<Spanned<StrList>>,
    pub(crate) workload: Option<Spanned<StrList>>,
    pub(crate) pidfd: Option<Spanned<StrList>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListener {
    pub(crate) name: Spanned<String>,
    pub(crate) path: Spanned<String>,
    pub(crate) backend: Spanned<String>,
    pub(crate) mode: Option<Spanned<IntOrStr>>,
    pub(crate) owner: Option<Spanned<IntOrStr>>,
    pub(crate) tenant: Option<Spanned<String>>,
    pub(crate) expect: Option<Spanned<RawMatch>>,
    pub(crate) proxy_protocol: Option<bool>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) max_per_identity: Option<Spanned<i64>>,
    pub(crate) idle_timeout: Option<Spanned<IntOrStr>>,
    pub(crate) decision_timeout: Option<Spanned<IntOrStr>>,
}

/// An integer or a list of integers (`uid = 0` or `uid = [0, 1000]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IntList(pub(crate) Vec<i64>);

/// A string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StrList(pub(crate) Vec<String>);

/// A value that may be written as an integer or a string (`mode`, `owner`, durations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IntOrStr {
    Int(i64),
    Str(String),
}

struct IntListVisitor;

impl<'de> Visitor<'de> for IntListVisitor {
    type Value = IntList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a list of integers")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntList, E> {
        Ok(IntList(vec![v]))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntList, E> {
        i64::try_from(v)
            .map(|v| IntList(vec![v]))
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IntList, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<i64>()? {
            out.push(v);
        }
        Ok(IntList(out))
    }
}

impl<'de> Deserialize<'de> for IntList {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntListVisitor)
    }
}

struct StrListVisitor;

impl<'de> Visitor<'de> for StrListVisitor {
    type Value = StrList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<StrList, E> {
        Ok(StrList(vec![v.to_owned()]))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<StrList, E> {
        Ok(StrList(vec![v]))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrList, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<String>()? {
            out.push(v);
        }
        Ok(StrList(out))
    }
}

impl<'de> Deserialize<'de> for StrList {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrListVisitor)
    }
}

struct IntOrStrVisitor;

impl Visitor<'_> for IntOrStrVisitor {
    type Value = IntOrStr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a string")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrStr, E> {
        Ok(IntOrStr::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrStr, E> {
        i64::try_from(v)
            .map(IntOrStr::Int)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrStr, E> {
        Ok(IntOrStr::Str(v.to_owned()))
    }
}

impl<'de> Deserialize<'de> for IntOrStr {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrStrVisitor)
    }
}
