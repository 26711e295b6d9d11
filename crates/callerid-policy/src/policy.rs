//! The compiled policy and its decisions.

use crate::config::{ListenerSpec, compile_file};
use crate::error::ConfigError;
use crate::index::{Index, IndexKey};
use crate::matcher::{KeyCheck, Matcher};
use callerid::Identity;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a rule (or the default) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let the connection through.
    Allow,
    /// Refuse it.
    Deny,
}

impl Action {
    /// `true` for [`Action::Allow`].
    pub fn is_allow(self) -> bool {
        self == Self::Allow
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_allow() { "allow" } else { "deny" })
    }
}

/// One `[[rule]]`, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub(crate) name: String,
    pub(crate) action: Action,
    pub(crate) listener: Option<String>,
    pub(crate) matcher: Matcher,
    pub(crate) line: usize,
    pub(crate) index_key: Option<IndexKey>,
}

impl Rule {
    /// The rule's `name` (unique in its file).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// `allow` or `deny`.
    pub fn action(&self) -> Action {
        self.action
    }
    /// The listener the rule is limited to, if any.
    pub fn listener(&self) -> Option<&str> {
        self.listener.as_deref()
    }
    /// Its `[rule.match]` conditions.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }
    /// 1-based line of the rule's `name` in the file.
    pub fn line(&self) -> usize {
        self.line
    }
    /// The attribute the rule is indexed by; `None` when it is checked for every peer.
    pub fn index_key(&self) -> Option<IndexKey> {
        self.index_key
    }

    /// Whether the rule applies to `identity` on the listener in `ctx`. Allocation-free.
    pub fn matches(&self, identity: &Identity, ctx: &Context<'_>) -> bool {
        self.listener
            .as_deref()
            .is_none_or(|l| ctx.listener == Some(l))
            && self.matcher.matches(identity, ctx)
    }

    fn checks(&self, identity: &Identity, ctx: &Context<'_>) -> Vec<KeyCheck> {
        let mut out = Vec::with_capacity(self.matcher.conds.len() + 1);
        if let Some(l) = &self.listener {
            let matched = ctx.listener == Some(l.as_str());
            let detail = match ctx.listener {
                Some(c) if matched => format!("{c:?} is {l:?}"),
                Some(c) => format!("{c:?} is not {l:?}"),
                None => format!("no listener (rule is only for {l:?})"),
            };
            out.push(KeyCheck {
                key: "listener".into(),
                matched,
                detail,
            });
        }
        out.extend(self.matcher.explain(identity, ctx));
        out
    }
}

/// Where a decision is being made: which listener accepted the connection.
///
/// `serve` (one socket, no listener names) uses [`Context::default()`]; `gate` builds
/// one per listener with [`ListenerSpec::context`], which also carries the listener's
/// `expect` so that [`Policy::decide`] enforces it before any rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// Name of the listener that accepted the connection (matched by a rule's `listener`).
    pub listener: Option<&'a str>,
    /// The listener's tenant (matched by the `tenant` key).
    pub tenant: Option<&'a str>,
    /// The listener's `expect`: a peer that fails it is denied whatever the rules say.
    pub expect: Option<&'a Matcher>,
}

/// The answer for one connection. Serialises to the contract form
/// `{"allow": bool, "rule": "name" | null, "reasons": ["…"]}` that `serve` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Let the connection through or not.
    pub allow: bool,
    /// Name of the deciding rule; `None` when the default, a listener's `expect` or an
    /// identification failure decided.
    pub rule: Option<String>,
    /// Why, in words (one entry per condition of the deciding rule).
    pub reasons: Vec<String>,
}

impl Decision {
    /// The decision for a connection whose peer could not be identified: always deny,
    /// with the error as the reason. Identification failure never falls through to
    /// the policy's default.
    pub fn unidentified(error: &dyn fmt::Display) -> Self {
        Self {
            allow: false,
            rule: None,
            reasons: vec![format!("identification failed: {error}")],
        }
    }
}

/// What decided, without allocating (see [`Policy::evaluate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    /// The listener's `expect` was not satisfied (always a deny).
    Expect,
    /// The rule with this position in [`Policy::rules`].
    Rule(usize),
    /// No rule matched: the policy's `default`.
    Default,
}

/// Allocation-free result of [`Policy::evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Let the connection through or not.
    pub allow: bool,
    /// What decided.
    pub by: DecidedBy,
}

