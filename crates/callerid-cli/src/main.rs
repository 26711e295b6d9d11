//! The `callerid` command: a thin layer of argument parsing and printing over the
//! callerid libraries.
#![forbid(unsafe_code)]

mod cmd;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// Caller ID for Unix-domain sockets: who is on the other end, race-free.
#[derive(Debug, Parser)]
#[command(name = "callerid", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Identify a process by pid (not connect-time: see `serve` for that).
    Whois(cmd::whois::Args),
    /// Report which kernel features callerid can use here, and what falls back.
    Doctor(cmd::doctor::Args),
    /// Classify cgroup text or a cgroup path into its workload chain.
    Classify(cmd::classify::Args),
    /// Serve identities: answer each connection with its identity and decision.
    Serve(cmd::serve::Args),
    /// Ask a running `callerid serve` what the host sees of this process.
    Whoami(cmd::whoami::Args),
    /// Run a policy-enforcing gateway in front of backend sockets.
    Gate(cmd::gate::Args),
    /// Validate a policy or gate config and print what it compiled to.
    Check(cmd::check::Args),
    /// Explain, rule by rule, the decision for a pid or a saved identity.
    Explain(cmd::explain::Args),
    /// List live connections of a Unix socket (or a process) and who is on each.
    Peers(cmd::peers::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Whois(a) => cmd::whois::run(a),
        Command::Doctor(a) => cmd::doctor::run(a),
        Command::Classify(a) => cmd::classify::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Whoami(a) => cmd::whoami::run(a),
        Command::Gate(a) => cmd::gate::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Explain(a) => cmd::explain::run(a),
        Command::Peers(a) => cmd::peers::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // A closed stdout (e.g. `| head`) is not an error worth reporting.
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(std::io::stderr(), "callerid: {err:#}");
            ExitCode::from(2)
        }
    }
}
