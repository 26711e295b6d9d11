//! The seam between the daemon and `callerid-policy`: loading, atomic swapping and
//! evaluating the policy (and the listeners' `expect`), and choosing which identity
//! parts to collect.

use crate::error::Error;
use callerid::{Identifier, Identity, Parts};
use callerid_policy::{Config, Context, DecidedBy, Outcome, Policy, RequiredParts};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use callerid_policy::Decision;

/// A deny that no rule made: identification failed, a limit or a timeout hit.
pub(crate) fn refuse(rule: Option<String>, reason: String) -> Decision {
    Decision {
        allow: false,
        rule,
        reasons: vec![reason],
    }
}

/// A compiled policy, with the listener table it came with (gate) for `expect` and
/// `tenant`.
#[derive(Debug)]
pub(crate) struct Rules {
    policy: Policy,
    listeners: Vec<callerid_policy::ListenerSpec>,
    required: RequiredParts,
    /// Metric label of each rule, made once per load so counting allocates nothing.
    rule_labels: Vec<Arc<str>>,
}

/// Metric labels for decisions no rule made.
pub(crate) mod labels {
    use std::sync::{Arc, LazyLock};

    macro_rules! label {
        ($name:ident, $text:literal) => {
            pub(crate) fn $name() -> Arc<str> {
                static L: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from($text));
                L.clone()
            }
        };
    }
    label!(default, "(default)");
    label!(expect, "(expect)");
    label!(identify, "(identify)");
    label!(limit, "(limit)");
    label!(backend, "(backend)");
}

impl Rules {
    /// The embedded default: allow all, audit all.
    pub(crate) fn embedded_default() -> Self {
        Self::new(Policy::allow_all(), Vec::new(), None)
    }

    /// Compiles a policy file (`serve --policy`).
    pub(crate) fn from_policy_file(path: &Path) -> Result<Self, Error> {
        let text = read(path, "read policy")?;
        let policy = Policy::parse(&text).map_err(|e| config_error(path, e))?;
        Ok(Self::new(policy, Vec::new(), None))
    }

    /// Compiles a gate config file; also returns its listeners.
    pub(crate) fn from_gate_config(path: &Path) -> Result<Self, Error> {
        let text = read(path, "read gate config")?;
        let cfg = Config::parse(&text).map_err(|e| config_error(path, e))?;
        let required = cfg.required_parts();
        Ok(Self::new(cfg.policy, cfg.listeners, Some(required)))
    }

    fn new(
        policy: Policy,
        listeners: Vec<callerid_policy::ListenerSpec>,
        required: Option<RequiredParts>,
    ) -> Self {
        let required = required.unwrap_or_else(|| policy.required_parts());
        let rule_labels = policy.rules().iter().map(|r| Arc::from(r.name())).collect();
        Self {
            policy,
            listeners,
            required,
            rule_labels,
        }
    }

    pub(crate) fn listeners(&self) -> &[callerid_policy::ListenerSpec] {
        &self.listeners
    }

    /// The context for a listener: its name, and (gate) its `tenant` and `expect` as
    /// the current file says.
    pub(crate) fn context<'a>(&'a self, listener: &'a str) -> Context<'a> {
        match self.listeners.iter().find(|l| l.name == listener) {
            Some(spec) => spec.context(),
            None => Context {
                listener: Some(listener),
                tenant: None,
                expect: None,
            },
        }
    }

    /// Decides without allocating (gate's hot path; reasons are rebuilt for the audit
    /// line by [`Rules::decide`] off the accept path).
    pub(crate) fn evaluate(&self, identity: &Identity, listener: &str) -> Outcome {
        self.policy.evaluate(identity, &self.context(listener))
    }

    /// The full decision with reasons.
    pub(crate) fn decide(&self, identity: &Identity, listener: &str) -> Decision {
        self.policy.decide(identity, &self.context(listener))
    }

    /// Name of the rule behind an outcome; `None` for the default and `expect`.
    pub(crate) fn rule_name(&self, out: &Outcome) -> Option<&str> {
        match out.by {
            DecidedBy::Rule(i) => self.policy.rules().get(i).map(|r| r.name()),
            DecidedBy::Default | DecidedBy::Expect => None,
        }
    }