/// Which parts of an [`Identity`] a policy (or gate config) looks at, so the daemon
/// collects only those (DESIGN.md §3 "Collect what is asked for"). `peer` and `cgroup`
/// (id and path) are always collected and have no flag.
///
/// Maps one to one onto `callerid::Parts` (`comm` is never needed by a policy: it is
/// not matchable); `drift` says whether connect-time capture is worth loading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequiredParts {
    /// `process` (pidfd info): for `exe`, drift and `provenance.process` / `.pidfd`.
    pub process: bool,
    /// `process.exe` (a verified /proc read).
    pub exe: bool,
    /// `namespaces` (for `provenance.namespaces`).
    pub namespaces: bool,
    /// `user_namespace` (for `userns_*`).
    pub user_namespace: bool,
    /// `workload` (classifier): `container`, `runtime`, `kind`, `pod_uid`, `qos`, `unit`, …
    pub workload: bool,
    /// Connect-time vs current comparison (`drift*` keys).
    pub drift: bool,
}

impl RequiredParts {
    /// Everything: what `serve` needs when it answers with the full record.
    pub const ALL: Self = Self {
        process: true,
        exe: true,
        namespaces: true,
        user_namespace: true,
        workload: true,
        drift: true,
    };

    /// Union of two sets.
    #[must_use]
    pub fn union(self, o: Self) -> Self {
        Self {
            process: self.process || o.process,
            exe: self.exe || o.exe,
            namespaces: self.namespaces || o.namespaces,
            user_namespace: self.user_namespace || o.user_namespace,
            workload: self.workload || o.workload,
            drift: self.drift || o.drift,
        }
    }
}

/// The policy embedded in `callerid serve` when no `--policy` is given: allow everyone
/// (the daemon audits every decision). [`Policy::allow_all`] is this file compiled.
pub const ALLOW_ALL_TOML: &str = "version = 1\ndefault = \"allow\"\n";

/// A compiled policy: rules in file order, a default action, and indexes.
///
/// Cheap to share (`Arc<Policy>`); immutable once built, so a reload swaps the whole
/// value.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) default: Action,
    pub(crate) rules: Vec<Rule>,
    pub(crate) index: Index,
}

/// A likely mistake in a valid file (see [`Policy::warnings`], [`crate::Config::warnings`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigWarning {
    /// 1-based line of the rule concerned.
    pub line: usize,
    /// What is suspicious.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: warning: {}", self.line, self.message)
    }
}

/// Why a [`Rule`] did or did not decide, in an [`Explanation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// The first matching rule: it made the decision.
    Decisive,
    /// Matches, but an earlier rule (or the listener's `expect`) already decided.
    Shadowed,
    /// At least one key did not match.
    NotMatched,
}

/// One rule in an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleExplanation {
    /// Rule name.
    pub name: String,
    /// 1-based line in the file.
    pub line: usize,
    /// The rule's action.
    pub action: Action,
    /// Decisive, shadowed or not matched.
    pub status: RuleStatus,
    /// Every key of the rule (including `listener`) and why it matched or not.
    pub checks: Vec<KeyCheck>,
}

/// `callerid explain`: the decision, and every rule with why it matched or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The decision (identical to [`Policy::decide`]'s).
    pub decision: Decision,
    /// The policy's default action.
    pub default: Action,
    /// The listener's `expect` keys, when the context carries one.
    pub expect: Option<Vec<KeyCheck>>,
    /// Every rule in file order.
    pub rules: Vec<RuleExplanation>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.decision;
        writeln!(
            f,
            "decision: {} ({})",
            if d.allow { "allow" } else { "deny" },
            d.rule
                .as_deref()
                .map_or_else(|| String::from("no rule"), |r| format!("rule {r:?}"))
        )?;
        for r in &d.reasons {
            writeln!(f, "  {r}")?;
        }
        if let Some(e) = &self.expect {
            writeln!(f, "listener expect:")?;
            write_checks(f, e)?;
        }
        for (i, r) in self.rules.iter().enumerate() {
            let status = match r.status {
                RuleStatus::Decisive => "DECISIVE",
                RuleStatus::Shadowed => "matches (shadowed)",
                RuleStatus::NotMatched => "no match",
            };
            writeln!(
                f,
                "rule #{} {:?} (line {}, {}): {status}",
                i + 1,
                r.name,
                r.line,
                r.action
            )?;
            if r.checks.is_empty() {
                writeln!(f, "  (no conditions: matches every peer)")?;
            }
            write_checks(f, &r.checks)?;
        }
        writeln!(f, "default: {}", self.default)
    }
}

