//! Listener settings and the gate configuration file.

use crate::decision::Rules;
use crate::error::Error;
use crate::owner::Owner;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default bound on accept-to-decision time.
pub const DEFAULT_DECISION_TIMEOUT: Duration = Duration::from_secs(2);

/// One listening socket and what the daemon does with its connections.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    /// Name: metrics and audit label, `FileDescriptorName=` under socket activation.
    pub name: String,
    /// Socket path to bind when no activated socket carries this name.
    pub path: Option<PathBuf>,
    /// gate: the Unix socket allowed connections are forwarded to. serve: `None`.
    pub backend: Option<PathBuf>,
    /// Permission bits of the socket file.
    pub mode: Option<u32>,
    /// Owner of the socket file.
    pub owner: Option<Owner>,
    /// Tenant tag, visible to the policy.
    pub tenant: Option<String>,
    /// Send a PROXY v2 header with the caller's identity to the backend.
    pub proxy_protocol: bool,
    /// Most connections open at once on this listener (more are refused).
    pub max_connections: Option<usize>,
    /// Most connections open at once per identity (container id, else uid).
    pub max_per_identity: Option<usize>,
    /// Close a forwarded connection after this long without a byte either way.
    pub idle_timeout: Option<Duration>,
    /// Bound on accept-to-decision time (identification, policy, backend connect).
    pub decision_timeout: Duration,
}

impl ListenerSpec {
    /// A listener with defaults: no backend (serve), no limits.
    pub fn new(name: impl Into<String>, path: Option<PathBuf>) -> Self {
        Self {
            name: name.into(),
            path,
            backend: None,
            mode: None,
            owner: None,
            tenant: None,
            proxy_protocol: false,
            max_connections: None,
            max_per_identity: None,
            idle_timeout: None,
            decision_timeout: DEFAULT_DECISION_TIMEOUT,
        }
    }
}

/// A parsed gate configuration: its listeners and its policy.
#[derive(Debug)]
pub(crate) struct GateConfig {
    pub(crate) listeners: Vec<ListenerSpec>,
    pub(crate) rules: Rules,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    name: String,
    path: PathBuf,
    backend: PathBuf,
    mode: Option<String>,
    owner: Option<String>,
    tenant: Option<String>,
    #[serde(default)]
    proxy_protocol: bool,
    max_connections: Option<usize>,
    max_per_identity: Option<usize>,
    idle_timeout: Option<f64>,
    decision_timeout: Option<f64>,
    #[allow(dead_code)]
    expect: Option<toml::Table>,
}

#[derive(serde::Deserialize)]
struct RawGate {
    #[serde(default)]
    listener: Vec<RawListener>,
}

impl GateConfig {
    pub(crate) fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::File {
            what: "read gate config",
            path: path.to_path_buf(),
            source,
        })?;
        let cfg = |message: String| Error::Config {
            path: Some(path.to_path_buf()),
            message,
        };
        let raw: RawGate = toml::from_str(&text).map_err(|e| cfg(e.to_string()))?;
        let rules = Rules::from_text(&text, Some(path))?;
        let mut listeners = Vec::new();
        for l in raw.listener {
            let mode = l
                .mode
                .as_deref()
                .map(parse_mode)
                .transpose()
                .map_err(|m| cfg(format!("listener {}: {m}", l.name)))?;
            let owner = l.owner.as_deref().map(Owner::parse).transpose()?;
            let secs = |v: Option<f64>, what: &str| -> Result<Option<Duration>, Error> {
                v.map(|s| {
                    Duration::try_from_secs_f64(s)
                        .map_err(|e| cfg(format!("listener {}: {what}: {e}", l.name)))
                })
                .transpose()
            };
            listeners.push(ListenerSpec {
                name: l.name.clone(),
                path: Some(l.path),
                backend: Some(l.backend),
                mode,
                owner,
                tenant: l.tenant,
                proxy_protocol: l.proxy_protocol,
                max_connections: l.max_connections,
                max_per_identity: l.max_per_identity,
                idle_timeout: secs(l.idle_timeout, "idle_timeout")?,
                decision_timeout: secs(l.decision_timeout, "decision_timeout")?
                    .unwrap_or(DEFAULT_DECISION_TIMEOUT),
            });
        }
        if listeners.is_empty() {
            return Err(cfg("no [[listener]]: a gate needs at least one".into()));
        }
        Ok(Self { listeners, rules })
    }
}

/// Octal permission bits as written in a config or on the command line (`"0660"`,
/// `"660"`, `"0o660"`).
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!("mode {s:?} is not octal permission bits")),
    }
}
