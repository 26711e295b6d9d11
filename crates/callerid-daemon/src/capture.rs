//! Connect-time cgroup capture (DESIGN.md §5): loaded by default when the kernel and
//! our capabilities allow it; otherwise the daemon says why and cgroups are read
//! through the peer's pidfd at accept time (provenance `kernel_now`), never guessed.

use callerid::ConnectCgroupSource;
use std::sync::Arc;

/// Whether to try loading the BPF capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectCapture {
    /// Load it when available; run without it (with a startup note) otherwise.
    #[default]
    Auto,
    /// Do not load it.
    Off,
}

/// The connect-time cgroup source to plug into the identifier, or `None`; a note says
/// which, and why.
pub(crate) fn connect_cgroup_source(
    mode: ConnectCapture,
    notes: &mut Vec<String>,
    info: &mut Vec<String>,
) -> Option<Arc<dyn ConnectCgroupSource>> {
    if mode == ConnectCapture::Off {
        info.push("connect-time cgroup capture: off (--no-connect-capture); cgroups are as of accept (kernel_now)".into());
        return None;
    }
    match callerid_bpf::ConnectCapture::load() {
        Ok(c) => {
            info.push(format!(
                "connect-time cgroup capture: on ({})",
                c.describe()
            ));
            Some(Arc::new(c))
        }
        Err(e) => {
            notes.push(format!(
                "{e}; cgroups are read through the peer's pidfd at accept time (provenance kernel_now)"
            ));
            None
        }
    }
}
