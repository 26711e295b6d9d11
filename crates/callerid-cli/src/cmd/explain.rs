//! `callerid explain`: the decision for a pid or a saved identity, rule by rule.

use anyhow::{Context as _, bail};
use callerid::Identity;
use callerid_policy::{Context, Decision};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `callerid explain`. Exits 0 when the decision is allow, 1 when deny
/// (or the config is invalid), 2 on other errors.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["pid", "identity"])))]
pub(crate) struct Args {
    /// Policy file or gate config.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Identify this running process (no connect-time facts: there is no socket).
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// A saved identity (`callerid whois --json`, or a `serve` answer line); `-` reads stdin.
    #[arg(long, value_name = "FILE.json")]
    identity: Option<PathBuf>,
    /// Decide as on this listener of a gate config (its tenant and `expect` apply).
    #[arg(long, value_name = "NAME")]
    listener: Option<String>,
    /// Print the explanation as JSON.
    #[arg(long)]
    json: bool,
}

fn read_identity(path: &std::path::Path) -> anyhow::Result<Identity> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the identity from stdin")?;
    } else {
        text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    // A `serve` answer wraps the identity: {"identity": {...}, "decision": {...}}.
    let value = match value {
        serde_json::Value::Object(mut m)
            if m.contains_key("identity") && !m.contains_key("peer") =>
        {
            m.remove("identity").unwrap_or_default()
        }
        v => v,
    };
    serde_json::from_value(value)
        .with_context(|| format!("{}: not a callerid identity", path.display()))
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(config) = super::check::load(&args.config)? else {
        return Ok(ExitCode::from(1));
    };
    let ctx = match &args.listener {
        None => Context::default(),
        Some(name) => match config.listener(name) {
            Some(l) => l.context(),
            None => {
                let known: Vec<_> = config.listeners.iter().map(|l| l.name.as_str()).collect();
                bail!(
                    "{}: no listener {name:?} (listeners: {})",
                    args.config.display(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            }
        },
    };
    let identity = match (&args.identity, args.pid) {
        (Some(path), _) => Ok(read_identity(path)?),
        (None, Some(pid)) => callerid::Identifier::new().and_then(|i| i.identify_pid(pid)),
        (None, None) => bail!("give --pid or --identity"),
    };
    let mut out = std::io::stdout().lock();
    let allow = match identity {
        Ok(id) => {
            let e = config.policy.explain(&id, &ctx);
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&e)?)?;
            } else {
                write!(out, "{e}")?;
            }
            e.decision.allow
        }
        // An identification error can only deny; say so in the same shape.
        Err(err) => {
            let d = Decision::unidentified(&err);
            if args.json {
                let v = serde_json::json!({"decision": d, "default": config.policy.default_action(),
                                           "expect": null, "rules": []});
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(
                    out,
                    "decision: deny (no rule)\n  {}",
                    d.reasons.join("\n  ")
                )?;
            }
            false
        }
    };
    Ok(if allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
