//! The gate config: a policy plus `[[listener]]` tables, validated as pure data (the
//! daemon resolves user/group names and binds sockets).

use crate::error::ConfigError;
use crate::error::Lines;
use crate::matcher::{Matcher, compile};
use crate::policy::{Action, ConfigWarning, Policy, RequiredParts, Rule};
use crate::raw::{IntOrStr, RawAction, RawFile, RawListener};
use serde::Serialize;
use std::collections::HashSet;
use std::num::NonZeroU32;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// The only policy file version this crate reads.
pub const POLICY_VERSION: i64 = 1;

/// Decision timeout a listener gets when its config does not say.
pub const DEFAULT_DECISION_TIMEOUT: Duration = Duration::from_secs(5);

/// A user or group as written in `owner`: a number, or a name for the daemon to resolve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Principal {
    /// A numeric uid or gid.
    Id(u32),
    /// A user or group name (resolved by the daemon, not here: this crate does no I/O).
    Name(String),
}

/// `owner = "user:group"` (either side may be numeric or omitted) or `owner = UID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// Owning user; `None` leaves it as created.
    pub user: Option<Principal>,
    /// Owning group; `None` leaves it as created.
    pub group: Option<Principal>,
}

/// One validated `[[listener]]`.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    /// Unique name (letters, digits, `.`, `_`, `-`): rules' `listener`, metrics label,
    /// and the socket-activation `FileDescriptorName`.
    pub name: String,
    /// Absolute path of the socket to listen on.
    pub path: PathBuf,
    /// Absolute path of the Unix socket allowed connections are forwarded to.
    pub backend: PathBuf,
    /// Permission bits for the socket file (≤ 0o777); `None` leaves the umask's.
    pub mode: Option<u32>,
    /// Owner of the socket file.
    pub owner: Option<Owner>,
    /// Tenant tag, matched by rules' `tenant` key.
    pub tenant: Option<String>,
    /// Conditions every peer on this listener must meet before rules are consulted.
    pub expect: Option<Matcher>,
    /// Send a PROXY protocol v2 header to the backend.
    pub proxy_protocol: bool,
    /// Connections open at once on this listener.
    pub max_connections: Option<NonZeroU32>,
    /// Connections open at once per identity (container id, else uid).
    pub max_per_identity: Option<NonZeroU32>,
    /// Close a forwarded connection idle this long; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Bound on accept-to-decision time ([`DEFAULT_DECISION_TIMEOUT`] when unset).
    pub decision_timeout: Duration,
    /// 1-based line of the listener's `name`.
    pub line: usize,
}

/// A gate config: the policy and its listeners (`callerid gate --config`,
/// `callerid check --config`).
#[derive(Debug, Clone)]
pub struct Config {
    /// The rules and default.
    pub policy: Policy,
    /// Listeners in file order (names and paths unique).
    pub listeners: Vec<ListenerSpec>,
}

impl Config {
    /// Parses and validates a whole file: policy and (optional) listeners. A rule's
    /// `listener` must name one of the file's listeners when the file has any.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let (policy, listeners, _) = compile_file(text)?;
        Ok(Self { policy, listeners })
    }

    /// Likely mistakes that do not make the file invalid: [`Policy::warnings`], plus
    /// listener-bound rules in a file without listeners (under `serve` they never apply).
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let mut out = self.policy.warnings();
        if self.listeners.is_empty() {
            for r in self.policy.rules() {
                if let Some(l) = r.listener() {
                    out.push(ConfigWarning {
                        line: r.line(),
                        message: format!(
                            "rule {:?} is limited to listener {l:?}, but this file defines no listeners: under `serve` it never applies",
                            r.name()
                        ),
                    });
                }
            }
        }
        out
    }

    /// Looks a listener up by name.
    pub fn listener(&self, name: &str) -> Option<&ListenerSpec> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// Parts the rules and every listener's `expect` look at.
    pub fn required_parts(&self) -> RequiredParts {
        let mut p = self.policy.required_parts();
        for l in &self.listeners {
            if let Some(e) = &l.expect {
                let mut q = RequiredParts::default();
                e.required(&mut q);
                p = p.union(q);
            }
        }
        p
    }
}

/// A compiled file: policy, listeners, and the span of the first `[[listener]]` name.
pub(crate) type Compiled = (Policy, Vec<ListenerSpec>, Option<Range<usize>>);