/// One indented `✓`/`✗ key: detail` line per check.
fn write_checks(f: &mut fmt::Formatter<'_>, checks: &[KeyCheck]) -> fmt::Result {
    for c in checks {
        writeln!(
            f,
            "  {} {}: {}",
            if c.matched { "✓" } else { "✗" },
            c.key,
            c.detail
        )?;
    }
    Ok(())
}

/// What a policy compiled to, for `callerid check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySummary {
    /// Default action.
    pub default: Action,
    /// Number of rules.
    pub rules: usize,
    /// Rules that allow.
    pub allow_rules: usize,
    /// Rules filed under each index key (only keys in use).
    pub indexed: Vec<(IndexKey, usize)>,
    /// Rules checked for every peer (no exact attribute to index by).
    pub unindexed: usize,
    /// Parts of the identity the rules look at.
    pub required_parts: RequiredParts,
}

impl Policy {
    /// Parses and validates a policy-only file (`serve --policy`). A file with
    /// `[[listener]]` tables is refused: use [`crate::Config::parse`] for gate configs.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let (policy, _, first_listener) = compile_file(text)?;
        if let Some(span) = first_listener {
            return Err(ConfigError::invalid(
                text,
                span,
                "`[[listener]]` tables belong in a gate config (`callerid gate --config`); a `--policy` file holds rules only",
            ));
        }
        Ok(policy)
    }

    /// Builds a policy from already-compiled rules.
    pub(crate) fn from_rules(default: Action, mut rules: Vec<Rule>) -> Self {
        let (index, chosen) = Index::build(&rules);
        for (r, k) in rules.iter_mut().zip(chosen) {
            r.index_key = k;
        }
        Self {
            default,
            rules,
            index,
        }
    }

    /// Below this many rules a plain scan beats gathering index candidates (measured in
    /// `benches/decide.rs`: 10 rules, 53 ns linear vs 74 ns indexed).
    const LINEAR_BELOW: usize = 16;

    /// The embedded `serve` default: no rules, default allow ([`ALLOW_ALL_TOML`]).
    pub fn allow_all() -> Self {
        Self::from_rules(Action::Allow, Vec::new())
    }

    /// The action when no rule matches.
    pub fn default_action(&self) -> Action {
        self.default
    }

    /// Rules in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Parts of the identity the rules look at. Combine with listeners' `expect` via
    /// [`crate::Config::required_parts`].
    pub fn required_parts(&self) -> RequiredParts {
        let mut p = RequiredParts::default();
        for r in &self.rules {
            r.matcher.required(&mut p);
        }
        p
    }

    /// Decides without allocating: the listener's `expect` first (a failure denies),
    /// then the first matching rule in file order (found through the indexes once the
    /// policy has 16 rules or more), else the default.
    pub fn evaluate(&self, identity: &Identity, ctx: &Context<'_>) -> Outcome {
        if self.rules.len() < Self::LINEAR_BELOW {
            return self.evaluate_linear(identity, ctx);
        }
        if let Some(denied) = Self::expect_denies(identity, ctx) {
            return denied;
        }
        let first = self
            .index
            .first(identity, ctx, |i| self.rules[i].matches(identity, ctx));
        self.outcome(first)
    }

    /// The reference evaluator: same semantics as [`Policy::evaluate`], checking every
    /// rule in file order without the indexes. For tests and as a benchmark baseline.
    pub fn evaluate_linear(&self, identity: &Identity, ctx: &Context<'_>) -> Outcome {
        if let Some(denied) = Self::expect_denies(identity, ctx) {
            return denied;
        }
        self.outcome(self.rules.iter().position(|r| r.matches(identity, ctx)))
    }

    /// The deny outcome when the listener's `expect` is not satisfied.
    fn expect_denies(identity: &Identity, ctx: &Context<'_>) -> Option<Outcome> {
        let e = ctx.expect?;
        (!e.matches(identity, ctx)).then_some(Outcome {
            allow: false,
            by: DecidedBy::Expect,
        })
    }

    /// The outcome once the first matching rule (if any) is known.
    fn outcome(&self, first: Option<usize>) -> Outcome {
        match first {
            Some(i) => Outcome {
                allow: self.rules[i].action.is_allow(),
                by: DecidedBy::Rule(i),
            },
            None => Outcome {
                allow: self.default.is_allow(),
                by: DecidedBy::Default,
            },
        }
    }

    /// Decides for one identified connection. See [`Policy::evaluate`] for the order;
    /// use [`Decision::unidentified`] (or [`Policy::decide_result`]) when
    /// identification failed.
    pub fn decide(&self, identity: &Identity, ctx: &Context<'_>) -> Decision {
        let out = self.evaluate(identity, ctx);
        self.decision(out, identity, ctx)
    }

    /// [`Policy::decide`] on success, [`Decision::unidentified`] (deny) on error.
    pub fn decide_result<E: fmt::Display>(
        &self,
        identity: Result<&Identity, E>,
        ctx: &Context<'_>,
    ) -> Decision {
        match identity {
            Ok(id) => self.decide(id, ctx),
            Err(e) => Decision::unidentified(&e),
        }
    }

    fn decision(&self, out: Outcome, identity: &Identity, ctx: &Context<'_>) -> Decision {
        match out.by {
            DecidedBy::Expect => {
                let mut reasons = vec![format!(
                    "listener {} expect not satisfied",
                    ctx.listener
                        .map_or_else(|| String::from("(unnamed)"), |l| format!("{l:?}"))
                )];
                if let Some(e) = ctx.expect {
                    reasons.extend(
                        e.explain(identity, ctx)
                            .into_iter()
                            .filter(|c| !c.matched)
                            .map(|c| format!("{}: {}", c.key, c.detail)),
                    );
                }
                Decision {
                    allow: false,
                    rule: None,
                    reasons,
                }
            }
            DecidedBy::Rule(i) => {
                let r = &self.rules[i];
                let mut reasons = vec![format!(
                    "rule {:?} (line {}) matched: {}",
                    r.name, r.line, r.action
                )];
                reasons.extend(
                    r.checks(identity, ctx)
                        .into_iter()
                        .map(|c| format!("{}: {}", c.key, c.detail)),
                );
                Decision {
                    allow: out.allow,
                    rule: Some(r.name.clone()),
                    reasons,
                }
            }
            DecidedBy::Default => Decision {
                allow: out.allow,
                rule: None,
                reasons: vec![if self.rules.is_empty() {
                    format!("no rules; default is {}", self.default)
                } else {
                    format!("no rule matched; default is {}", self.default)
                }],
            },
        }
    }

    /// Every rule, every key, and why each matched or not; plus the decision.
    pub fn explain(&self, identity: &Identity, ctx: &Context<'_>) -> Explanation {
        let out = self.evaluate(identity, ctx);
        let decisive = match out.by {
            DecidedBy::Rule(i) => Some(i),
            _ => None,
        };
        let rules = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let checks = r.checks(identity, ctx);
                let status = if decisive == Some(i) {
                    RuleStatus::Decisive
                } else if checks.iter().all(|c| c.matched) {
                    RuleStatus::Shadowed
                } else {
                    RuleStatus::NotMatched
                };
                RuleExplanation {
                    name: r.name.clone(),
                    line: r.line,
                    action: r.action,
                    status,
                    checks,
                }
            })
            .collect();
        Explanation {
            decision: self.decision(out, identity, ctx),
            default: self.default,
            expect: ctx.expect.map(|e| e.explain(identity, ctx)),
            rules,
        }
    }

    /// Likely mistakes that do not make the file invalid: rules that can never be
    /// reached because an earlier rule without conditions matches every peer.
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let mut out = Vec::new();
        for (j, later) in self.rules.iter().enumerate() {
            let blocker = self.rules[..j].iter().find(|r| {
                r.matcher.is_empty()
                    && r.listener
                        .as_ref()
                        .is_none_or(|l| later.listener.as_ref() == Some(l))
            });
            if let Some(b) = blocker {
                out.push(ConfigWarning {
                    line: later.line,
                    message: format!(
                    "rule {:?} is never reached: rule {:?} (line {}) above matches every peer{}",
                    later.name,
                    b.name,
                    b.line,
                    b.listener.as_deref().map(|l| format!(" on listener {l:?}")).unwrap_or_default()
                    ),
                });
            }
        }
        out
    }

    /// What the policy compiled to.
    pub fn summary(&self) -> PolicySummary {
        let (indexed, unindexed) = self.index.stats();
        PolicySummary {
            default: self.default,
            rules: self.rules.len(),
            allow_rules: self.rules.iter().filter(|r| r.action.is_allow()).count(),
            indexed,
            unindexed,
            required_parts: self.required_parts(),
        }
    }
}

impl ListenerSpec {
    /// The [`Context`] for connections accepted on this listener (name, tenant, expect).
    pub fn context(&self) -> Context<'_> {
        Context {
            listener: Some(&self.name),
            tenant: self.tenant.as_deref(),
            expect: self.expect.as_ref(),
        }
    }
}
