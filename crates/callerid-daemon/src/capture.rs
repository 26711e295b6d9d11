//! Connect-time cgroup capture (DESIGN.md §5), when this build and this host have it.

use callerid::ConnectCgroupSource;
use std::sync::Arc;

/// The connect-time cgroup source to plug into the identifier, or `None` with a note
/// saying why cgroups will be as of identification time (`kernel_now`).
pub(crate) fn connect_cgroup_source(
    notes: &mut Vec<String>,
) -> Option<Arc<dyn ConnectCgroupSource>> {
    notes.push(
        "connect-time cgroup capture (BPF) is not built in: cgroup is read through the peer's pidfd at accept time (kernel_now)"
            .into(),
    );
    None
}
