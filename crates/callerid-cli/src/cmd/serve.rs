//! `callerid serve`: answer each connection with what the host knows of the caller.

use anyhow::Context;
use callerid_daemon::{AuditSink, Daemon, DaemonConfig, MetricsAddr, Owner, PolicySource};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `callerid serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Socket to listen on [default: /run/callerid/callerid.sock as root,
    /// $XDG_RUNTIME_DIR/callerid.sock otherwise]. A socket passed by systemd
    /// (LISTEN_FDS) takes precedence.
    #[arg(long, value_name = "PATH")]
    listen: Option<PathBuf>,
    /// Policy file [default: the embedded policy: allow all, audit all].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Audit log: a file to append to, or `-` for standard output [default: `-`].
    #[arg(long, value_name = "FILE|-", default_value = "-")]
    audit: Option<String>,
    /// Permission bits of the socket file, octal (e.g. 0666 to let every user ask).
    #[arg(long, value_name = "OCTAL", value_parser = callerid_daemon::parse_mode)]
    mode: Option<u32>,
    /// Owner of the socket file: USER, USER:GROUP or :GROUP (names or numbers).
    #[arg(long, value_name = "USER:GROUP")]
    owner: Option<String>,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// The options `serve` and `gate` share (after their own, in both help texts).
#[derive(Debug, clap::Args)]
pub(crate) struct DaemonArgs {
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

/// The socket `serve` listens on and `whoami` asks by default.
pub(crate) fn default_socket() -> anyhow::Result<PathBuf> {
    if rustix::process::geteuid().is_root() {
        return Ok(PathBuf::from("/run/callerid/callerid.sock"));
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => Ok(PathBuf::from(d).join("callerid.sock")),
        _ => anyhow::bail!("not root and XDG_RUNTIME_DIR is not set: pass --listen PATH"),
    }
}

/// Applies `--audit` (whose default differs between `serve` and `gate`) and the
/// [`DaemonArgs`].
pub(crate) fn apply_shared_options(
    cfg: &mut DaemonConfig,
    audit: Option<&str>,
    daemon: &DaemonArgs,
) -> anyhow::Result<()> {
    cfg.audit = audit.map(|a| {
        if a == "-" {
            AuditSink::Stdout
        } else {
            AuditSink::File(PathBuf::from(a))
        }
    });
    cfg.metrics = daemon
        .metrics
        .as_deref()
        .map(MetricsAddr::parse)
        .transpose()?;
    cfg.drain_timeout =
        Duration::try_from_secs_f64(daemon.drain_timeout).context("--drain-timeout")?;
    if daemon.no_connect_capture {
        cfg.connect_capture = callerid_daemon::ConnectCapture::Off;
    }
    Ok(())
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLERID_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let listen = match args.listen {
        Some(p) => p,
        None => default_socket()?,
    };
    let policy = match &args.policy {
        Some(p) => PolicySource::PolicyFile(p.clone()),
        None => PolicySource::Embedded,
    };
    let mut cfg = DaemonConfig::serve(Some(listen), policy);
    cfg.listeners[0].mode = args.mode;
    cfg.listeners[0].owner = args.owner.as_deref().map(Owner::parse).transpose()?;
    apply_shared_options(&mut cfg, args.audit.as_deref(), &args.daemon)?;
    let policy_note = match &args.policy {
        Some(p) => format!("policy {}", p.display()),
        None => "embedded policy: allow all, audit all".to_string(),
    };
    run_daemon(cfg, "serve", &policy_note)
}

/// Builds the runtime, starts the daemon, says where it listens, serves until stopped.
pub(crate) fn run_daemon(
    cfg: DaemonConfig,
    what: &str,
    policy_note: &str,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("callerid")
        .build()
        .context("start the async runtime")?;
    rt.block_on(async {
        let daemon = Daemon::start(cfg)?;
        let mut err = std::io::stderr().lock();
        for l in daemon.listener_info() {
            match &l.backend {
                Some(b) => writeln!(
                    err,
                    "callerid {what}: listener {:?} on {} -> {} ({policy_note})",
                    l.name,
                    l.origin,
                    b.display()
                )?,
                None => writeln!(
                    err,
                    "callerid {what}: listening on {} ({policy_note})",
                    l.origin
                )?,
            }
            if l.backend.is_none()
                && let Some(p) = &l.path
            {
                writeln!(err, "try it:  callerid whoami --socket {}", p.display())?;
            }
        }
        if let Some(m) = daemon.metrics_endpoint() {
            writeln!(err, "metrics: {m}")?;
        }
        for n in daemon.info() {
            writeln!(err, "{n}")?;
        }
        for n in daemon.notes() {
            writeln!(err, "note: {n}")?;
        }
        drop(err);
        daemon.run().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
