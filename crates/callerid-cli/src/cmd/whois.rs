//! `callerid whois`: what the host knows about a process *now*.
//!
//! Exit codes: 0 identified; 1 no such process (or it exited before its credentials
//! could be read); 2 any other failure (printed by `main`).

use callerid::{Error, Identifier, Identity, Provenance};
use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `callerid whois`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 identified, 1 no such process, 2 any other error.")]
pub(crate) struct Args {
    /// The process to identify.
    #[arg(long)]
    pid: u32,
    /// Print the identity record as JSON (the DESIGN.md §2 form).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ident = Identifier::new()?;
    let who = match ident.identify_pid(args.pid) {
        Ok(who) => who,
        Err(e @ Error::PeerGone { .. }) => {
            let _ = writeln!(
                std::io::stderr(),
                "callerid: pid {}: {:#}",
                args.pid,
                anyhow::Error::from(e)
            );
            return Ok(ExitCode::from(1));
        }
        Err(e) => {
            return Err(anyhow::Error::from(e).context(format!("identifying pid {}", args.pid)));
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &who)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&who).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn prov(p: Option<Provenance>) -> &'static str {
    match p {
        Some(Provenance::KernelConnect) => "kernel at connect",
        Some(Provenance::KernelNow) => "kernel now",
        Some(Provenance::KernelExit) => "kernel at exit",
        Some(Provenance::ProcVerified) => "verified /proc",
        Some(Provenance::CgroupPath) => "cgroup path",
        Some(Provenance::RuntimeApi) => "runtime API",
        Some(Provenance::NotCollected) => "not collected",
        None => "unknown",
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The short aligned human summary.
pub(crate) fn render(who: &Identity) -> String {
    let mut s = String::new();
    let p = who.provenance();
    let peer = who.peer();
    let groups = peer.groups.as_ref().map_or_else(
        || "-".to_owned(),
        |g| {
            if g.is_empty() {
                "none".to_owned()
            } else {
                g.iter()
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            }
        },
    );
    let _ = writeln!(
        s,
        "{:<11}pid {}  uid {}  gid {}  groups {}  ({}, not connect-time)",
        "who",
        opt(peer.pid),
        peer.uid,
        peer.gid,
        groups,
        prov(p.peer)
    );
    if let Some(label) = &peer.security_label {
        let _ = writeln!(s, "{:<11}{label}", "label");
    }
    match who.process() {
        Some(pr) => {
            let _ = writeln!(
                s,
                "{:<11}{}  comm {}  exe {}  ppid {}  uid/euid {}/{}  gid/egid {}/{}  pidfs {}  ({})",
                "process",
                format!("{:?}", pr.state).to_lowercase(),
                pr.comm.as_deref().unwrap_or("-"),
                pr.exe.as_deref().unwrap_or("-"),
                opt(pr.ppid),
                opt(pr.uid),
                opt(pr.euid),
                opt(pr.gid),
                opt(pr.egid),
                opt(pr.pidfs_id),
                prov(p.process)
            );
        }
        None => {
            let _ = writeln!(s, "{:<11}- ({})", "process", prov(p.process));
        }
    }
    match who.cgroup() {
        Some(c) => {
            let _ = writeln!(
                s,
                "{:<11}{}  id {}  (at {}, {})",
                "cgroup",
                c.path.as_deref().unwrap_or("<path unknown>"),
                c.id,
                format!("{:?}", c.at).to_lowercase(),
                prov(p.cgroup)
            );
        }
        None => {
            let _ = writeln!(s, "{:<11}-", "cgroup");
        }
    }
    match who.workload() {
        Some(w) => {
            let mut parts = Vec::new();
            for e in &w.chain {
                let kind = serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned));
                let rt = serde_json::to_value(e.runtime)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned));
                parts.push(format!(
                    "{} {} {}",
                    kind.unwrap_or_default(),
                    rt.unwrap_or_default(),
                    e.id
                ));
            }
            if let Some(u) = &w.unit {
                parts.push(format!("unit {u}"));
            }
            if let Some(u) = &w.user_unit {
                parts.push(format!("user unit {u}"));
            }
            if let Some(sl) = &w.slice {
                parts.push(format!("slice {sl}"));
            }
            let text = if parts.is_empty() {
                "none named by the cgroup path".to_owned()
            } else {
                parts.join("; ")
            };
            let _ = writeln!(s, "{:<11}{text}", "workload");
        }
        None => {
            let _ = writeln!(s, "{:<11}- ({})", "workload", prov(p.workload));
        }
    }
    match who.user_namespace() {
        Some(u) => {
            let map = |m: &[[u32; 3]]| {
                m.iter()
                    .map(|[a, b, c]| format!("{a} {b} {c}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            if u.initial {
                let _ = writeln!(s, "{:<11}initial", "userns");
            } else {
                let _ = writeln!(
                    s,
                    "{:<11}child: uid {} gid {} inside  (uid_map {}; gid_map {})",
                    "userns",
                    opt(u.uid),
                    opt(u.gid),
                    map(&u.uid_map),
                    map(&u.gid_map)
                );
            }
        }
        None => {
            let _ = writeln!(s, "{:<11}- ({})", "userns", prov(p.user_namespace));
        }
    }
    match who.namespaces() {
        Some(n) => {
            let _ = writeln!(
                s,
                "{:<11}user {} pid {} net {} mnt {} cgroup {} ipc {} uts {} time {}  ({})",
                "namespaces",
                opt(n.user),
                opt(n.pid),
                opt(n.net),
                opt(n.mnt),
                opt(n.cgroup),
                opt(n.ipc),
                opt(n.uts),
                opt(n.time),
                prov(p.namespaces)
            );
        }
        None => {
            let _ = writeln!(s, "{:<11}- ({})", "namespaces", prov(p.namespaces));
        }
    }
    for w in who.warnings() {
        let part = serde_json::to_value(w.part)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        let _ = writeln!(
            s,
            "{:<11}{}: {} ({})",
            "unknown",
            part.unwrap_or_default(),
            w.code,
            w.message
        );
    }
    s
}
