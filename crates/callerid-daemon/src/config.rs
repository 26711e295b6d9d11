//! Listener settings and the gate configuration file (schema owned by
//! `callerid-policy`; this module resolves owners and fills daemon defaults).

use crate::decision::Rules;
use crate::error::Error;
use crate::owner::Owner;
use std::path::PathBuf;
use std::time::Duration;

pub use callerid_policy::DEFAULT_DECISION_TIMEOUT;

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
            proxy_protocol: false,
            max_connections: None,
            max_per_identity: None,
            idle_timeout: None,
            decision_timeout: DEFAULT_DECISION_TIMEOUT,
        }
    }

    fn from_policy(l: &callerid_policy::ListenerSpec) -> Result<Self, Error> {
        let owner = match &l.owner {
            None => None,
            Some(o) => {
                let spec = format!("{}:{}", principal(&o.user), principal(&o.group));
                Some(Owner::parse(&spec)?)
            }
        };
        Ok(Self {
            name: l.name.clone(),
            path: Some(l.path.clone()),
            backend: Some(l.backend.clone()),
            mode: l.mode,
            owner,
            proxy_protocol: l.proxy_protocol,
            max_connections: l.max_connections.map(|n| n.get() as usize),
            max_per_identity: l.max_per_identity.map(|n| n.get() as usize),
            idle_timeout: l.idle_timeout,
            decision_timeout: l.decision_timeout,
        })
    }
}

fn principal(p: &Option<callerid_policy::Principal>) -> String {
    match p {
        None => String::new(),
        Some(callerid_policy::Principal::Id(n)) => n.to_string(),
        Some(callerid_policy::Principal::Name(s)) => s.clone(),
    }
}

/// A parsed gate configuration: its listeners and its policy.
#[derive(Debug)]
pub(crate) struct GateConfig {
    pub(crate) listeners: Vec<ListenerSpec>,
}

impl GateConfig {
    pub(crate) fn load(path: &std::path::Path) -> Result<Self, Error> {
        let rules = Rules::from_gate_config(path)?;
        let listeners = rules
            .listeners()
            .iter()
            .map(ListenerSpec::from_policy)
            .collect::<Result<Vec<_>, _>>()?;
        if listeners.is_empty() {
            return Err(Error::Config {
                path: Some(path.to_path_buf()),
                message: "no [[listener]]: a gate needs at least one".into(),
            });
        }
        Ok(Self { listeners })
    }
}

/// Octal permission bits as written on the command line (`0660`, `660`, `0o660`).
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!("mode {s:?} is not octal permission bits")),
    }
}