/// Parses the file; returns the policy, the listeners and the span of the first
/// listener (so `Policy::parse` can refuse listener tables with a location).
pub(crate) fn compile_file(text: &str) -> Result<Compiled, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::from((text, e)))?;
    match &raw.version {
        None => {
            return Err(ConfigError::at(
                text,
                None,
                crate::ConfigErrorKind::Invalid,
                format!(
                    "missing `version = {POLICY_VERSION}` (the policy format version) at the top of the file"
                ),
            ));
        }
        Some(v) if *v.get_ref() != POLICY_VERSION => {
            return Err(ConfigError::invalid(
                text,
                v.span(),
                format!(
                    "unsupported policy version {}: this callerid reads version {POLICY_VERSION}",
                    v.get_ref()
                ),
            ));
        }
        Some(_) => {}
    }

    // Line numbers for every rule: one pass over the text, not one per rule.
    let lines = Lines::new(text);
    let mut listeners = Vec::with_capacity(raw.listener.len());
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    for l in &raw.listener {
        let spec = compile_listener(text, &lines, l)?;
        if !names.insert(spec.name.clone()) {
            return Err(ConfigError::invalid(
                text,
                l.name.span(),
                format!("duplicate listener name {:?}", spec.name),
            ));
        }
        if !paths.insert(spec.path.clone()) {
            return Err(ConfigError::invalid(
                text,
                l.path.span(),
                format!(
                    "listener path {} is used by another listener",
                    spec.path.display()
                ),
            ));
        }
        listeners.push(spec);
    }

    let mut rules = Vec::with_capacity(raw.rule.len());
    let mut rule_names = HashSet::new();
    for r in &raw.rule {
        let name = r.name.get_ref();
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(ConfigError::invalid(
                text,
                r.name.span(),
                "rule `name` must be non-empty printable text",
            ));
        }
        if !rule_names.insert(name.as_str()) {
            return Err(ConfigError::invalid(
                text,
                r.name.span(),
                format!(
                    "duplicate rule name {name:?}: names identify rules in decisions, audit and metrics"
                ),
            ));
        }
        if let Some(l) = &r.listener
            && !listeners.is_empty()
            && !names.contains(l.get_ref())
        {
            let known: Vec<_> = listeners.iter().map(|l| l.name.as_str()).collect();
            return Err(ConfigError::invalid(
                text,
                l.span(),
                format!(
                    "rule {name:?} names listener {:?}, which is not defined (listeners: {})",
                    l.get_ref(),
                    known.join(", ")
                ),
            ));
        }
        let matcher = match &r.matches {
            Some(m) => compile(text, m.get_ref())?,
            None => Matcher::default(),
        };
        rules.push(Rule {
            name: name.clone(),
            action: action(r.action),
            listener: r.listener.as_ref().map(|l| l.get_ref().clone()),
            matcher,
            line: lines.line(r.name.span().start),
            index_key: None,
        });
    }
    let default = raw.default.map_or(Action::Deny, action);
    let first_listener = raw.listener.first().map(|l| l.name.span());
    Ok((
        Policy::from_rules(default, rules),
        listeners,
        first_listener,
    ))
}

fn action(a: RawAction) -> Action {
    match a {
        RawAction::Allow => Action::Allow,
        RawAction::Deny => Action::Deny,
    }
}

fn abs_path(text: &str, v: &Spanned<String>, key: &str) -> Result<PathBuf, ConfigError> {
    let s = v.get_ref();
    if !s.starts_with('/') {
        return Err(ConfigError::invalid(
            text,
            v.span(),
            format!("`{key}` must be an absolute path, not {s:?}"),
        ));
    }
    if s.contains('\0') {
        return Err(ConfigError::invalid(
            text,
            v.span(),
            format!("`{key}` contains a NUL byte"),
        ));
    }
    // sun_path holds 108 bytes including the terminating NUL.
    if s.len() > 107 {
        return Err(ConfigError::invalid(
            text,
            v.span(),
            format!(
                "`{key}` is {} bytes; a Unix socket path holds at most 107",
                s.len()
            ),
        ));
    }
    Ok(PathBuf::from(s))
}

