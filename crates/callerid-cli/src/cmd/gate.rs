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
    /// Serve Prometheus metrics on a Unix socket path or a loopback IP:PORT.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// On SIGTERM, how long to wait for open connections before closing them (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    drain_timeout: f64,
    /// Do not load the BPF connect-time cgroup capture (cgroups are then as of accept).
    #[arg(long)]
    no_connect_capture: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::serve::init_logging();
    let mut cfg = DaemonConfig::gate(args.config.clone())?;
    super::serve::apply_shared_options(
        &mut cfg,
        args.audit.as_deref(),
        args.metrics.as_deref(),
        args.drain_timeout,
        args.no_connect_capture,
    )?;
    super::serve::run_daemon(cfg, "gate", &format!("config {}", args.config.display()))
}
