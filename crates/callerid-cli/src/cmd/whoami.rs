//! `callerid whoami`: ask a running `callerid serve` what the host sees of us.

use anyhow::Context;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `callerid whoami`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Socket of `callerid serve` [default: $CALLERID_SOCKET, else serve's default].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print the answer exactly as received (one JSON line).
    #[arg(long)]
    json: bool,
}

/// A serve answer is one line; anything near this size is not one.
const MAX_ANSWER: u64 = 1 << 20;

fn socket(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(s) = &args.socket {
        return Ok(s.clone());
    }
    if let Some(s) = std::env::var_os("CALLERID_SOCKET").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(s));
    }
    let system = PathBuf::from("/run/callerid/callerid.sock");
    match super::serve::default_socket() {
        Ok(p) if p.exists() || !system.exists() => Ok(p),
        _ => Ok(system),
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = socket(&args)?;
    let mut sock =
        UnixStream::connect(&path).with_context(|| format!("connect {}", path.display()))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .context("set read timeout")?;
    let mut raw = Vec::new();
    Read::by_ref(&mut sock)
        .take(MAX_ANSWER)
        .read_to_end(&mut raw)
        .with_context(|| format!("read from {}", path.display()))?;
    let line = std::str::from_utf8(&raw)
        .context("answer is not UTF-8")?
        .trim_end();
    let v: Value =
        serde_json::from_str(line).with_context(|| format!("answer is not JSON: {line:.200}"))?;
    let allow = v
        .pointer("/decision/allow")
        .and_then(Value::as_bool)
        .context("answer has no decision.allow")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{line}")?;
    } else {
        human(&mut out, &v)?;
    }
    Ok(if allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn s(v: &Value, p: &str) -> Option<String> {
    match v.pointer(p)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn human(out: &mut impl Write, v: &Value) -> std::io::Result<()> {
    let allow = v.pointer("/decision/allow").and_then(Value::as_bool) == Some(true);
    let verdict = if allow { "allow" } else { "deny" };
    match s(v, "/decision/rule") {
        Some(rule) => writeln!(out, "decision   {verdict} (rule {rule:?})")?,
        None => writeln!(out, "decision   {verdict}")?,
    }
    if let Some(Value::Array(rs)) = v.pointer("/decision/reasons") {
        for r in rs.iter().filter_map(Value::as_str) {
            writeln!(out, "           {r}")?;
        }
    }
    let Some(id) = v.get("identity").filter(|i| !i.is_null()) else {
        return writeln!(out, "identity   not disclosed");
    };
    let na = || "-".to_string();
    writeln!(
        out,
        "peer       pid {} uid {} gid {} groups {}",
        s(id, "/peer/pid").unwrap_or_else(na),
        s(id, "/peer/uid").unwrap_or_else(na),
        s(id, "/peer/gid").unwrap_or_else(na),
        s(id, "/peer/groups").unwrap_or_else(na),
    )?;
    if id.get("process").is_some_and(|p| !p.is_null()) {
        writeln!(
            out,
            "process    {} ({}) pidfs id {} state {}",
            s(id, "/process/exe").unwrap_or_else(na),
            s(id, "/process/comm").unwrap_or_else(na),
            s(id, "/process/pidfs_id").unwrap_or_else(na),
            s(id, "/process/state").unwrap_or_else(na),
        )?;
    }
    if id.get("cgroup").is_some_and(|p| !p.is_null()) {
        writeln!(
            out,
            "cgroup     {} (id {}, at {}, {})",
            s(id, "/cgroup/path").unwrap_or_else(na),
            s(id, "/cgroup/id").unwrap_or_else(na),
            s(id, "/cgroup/at").unwrap_or_else(na),
            s(id, "/provenance/cgroup").unwrap_or_else(na),
        )?;
    }
    if let Some(c) = id.pointer("/workload/container").filter(|c| !c.is_null()) {
        writeln!(
            out,
            "container  {} {}",
            s(c, "/runtime").unwrap_or_else(na),
            s(c, "/id").unwrap_or_else(na)
        )?;
    }
    if let Some(p) = id.pointer("/workload/pod").filter(|c| !c.is_null()) {
        writeln!(
            out,
            "pod        {} ({})",
            s(p, "/uid").unwrap_or_else(na),
            s(p, "/qos").unwrap_or_else(na)
        )?;
    }
    for (k, label) in [
        ("unit", "unit"),
        ("user_unit", "user unit"),
        ("slice", "slice"),
    ] {
        if let Some(u) = s(id, &format!("/workload/{k}")) {
            writeln!(out, "{label:<10} {u}")?;
        }
    }
    if let Some(un) = id.get("user_namespace").filter(|u| !u.is_null()) {
        if un.get("initial").and_then(Value::as_bool) == Some(true) {
            writeln!(out, "user ns    initial")?;
        } else {
            writeln!(
                out,
                "user ns    uid {} gid {} inside; uid_map {}",
                s(un, "/uid").unwrap_or_else(na),
                s(un, "/gid").unwrap_or_else(na),
                s(un, "/uid_map").unwrap_or_else(na),
            )?;
        }
    }
    if let Some(Value::Array(changed)) = id.pointer("/drift/changed")
        && !changed.is_empty()
    {
        let what: Vec<&str> = changed.iter().filter_map(Value::as_str).collect();
        writeln!(out, "drift      since connect: {}", what.join(", "))?;
    }
    if let Some(Value::Array(ws)) = id.get("warnings") {
        for w in ws {
            writeln!(
                out,
                "warning    {}: {}",
                s(w, "/code").unwrap_or_else(na),
                s(w, "/message").unwrap_or_default()
            )?;
        }
    }
    Ok(())
}