    /// The metric label of an outcome: the rule name, or what decided instead.
    pub(crate) fn label(&self, out: &Outcome) -> Arc<str> {
        match out.by {
            DecidedBy::Rule(i) => self
                .rule_labels
                .get(i)
                .cloned()
                .unwrap_or_else(labels::default),
            DecidedBy::Default => labels::default(),
            DecidedBy::Expect => labels::expect(),
        }
    }

    /// What the rules and the listeners' `expect` look at.
    pub(crate) fn required(&self) -> RequiredParts {
        self.required
    }
}

fn read(path: &Path, what: &'static str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::File {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn config_error(path: &Path, e: callerid_policy::ConfigError) -> Error {
    Error::Config {
        path: Some(path.to_path_buf()),
        message: e.to_string(),
    }
}

/// Where the policy is reloaded from on SIGHUP.
#[derive(Debug, Clone)]
pub enum PolicySource {
    /// The embedded default (nothing to reload).
    Embedded,
    /// A policy file (`serve --policy`).
    PolicyFile(PathBuf),
    /// A gate configuration file (policy plus listeners; listener sockets, backends
    /// and limits are fixed at start, `expect` and `tenant` follow reloads).
    GateConfig(PathBuf),
}

impl PolicySource {
    pub(crate) fn load(&self) -> Result<Rules, Error> {
        match self {
            Self::Embedded => Ok(Rules::embedded_default()),
            Self::PolicyFile(p) => Rules::from_policy_file(p),
            Self::GateConfig(p) => Rules::from_gate_config(p),
        }
    }
}

/// What the daemon needs collected beyond the rules' own needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputNeeds {
    /// serve answers with the full record.
    pub(crate) everything: bool,
    /// The audit line and the PROXY header carry the pidfs id.
    pub(crate) process: bool,
    /// The audit line names container/pod/unit; per-identity limits key on the
    /// container.
    pub(crate) workload: bool,
}

/// The identity parts to collect for these rules and outputs.
pub(crate) fn parts_for(rules: &Rules, needs: OutputNeeds) -> Parts {
    if needs.everything {
        return Parts::ALL;
    }
    let r = rules.required();
    Parts {
        process: r.process || r.exe || r.drift || needs.process,
        comm: false,
        exe: r.exe,
        namespaces: r.namespaces,
        user_namespace: r.user_namespace,
        workload: r.workload || needs.workload,
    }
}

/// The policy in force and the identifier that collects what it needs, swapped
/// together. Readers take an `Arc` for one decision; a reload never waits for them
/// and never touches established connections.
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) rules: Rules,
    pub(crate) identifier: Arc<Identifier>,
}

/// Builds an identifier collecting the given parts (with the daemon's connect-time
/// source, if any).
pub(crate) type BuildIdentifier =
    Arc<dyn Fn(Parts) -> Result<Identifier, callerid::Error> + Send + Sync>;

pub(crate) struct PolicyHandle {
    current: RwLock<Arc<Current>>,
    source: PolicySource,
    needs: OutputNeeds,
    build: BuildIdentifier,
}

impl std::fmt::Debug for PolicyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyHandle")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl PolicyHandle {
    pub(crate) fn new(
        rules: Rules,
        source: PolicySource,
        needs: OutputNeeds,
        build: BuildIdentifier,
    ) -> Result<Self, Error> {
        let identifier = Arc::new(build(parts_for(&rules, needs)).map_err(Error::Identifier)?);
        Ok(Self {
            current: RwLock::new(Arc::new(Current { rules, identifier })),
            source,
            needs,
            build,
        })
    }

    pub(crate) fn get(&self) -> Arc<Current> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads the policy again from its source; on error the current one stays. The
    /// identifier (and its caches) is kept unless the new rules need other parts.
    pub(crate) fn reload(&self) -> Result<(), Error> {
        let rules = self.source.load()?;
        let old = self.get();
        let shape = |r: &Rules| -> Vec<(String, PathBuf, PathBuf)> {
            r.listeners
                .iter()
                .map(|l| (l.name.clone(), l.path.clone(), l.backend.clone()))
                .collect()
        };
        if shape(&rules) != shape(&old.rules) {
            tracing::warn!(
                "reload: listener names, paths or backends changed in the config; those take a restart (rules, expect and tenant are applied now)"
            );
        }
        let parts = parts_for(&rules, self.needs);
        let identifier = if parts == old.identifier.parts() {
            old.identifier.clone()
        } else {
            Arc::new((self.build)(parts).map_err(Error::Identifier)?)
        };
        let new = Arc::new(Current { rules, identifier });
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
