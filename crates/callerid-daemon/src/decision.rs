//! The seam between the daemon and `callerid-policy`: loading, atomic swapping and
//! evaluating the policy, and the verdict the daemon acts on.

use crate::error::Error;
use callerid::Identity;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// What the daemon does with a connection. Its JSON form is the `decision` object
/// of a `serve` answer: `{"allow", "rule", "reasons"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Forward / answer (`true`) or close (`false`).
    pub allow: bool,
    /// The rule that decided; `None` when the policy default did.
    pub rule: Option<String>,
    /// Why, in words: the matching rule's reasons, or what failed.
    pub reasons: Vec<String>,
}

impl Verdict {
    /// A deny that no rule made: identification failed, a limit or timeout hit.
    pub(crate) fn refuse(reason: String) -> Self {
        Self {
            allow: false,
            rule: None,
            reasons: vec![reason],
        }
    }
}

/// What a listener tells the policy about itself.
#[derive(Debug, Clone)]
pub(crate) struct ListenerCtx {
    pub(crate) name: Arc<str>,
    pub(crate) tenant: Option<String>,
}

/// A compiled policy.
#[derive(Debug)]
pub(crate) struct Rules {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    /// Embedded default until the policy crate's engine is wired in: allow all.
    AllowAll,
}

impl Rules {
    /// The embedded default: allow all, audit all.
    pub(crate) fn embedded_default() -> Self {
        Self {
            inner: Inner::AllowAll,
        }
    }

    /// Compiles a policy file.
    pub(crate) fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::File {
            what: "read policy",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_text(&text, Some(path))
    }

    pub(crate) fn from_text(text: &str, path: Option<&Path>) -> Result<Self, Error> {
        let _: toml::Table = toml::from_str(text).map_err(|e| Error::Config {
            path: path.map(Path::to_path_buf),
            message: e.to_string(),
        })?;
        Ok(Self {
            inner: Inner::AllowAll,
        })
    }

    /// Evaluates the policy (and the listener's `expect`, which overrides any allow).
    pub(crate) fn decide(&self, _identity: &Identity, _listener: &ListenerCtx) -> Verdict {
        match self.inner {
            Inner::AllowAll => Verdict {
                allow: true,
                rule: None,
                reasons: vec!["default: allow".into()],
            },
        }
    }
}

/// Where the policy is reloaded from on SIGHUP.
#[derive(Debug, Clone)]
pub enum PolicySource {
    /// The embedded default (nothing to reload).
    Embedded,
    /// A policy file (`serve --policy`).
    PolicyFile(PathBuf),
    /// A gate configuration file (policy plus listeners; listeners are fixed at start).
    GateConfig(PathBuf),
}

/// The current policy, swapped atomically on reload. Readers take an `Arc` for one
/// decision; a reload never waits for them and never touches established connections.
#[derive(Debug)]
pub(crate) struct PolicyHandle {
    current: RwLock<Arc<Rules>>,
    source: PolicySource,
}

impl PolicyHandle {
    pub(crate) fn new(rules: Rules, source: PolicySource) -> Self {
        Self {
            current: RwLock::new(Arc::new(rules)),
            source,
        }
    }

    pub(crate) fn get(&self) -> Arc<Rules> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads the policy again from its source; on error the current one stays.
    pub(crate) fn reload(&self) -> Result<(), Error> {
        let rules = match &self.source {
            PolicySource::Embedded => return Ok(()),
            PolicySource::PolicyFile(p) => Rules::from_file(p)?,
            PolicySource::GateConfig(p) => crate::config::GateConfig::load(p)?.rules,
        };
        let new = Arc::new(rules);
        match self.current.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        Ok(())
    }

    pub(crate) fn source(&self) -> &PolicySource {
        &self.source
    }
}
