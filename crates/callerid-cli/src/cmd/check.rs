//! `callerid check`: validate a policy or gate config and show what it compiled to.

use anyhow::Context as _;
use callerid_policy::{Config, ListenerSpec, Owner, Principal, RequiredParts};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `callerid check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Policy file (`serve --policy`) or gate config (`gate --config`) to validate.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Reads and validates a config; on error prints `FILE:LINE:COL: message` to stderr and
/// returns `None` (the caller exits 1).
pub(crate) fn load(path: &std::path::Path) -> anyhow::Result<Option<Config>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match Config::parse(&text) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            writeln!(std::io::stderr(), "{}:{e}", path.display())?;
            Ok(None)
        }
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(config) = load(&args.config)? else {
        return Ok(ExitCode::from(1));
    };
    let warnings = config.warnings();
    {
        let mut err = std::io::stderr().lock();
        for w in &warnings {
            writeln!(err, "{}:{w}", args.config.display())?;
        }
    }
    let mut out = std::io::stdout().lock();
    let summary = config.policy.summary();
    let parts = config.required_parts();
    if args.json {
        let rules: Vec<_> = config
            .policy
            .rules()
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name(), "line": r.line(), "action": r.action(), "listener": r.listener(),
                    "keys": r.matcher().keys(), "indexed_by": r.index_key(),
                })
            })
            .collect();
        let listeners: Vec<_> = config.listeners.iter().map(listener_json).collect();
        let v = serde_json::json!({
            "file": args.config, "valid": true, "warnings": warnings, "summary": summary,
            "required_parts": parts,
            "rules": rules, "listeners": listeners,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{}: ok", args.config.display())?;
    writeln!(
        out,
        "policy: default {}, {} rule(s) ({} allow, {} deny)",
        summary.default,
        summary.rules,
        summary.allow_rules,
        summary.rules - summary.allow_rules
    )?;
    let indexed: Vec<String> = summary
        .indexed
        .iter()
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    writeln!(
        out,
        "index: {}; checked for every peer: {}",
        if indexed.is_empty() {
            "none".to_owned()
        } else {
            indexed.join(", ")
        },
        summary.unindexed
    )?;
    writeln!(out, "identity parts used: {}", parts_list(parts))?;
    for (i, r) in config.policy.rules().iter().enumerate() {
        let keys = r.matcher().keys();
        writeln!(
            out,
            "  rule #{} {:?} (line {}): {}{} when {}{}",
            i + 1,
            r.name(),
            r.line(),
            r.action(),
            r.listener()
                .map(|l| format!(" on listener {l:?}"))
                .unwrap_or_default(),
            if keys.is_empty() {
                "always".to_owned()
            } else {
                keys.join(" & ")
            },
            r.index_key()
                .map(|k| format!(" [indexed by {}]", k.name()))
                .unwrap_or_default(),
        )?;
    }
    if !config.listeners.is_empty() {
        writeln!(out, "listeners:")?;
        for l in &config.listeners {
            writeln!(out, "  {}", listener_line(l))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parts_list(p: RequiredParts) -> String {
    let mut v = vec!["peer", "cgroup"];
    for (on, name) in [
        (p.workload, "workload"),
        (p.process, "process"),
        (p.exe, "exe"),
        (p.namespaces, "namespaces"),
        (p.user_namespace, "user_namespace"),
        (p.drift, "drift"),
    ] {
        if on {
            v.push(name);
        }
    }
    v.join(", ")
}

fn principal(p: &Option<Principal>) -> String {
    match p {
        None => String::new(),
        Some(Principal::Id(i)) => i.to_string(),
        Some(Principal::Name(n)) => n.clone(),
    }
}

fn owner(o: &Owner) -> String {
    match &o.group {
        None => principal(&o.user),
        Some(_) => format!("{}:{}", principal(&o.user), principal(&o.group)),
    }
}

fn listener_line(l: &ListenerSpec) -> String {
    let mut s = format!(
        "{:?} (line {}): {} -> {}",
        l.name,
        l.line,
        l.path.display(),
        l.backend.display()
    );
    if let Some(m) = l.mode {
        s.push_str(&format!(", mode {m:04o}"));
    }
    if let Some(o) = &l.owner {
        s.push_str(&format!(", owner {}", owner(o)));
    }
    if let Some(t) = &l.tenant {
        s.push_str(&format!(", tenant {t:?}"));
    }
    if let Some(e) = &l.expect {
        s.push_str(&format!(", expect {}", e.keys().join(" & ")));
    }
    if l.proxy_protocol {
        s.push_str(", proxy_protocol");
    }
    if let Some(n) = l.max_connections {
        s.push_str(&format!(", max_connections {n}"));
    }
    if let Some(n) = l.max_per_identity {
        s.push_str(&format!(", max_per_identity {n}"));
    }
    if let Some(d) = l.idle_timeout {
        s.push_str(&format!(", idle_timeout {d:?}"));
    }
    s.push_str(&format!(", decision_timeout {:?}", l.decision_timeout));
    s
}

fn listener_json(l: &ListenerSpec) -> serde_json::Value {
    serde_json::json!({
        "name": l.name, "line": l.line, "path": l.path, "backend": l.backend,
        "mode": l.mode.map(|m| format!("{m:04o}")), "owner": l.owner, "tenant": l.tenant,
        "expect": l.expect.as_ref().map(|e| e.keys()), "proxy_protocol": l.proxy_protocol,
        "max_connections": l.max_connections, "max_per_identity": l.max_per_identity,
        "idle_timeout_ms": l.idle_timeout.map(|d| d.as_millis()),
        "decision_timeout_ms": l.decision_timeout.as_millis(),
    })
}
