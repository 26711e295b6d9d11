//! `callerid gate`: a policy-enforcing gateway in front of backend sockets.

use callerid_daemon::DaemonConfig;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `callerid gate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Gate configuration: the policy plus one or more `[[listener]]` tables.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Audit log: a file to append to, or `-` for standard output.
    #[arg(long, value_name = "FILE|-")]
    audit: Option<String>,
    #[command(flatten)]
    daemon: super::serve::DaemonArgs,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::serve::init_logging();
    let mut cfg = DaemonConfig::gate(args.config.clone())?;
    super::serve::apply_shared_options(&mut cfg, args.audit.as_deref(), &args.daemon)?;
    super::serve::run_daemon(cfg, "gate", &format!("config {}", args.config.display()))
}
