//! `callerid doctor`: which kernel features callerid can use here, and what falls back.
//!
//! Exit code 0 whenever the report could be made (unavailable features are reported,
//! not failed on).

use callerid::{ConnectCgroupSource, FeatureStatus, Features, Identifier};
use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `callerid doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ident = Identifier::new()?;
    let mut features = ident.features().clone();
    features.connect_cgroup = connect_capture();
    let f = &features;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, f)?;
        writeln!(out)?;
    } else {
        out.write_all(render(f).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether connect-time capture (callerid-bpf) can run here: loads it, proves it with a
/// real connect/accept round trip, and detaches it again; otherwise the exact reason
/// (kernel too old, which capability is missing, not the cgroup2 root, ...).
fn connect_capture() -> FeatureStatus {
    let fallback = "cgroup at identification time (PIDFD_GET_INFO), provenance kernel_now";
    match callerid_bpf::ConnectCapture::load().and_then(|c| c.self_test().map(|id| (c, id))) {
        Ok((capture, own)) => FeatureStatus {
            available: true,
            disabled: false,
            detail: format!(
                "{} (self-test: recorded our own cgroup {own}); `serve` and `gate` load it",
                capture.describe()
            ),
            fallback: Some(fallback.to_owned()),
        },
        Err(e) => FeatureStatus {
            available: false,
            disabled: false,
            detail: format!("{e:#}"),
            fallback: Some(fallback.to_owned()),
        },
    }
}

fn line(s: &mut String, name: &str, st: &FeatureStatus) {
    let mark = if st.in_use() {
        "yes"
    } else if st.available {
        "off"
    } else {
        "no "
    };
    let _ = write!(s, "  {mark}  {name:<24}{}", st.detail);
    if !st.in_use()
        && let Some(fb) = &st.fallback
    {
        let _ = write!(s, "\n       {:<24}-> {fb}", "");
    }
    s.push('\n');
}

/// The human report.
pub(crate) fn render(f: &Features) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "kernel   {}", f.kernel);
    let _ = writeln!(
        s,
        "cgroup2  {}",
        f.cgroup2_mount
            .as_deref()
            .unwrap_or("not mounted (cgroup paths unavailable)")
    );
    let p = &f.privileges;
    let _ = writeln!(
        s,
        "us       {}; have {}; lack {}",
        if p.root { "root" } else { "not root" },
        if p.capabilities.is_empty() {
            "-".to_owned()
        } else {
            p.capabilities.join(" ")
        },
        if p.missing.is_empty() {
            "-".to_owned()
        } else {
            p.missing.join(" ")
        },
    );
    s.push_str("features\n");
    line(&mut s, "SO_PEERPIDFD", &f.so_peerpidfd);
    line(&mut s, "SO_PEERGROUPS", &f.so_peergroups);
    line(&mut s, "SO_PEERSEC", &f.so_peersec);
    line(&mut s, "pidfs ids", &f.pidfs);
    line(&mut s, "PIDFD_GET_INFO", &f.pidfd_get_info);
    if !f.pidfd_info_mask.is_empty() {
        let _ = writeln!(
            s,
            "       {:<24}mask bits: {}",
            "",
            f.pidfd_info_mask.join("|")
        );
    }
    line(&mut s, "PIDFD_INFO_EXIT", &f.pidfd_info_exit);
    line(&mut s, "pidfd after reap", &f.pidfd_after_reap);
    line(&mut s, "pidfd namespace ioctls", &f.pidfd_namespace_ioctls);
    line(&mut s, "open_by_handle_at", &f.open_by_handle_at);
    line(&mut s, "/proc of our pid ns", &f.procfs);
    line(&mut s, "connect-time cgroup", &f.connect_cgroup);
    s
}
