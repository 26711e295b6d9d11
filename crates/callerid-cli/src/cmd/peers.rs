//! `callerid peers`: live connections of a Unix socket (or of a process) and who is on
//! the other end of each, like `ss -xp` with race-free identities.
//!
//! Exit codes: 0 listed; 1 no such process (`--pid`); 2 any other failure, including
//! not being permitted to inspect the server (printed by `main`).

use anyhow::{Context as _, bail};
use callerid::peers::{
    Connection, PeersError, ServerSocket, SocketName, peers_of_pid, peers_of_socket,
};
use callerid::{Identifier, Identity};
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `callerid peers`.
#[derive(Debug, clap::Args)]
#[command(
    group = clap::ArgGroup::new("which").required(true).args(["socket", "pid"]),
    after_help = "Needs ptrace access to the server (root, or the server's own user).\n\
                  Exit status: 0 listed, 1 no such process, 2 any other error."
)]
pub(crate) struct Args {
    /// Connections accepted on the listening socket bound at this path (`@name` for an
    /// abstract socket), in every process.
    #[arg(long, value_name = "PATH")]
    socket: Option<OsString>,
    /// Every connected Unix stream/seqpacket socket of this process (accepted,
    /// connected out, socketpair).
    #[arg(long, value_name = "SERVERPID")]
    pid: Option<u32>,
    /// Print one JSON array of `{"server": {...}, "identity": {...}}` objects.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ident = Identifier::new()?;
    let conns = if let Some(pid) = args.pid {
        match peers_of_pid(&ident, pid) {
            Ok(c) => c,
            Err(e @ PeersError::NoSuchProcess { .. }) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "callerid: pid {pid}: {:#}",
                    anyhow::Error::from(e)
                );
                return Ok(ExitCode::from(1));
            }
            Err(e) => return Err(anyhow::Error::from(e).context(format!("inspecting pid {pid}"))),
        }
    } else if let Some(sock) = &args.socket {
        let name = SocketName::parse(sock);
        let scan = peers_of_socket(&ident, &name)
            .with_context(|| format!("listing connections of {name}"))?;
        if !scan.not_permitted.is_empty() {
            let n = scan.not_permitted.len();
            if scan.connections.is_empty() {
                let first = scan
                    .not_permitted
                    .into_iter()
                    .next()
                    .map(anyhow::Error::from)
                    .unwrap_or_else(|| anyhow::anyhow!("not permitted"));
                bail!(
                    "{name}: no connections found, and {n} processes could not be inspected, \
                     e.g. {first:#}"
                );
            }
            let _ = writeln!(
                std::io::stderr(),
                "callerid: warning: {n} processes could not be inspected (not permitted); \
                 connections they hold are not listed"
            );
        }
        scan.connections
    } else {
        bail!("give --socket PATH or --pid SERVERPID");
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let v: Vec<Entry<'_>> = conns.iter().map(Entry::from).collect();
        // Rendered first, so that a closed stdout shows up as the io::Error `main`
        // recognises.
        let mut text = serde_json::to_string_pretty(&v)?;
        text.push('\n');
        out.write_all(text.as_bytes())?;
    } else {
        out.write_all(render(&conns).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One element of the `--json` array; fields in this order.
#[derive(serde::Serialize)]
struct Entry<'a> {
    server: &'a ServerSocket,
    identity: Option<&'a Identity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl<'a> From<&'a Connection> for Entry<'a> {
    fn from(c: &'a Connection) -> Self {
        Self {
            server: &c.server,
            identity: c.identity.as_ref().ok(),
            error: c.identity.as_ref().err().map(|e| error_text(e)),
        }
    }
}

/// An error and its sources on one line (`a: b: c`).
fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text
}

/// Where the peer lives, most specific first: container, unit, cgroup path.
fn whereabouts(c: &Connection) -> String {
    let Ok(who) = &c.identity else {
        return "-".to_owned();
    };
    if let Some(w) = who.workload() {
        if let Some(ct) = &w.container {
            let rt = serde_json::to_value(ct.runtime)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let short: String = ct.id.chars().take(12).collect();
            return format!("{rt} {short}");
        }
        if let Some(u) = w.user_unit.as_deref().or(w.unit.as_deref()) {
            return u.to_owned();
        }
    }
    who.cgroup()
        .and_then(|c| c.path.clone())
        .unwrap_or_else(|| "-".to_owned())
}

/// A compact aligned table, one line per connection.
fn render(conns: &[Connection]) -> String {
    let header = ["SERVER", "ROLE", "SOCKET", "PEER", "UID", "WHERE"].map(str::to_owned);
    let mut rows = vec![header.to_vec()];
    let mut notes = Vec::new();
    for c in conns {
        let s = &c.server;
        let role = if s.peer_closed {
            format!("{} (peer closed)", s.role)
        } else {
            s.role.to_string()
        };
        let path = s
            .path
            .as_ref()
            .map_or_else(|| "-".to_owned(), |p| p.to_string());
        let (peer, uid) = match &c.identity {
            Ok(who) => (
                who.peer()
                    .pid
                    .map_or_else(|| "-".to_owned(), |p| p.to_string()),
                who.peer().uid.to_string(),
            ),
            Err(e) => {
                notes.push(format!("{}/{}: {}", s.pid, s.fd, error_text(e)));
                ("?".to_owned(), "?".to_owned())
            }
        };
        rows.push(vec![
            format!("{}/{}", s.pid, s.fd),
            role,
            path,
            peer,
            uid,
            whereabouts(c),
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if conns.is_empty() {
        out.push_str("(no connections)\n");
    }
    for n in notes {
        out.push_str(&format!("unidentified {n}\n"));
    }
    out
}