fn compile_listener(
    text: &str,
    lines: &Lines,
    l: &RawListener,
) -> Result<ListenerSpec, ConfigError> {
    let name = l.name.get_ref();
    if name.is_empty()
        || name.len() > 255
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(ConfigError::invalid(
            text,
            l.name.span(),
            format!("listener name {name:?} must be 1-255 letters, digits, `.`, `_` or `-`"),
        ));
    }
    let path = abs_path(text, &l.path, "path")?;
    let backend = abs_path(text, &l.backend, "backend")?;
    if path == backend {
        return Err(ConfigError::invalid(
            text,
            l.backend.span(),
            "`backend` is the listener's own `path`",
        ));
    }
    let mode = l
        .mode
        .as_ref()
        .map(|m| parse_mode(m.get_ref()).map_err(|e| ConfigError::invalid(text, m.span(), e)))
        .transpose()?;
    let owner = l
        .owner
        .as_ref()
        .map(|o| parse_owner(o.get_ref()).map_err(|e| ConfigError::invalid(text, o.span(), e)))
        .transpose()?;
    let tenant = match &l.tenant {
        Some(t) if t.get_ref().is_empty() => {
            return Err(ConfigError::invalid(text, t.span(), "`tenant` is empty"));
        }
        t => t.as_ref().map(|t| t.get_ref().clone()),
    };
    let expect = l
        .expect
        .as_ref()
        .map(|e| compile(text, e.get_ref()))
        .transpose()?;
    let limit = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<NonZeroU32>, ConfigError> {
        v.as_ref()
            .map(|v| {
                u32::try_from(*v.get_ref())
                    .ok()
                    .and_then(NonZeroU32::new)
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            text,
                            v.span(),
                            format!(
                                "`{key}` must be between 1 and 4294967295 (omit it for no limit)"
                            ),
                        )
                    })
            })
            .transpose()
    };
    let dur = |v: &Option<Spanned<IntOrStr>>, key: &str| -> Result<Option<Duration>, ConfigError> {
        v.as_ref()
            .map(|v| {
                parse_duration(v.get_ref())
                    .map_err(|e| ConfigError::invalid(text, v.span(), format!("`{key}`: {e}")))
            })
            .transpose()
    };
    Ok(ListenerSpec {
        name: name.clone(),
        path,
        backend,
        mode,
        owner,
        tenant,
        expect,
        proxy_protocol: l.proxy_protocol.unwrap_or(false),
        max_connections: limit(&l.max_connections, "max_connections")?,
        max_per_identity: limit(&l.max_per_identity, "max_per_identity")?,
        idle_timeout: dur(&l.idle_timeout, "idle_timeout")?,
        decision_timeout: dur(&l.decision_timeout, "decision_timeout")?
            .unwrap_or(DEFAULT_DECISION_TIMEOUT),
        line: lines.line(l.name.span().start),
    })
}

/// `"0660"`, `"660"`, `"0o660"` or an integer (write `0o660` in TOML). Special bits
/// mean nothing on a socket, so anything above 0o777 is refused — which also catches
/// the decimal slip `mode = 660`.
pub(crate) fn parse_mode(v: &IntOrStr) -> Result<u32, String> {
    let value = match v {
        IntOrStr::Int(i) => {
            u32::try_from(*i).map_err(|_| format!("mode {i} is negative or too large"))?
        }
        IntOrStr::Str(s) => {
            let digits = s.strip_prefix("0o").unwrap_or(s);
            if digits.is_empty()
                || digits.len() > 4
                || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
            {
                return Err(format!(
                    "mode {s:?} is not an octal permission like \"0660\""
                ));
            }
            u32::from_str_radix(digits, 8).map_err(|e| format!("mode {s:?}: {e}"))?
        }
    };
    if value > 0o777 {
        return Err(format!(
            "mode {value:#o} has bits above 0o777 (an integer is taken as is: write octal as \"0660\" or 0o660)"
        ));
    }
    Ok(value)
}

fn principal(s: &str) -> Result<Option<Principal>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(|n| Some(Principal::Id(n)))
            .map_err(|_| format!("{s:?} is not a valid id"));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(format!("{s:?} is not a user or group name"));
    }
    Ok(Some(Principal::Name(s.to_owned())))
}

/// `"user:group"`, `"user"`, `":group"` (names or numbers) or an integer uid.
pub(crate) fn parse_owner(v: &IntOrStr) -> Result<Owner, String> {
    match v {
        IntOrStr::Int(i) => {
            let uid = u32::try_from(*i).map_err(|_| format!("owner {i} is not a uid"))?;
            Ok(Owner {
                user: Some(Principal::Id(uid)),
                group: None,
            })
        }
        IntOrStr::Str(s) => {
            let (u, g) = s.split_once(':').unwrap_or((s, ""));
            if g.contains(':') {
                return Err(format!("owner {s:?} must be \"user:group\""));
            }
            let owner = Owner {
                user: principal(u)?,
                group: principal(g)?,
            };
            if owner.user.is_none() && owner.group.is_none() {
                return Err("owner is empty: give \"user\", \"user:group\" or \":group\"".into());
            }
            Ok(owner)
        }
    }
}

/// Seconds as an integer, or `"<n><unit>"` with unit `ms`, `s`, `m` or `h`.
pub(crate) fn parse_duration(v: &IntOrStr) -> Result<Duration, String> {
    let d = match v {
        IntOrStr::Int(i) => {
            Duration::from_secs(u64::try_from(*i).map_err(|_| format!("{i} is negative"))?)
        }
        IntOrStr::Str(s) => {
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: u64 = num
                .parse()
                .map_err(|_| format!("{s:?} is not a duration like \"30s\", \"500ms\", \"5m\""))?;
            let ms = match unit {
                "ms" => Some(n),
                "s" | "" => n.checked_mul(1000),
                "m" => n.checked_mul(60_000),
                "h" => n.checked_mul(3_600_000),
                _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
            };
            Duration::from_millis(ms.ok_or_else(|| format!("{s:?} is too long"))?)
        }
    };
    if d.is_zero() {
        return Err("a zero duration would expire at once (omit the key for no timeout)".into());
    }
    Ok(d)
}
