//! What this kernel (and our privileges) offer, probed once per [`crate::Identifier`].

use crate::cgroup::Cgroup2;
use crate::error::errno_text;
use crate::sys;
use crate::sys::pidfd::NsKind;
use crate::sys::uapi;
use serde::Serialize;
use std::os::fd::{AsFd, OwnedFd};

/// A feature callerid can use, which the [`crate::IdentifierBuilder`] can switch off so
/// that the fallback is used (and tested) even on a kernel that has the feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Feature {
    /// `SO_PEERPIDFD` (6.5). Fallback: `pidfd_open(pid)`, which can race with pid reuse.
    SoPeerpidfd,
    /// `PIDFD_GET_INFO` (6.13). Fallback: `pidfd_send_signal(0)` for liveness and
    /// verified `/proc/<pid>/status` and `/proc/<pid>/cgroup`.
    PidfdGetInfo,
    /// `open_by_handle_at` on the cgroup2 mount (needs CAP_DAC_READ_SEARCH). Fallback:
    /// verified `/proc/<pid>/cgroup` checked against the id with `stat`.
    OpenByHandleAt,
    /// `PIDFD_GET_*_NAMESPACE` (6.11), used for a single namespace or when `/proc` cannot
    /// be read (several namespaces are cheaper as verified readlinks of
    /// `/proc/<pid>/ns/*`, one syscall each). Fallback: those readlinks.
    PidfdNamespaceIoctls,
}

/// Whether one feature can be used, and what happens otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeatureStatus {
    /// The kernel (and our privileges) provide it.
    pub available: bool,
    /// Switched off by the caller of the builder even though it may be available.
    pub disabled: bool,
    /// Why (un)available: the probe's result, with errno where there was one.
    pub detail: String,
    /// What is done instead when it is not used; `None` when nothing needs it.
    pub fallback: Option<String>,
}

impl FeatureStatus {
    fn yes(detail: impl Into<String>) -> Self {
        Self {
            available: true,
            disabled: false,
            detail: detail.into(),
            fallback: None,
        }
    }
    fn no(detail: impl Into<String>, fallback: impl Into<String>) -> Self {
        Self {
            available: false,
            disabled: false,
            detail: detail.into(),
            fallback: Some(fallback.into()),
        }
    }
    /// Available and not switched off.
    pub fn in_use(&self) -> bool {
        self.available && !self.disabled
    }
}

/// Our privileges, as far as identification cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Privileges {
    /// Effective uid 0.
    pub root: bool,
    /// Relevant effective capabilities we hold (`CAP_DAC_READ_SEARCH`, `CAP_SYS_PTRACE`,
    /// `CAP_SYS_ADMIN`, `CAP_BPF`, `CAP_PERFMON`, `CAP_NET_ADMIN`).
    pub capabilities: Vec<&'static str>,
    /// Relevant capabilities we lack.
    pub missing: Vec<&'static str>,
}

/// The feature report `callerid doctor` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Features {
    /// `uname -r`.
    pub kernel: String,
    /// `SO_PEERPIDFD`: a pidfd bound to the connecting process.
    pub so_peerpidfd: FeatureStatus,
    /// `SO_PEERGROUPS`: connect-time supplementary groups.
    pub so_peergroups: FeatureStatus,
    /// `SO_PEERSEC`: an LSM label for peer sockets (unavailable is normal without
    /// SELinux/AppArmor/Smack).
    pub so_peersec: FeatureStatus,
    /// pidfs (6.9): pidfd inode numbers identify processes (`process.pidfs_id`).
    pub pidfs: FeatureStatus,
    /// `PIDFD_GET_INFO`: current pid, creds and cgroup through the pidfd.
    pub pidfd_get_info: FeatureStatus,
    /// Mask bits `PIDFD_GET_INFO` returned for a live process (names).
    pub pidfd_info_mask: Vec<&'static str>,
    /// `PIDFD_INFO_EXIT` (6.15): the exit-time cgroup of a reaped process. Judged by the
    /// kernel version (it can only be observed on a reaped process).
    pub pidfd_info_exit: FeatureStatus,
    /// `SO_PEERPIDFD` after the peer was reaped (6.16): judged by the kernel version.
    pub pidfd_after_reap: FeatureStatus,
    /// `PIDFD_GET_*_NAMESPACE` ioctls: namespace inodes without `/proc` (used for a
    /// single namespace, or when `/proc` cannot be read).
    pub pidfd_namespace_ioctls: FeatureStatus,
    /// cgroup id → path with `open_by_handle_at` on the cgroup2 mount.
    pub open_by_handle_at: FeatureStatus,
    /// `/proc` belongs to our pid namespace (needed for every verified `/proc` read).
    pub procfs: FeatureStatus,
    /// Where cgroup2 is mounted (from `/proc/self/mountinfo`).
    pub cgroup2_mount: Option<String>,
    /// Our privileges.
    pub privileges: Privileges,
    /// Connect-time cgroup capture (a [`crate::ConnectCgroupSource`]).
    pub connect_cgroup: FeatureStatus,
}

pub(crate) struct Probed {
    pub(crate) features: Features,
    pub(crate) cgroup2: Option<Cgroup2>,
}

fn kernel_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let ma = it.next().and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    let mi = it.next().and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    (ma, mi) >= (major, minor)
}

fn self_pidfd() -> std::io::Result<OwnedFd> {
    Ok(rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    )?)
}

pub(crate) fn probe() -> Probed {
    let uname = rustix::system::uname();
    let kernel = uname.release().to_string_lossy().into_owned();

    let pair = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    );
    let (so_peerpidfd, so_peergroups, so_peersec) = match &pair {
        Ok((a, _b)) => (
            match sys::sockopt::peer_pidfd(a.as_fd()) {
                Ok(_) => FeatureStatus::yes("getsockopt(SO_PEERPIDFD) works"),
                Err(e) => FeatureStatus::no(
                    format!("getsockopt(SO_PEERPIDFD): {}", errno_text(&e)),
                    "pidfd_open(pid) after connect(): racy with pid reuse (warning pid_reuse_possible)",
                ),
            },
            match sys::sockopt::peer_groups(a.as_fd()) {
                Ok(_) => FeatureStatus::yes("getsockopt(SO_PEERGROUPS) works"),
                Err(e) => FeatureStatus::no(
                    format!("getsockopt(SO_PEERGROUPS): {}", errno_text(&e)),
                    "peer.groups is null",
                ),
            },
            match sys::sockopt::peer_security(a.as_fd()) {
                Ok(Some(l)) => FeatureStatus::yes(format!("sockets are labelled (ours: {l})")),
                Ok(None) => FeatureStatus::no(
                    "ENOPROTOOPT: no LSM labels sockets here (normal without SELinux/AppArmor)",
                    "peer.security_label is null",
                ),
                Err(e) => FeatureStatus::no(
                    format!("getsockopt(SO_PEERSEC): {}", errno_text(&e)),
                    "peer.security_label is null",
                ),
            },
        ),
        Err(e) => {
            let why = format!("socketpair: {e}");
            (
                FeatureStatus::no(why.clone(), "pidfd_open(pid)"),
                FeatureStatus::no(why.clone(), "peer.groups is null"),
                FeatureStatus::no(why, "peer.security_label is null"),
            )
        }
    };

    let me = self_pidfd();
    let pidfs = match &me {
        Ok(fd) => match rustix::fs::fstatfs(fd) {
            Ok(st) if st.f_type as u64 == uapi::PIDFS_MAGIC => {
                FeatureStatus::yes("pidfds live on pidfs: inode numbers identify processes")
            }
            Ok(_) => FeatureStatus::no(
                "pidfds are anonymous inodes (kernel < 6.9)",
                "process.pidfs_id is null",
            ),
            Err(e) => FeatureStatus::no(format!("fstatfs(pidfd): {e}"), "process.pidfs_id is null"),
        },
        Err(e) => FeatureStatus::no(format!("pidfd_open(self): {e}"), "process.pidfs_id is null"),
    };

    let mut pidfd_info_mask = Vec::new();
    let pidfd_get_info = match &me {
        Ok(fd) => match sys::pidfd::pidfd_get_info(
            fd.as_fd(),
            uapi::PIDFD_INFO_PID | uapi::PIDFD_INFO_CREDS | uapi::PIDFD_INFO_CGROUPID,
        ) {
            Ok(info) => {
                for (bit, name) in [
                    (uapi::PIDFD_INFO_PID, "PID"),
                    (uapi::PIDFD_INFO_CREDS, "CREDS"),
                    (uapi::PIDFD_INFO_CGROUPID, "CGROUPID"),
                    (uapi::PIDFD_INFO_EXIT, "EXIT"),
                    (uapi::PIDFD_INFO_COREDUMP, "COREDUMP"),
                ] {
                    if info.mask & bit != 0 {
                        pidfd_info_mask.push(name);
                    }
                }
                FeatureStatus::yes(format!("mask {:#x} for a live process", info.mask))
            }
            Err(e) => FeatureStatus::no(
                format!("ioctl(PIDFD_GET_INFO): {}", errno_text(&e)),
                "liveness by pidfd_send_signal(0); creds and cgroup from verified /proc/<pid>/status and /proc/<pid>/cgroup",
            ),
        },
        Err(e) => FeatureStatus::no(format!("pidfd_open(self): {e}"), "verified /proc reads"),
    };

    let pidfd_info_exit = if pidfd_get_info.available && kernel_at_least(&kernel, 6, 15) {
        FeatureStatus::yes("kernel >= 6.15: exit-time cgroup of reaped peers")
    } else {
        FeatureStatus::no(
            "kernel < 6.15 or no PIDFD_GET_INFO",
            "no cgroup for reaped peers",
        )
    };
    let pidfd_after_reap = if so_peerpidfd.available && kernel_at_least(&kernel, 6, 16) {
        FeatureStatus::yes("kernel >= 6.16: SO_PEERPIDFD returns a pidfd for reaped peers")
    } else {
        FeatureStatus::no(
            "kernel < 6.16 or no SO_PEERPIDFD",
            "a reaped peer has no pidfd: process.state exited, no exit-time cgroup",
        )
    };

    let pidfd_namespace_ioctls = match &me {
        Ok(fd) => match sys::pidfd::pidfd_namespace(fd.as_fd(), NsKind::User) {
            Ok(_) => FeatureStatus::yes("ioctl(PIDFD_GET_USER_NAMESPACE) works"),
            Err(e) => FeatureStatus::no(
                format!("ioctl(PIDFD_GET_USER_NAMESPACE): {}", errno_text(&e)),
                "verified readlink of /proc/<pid>/ns/*",
            ),
        },
        Err(e) => FeatureStatus::no(
            format!("pidfd_open(self): {e}"),
            "readlink /proc/<pid>/ns/*",
        ),
    };

    let (cgroup2, cgroup2_err) = match Cgroup2::discover() {
        Ok(Some(c)) => (Some(c), None),
        Ok(None) => (
            None,
            Some("no cgroup2 mount in /proc/self/mountinfo".to_owned()),
        ),
        Err(e) => (None, Some(e)),
    };
    let open_by_handle_at = match &cgroup2 {
        Some(c) => {
            let own = rustix::fs::fstat(&c.fd).map(|st| st.st_ino);
            match own
                .map_err(std::io::Error::from)
                .and_then(|id| c.path_of_id(id))
            {
                Ok(_) => FeatureStatus::yes(
                    "open_by_handle_at(FILEID_KERNFS) on the cgroup2 mount works",
                ),
                Err(e) => FeatureStatus::no(
                    format!("open_by_handle_at: {}", errno_text(&e)),
                    "verified /proc/<pid>/cgroup, checked against the id (live peers only)",
                ),
            }
        }
        None => FeatureStatus::no(
            cgroup2_err.clone().unwrap_or_default(),
            "cgroup.path is null",
        ),
    };

    let procfs = match rustix::fs::readlinkat(rustix::fs::CWD, "/proc/self", Vec::new()) {
        Ok(link)
            if link.to_str().ok()
                == Some(&rustix::process::getpid().as_raw_nonzero().to_string()) =>
        {
            FeatureStatus::yes("/proc belongs to our pid namespace")
        }
        Ok(_) => FeatureStatus::no(
            "/proc/self is not our pid: /proc belongs to another pid namespace",
            "no /proc reads: comm, exe, maps and fallbacks are null (warning proc_unavailable)",
        ),
        Err(e) => FeatureStatus::no(
            format!("readlink /proc/self: {e}"),
            "no /proc reads (warning proc_unavailable)",
        ),
    };

    Probed {
        features: Features {
            kernel,
            so_peerpidfd,
            so_peergroups,
            so_peersec,
            pidfs,
            pidfd_get_info,
            pidfd_info_mask,
            pidfd_info_exit,
            pidfd_after_reap,
            pidfd_namespace_ioctls,
            open_by_handle_at,
            procfs,
            cgroup2_mount: cgroup2
                .as_ref()
                .map(|c| c.mount_point.display().to_string()),
            privileges: privileges(),
            connect_cgroup: FeatureStatus::no(
                "no connect-time cgroup source configured",
                "cgroup at identification time (PIDFD_GET_INFO), provenance kernel_now",
            ),
        },
        cgroup2,
    }
}

fn privileges() -> Privileges {
    use rustix::thread::CapabilitySet as C;
    let wanted: [(C, &'static str); 6] = [
        (C::DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH"),
        (C::SYS_PTRACE, "CAP_SYS_PTRACE"),
        (C::SYS_ADMIN, "CAP_SYS_ADMIN"),
        (C::BPF, "CAP_BPF"),
        (C::PERFMON, "CAP_PERFMON"),
        (C::NET_ADMIN, "CAP_NET_ADMIN"),
    ];
    let eff = rustix::thread::capabilities(None)
        .map(|s| s.effective)
        .unwrap_or(C::empty());
    let mut capabilities = Vec::new();
    let mut missing = Vec::new();
    for (c, name) in wanted {
        if eff.contains(c) {
            capabilities.push(name);
        } else {
            missing.push(name);
        }
    }
    Privileges {
        root: rustix::process::geteuid().is_root(),
        capabilities,
        missing,
    }
}

impl Features {
    /// Records the builder's switches in the report.
    pub(crate) fn disable(&mut self, f: Feature) {
        let (st, fb) = match f {
            Feature::SoPeerpidfd => (&mut self.so_peerpidfd, "pidfd_open(pid) after connect()"),
            Feature::PidfdGetInfo => (
                &mut self.pidfd_get_info,
                "pidfd_send_signal(0) and verified /proc/<pid>/status and cgroup",
            ),
            Feature::OpenByHandleAt => (
                &mut self.open_by_handle_at,
                "verified /proc/<pid>/cgroup checked with stat",
            ),
            Feature::PidfdNamespaceIoctls => (
                &mut self.pidfd_namespace_ioctls,
                "verified readlink of /proc/<pid>/ns/*",
            ),
        };
        st.disabled = true;
        if st.fallback.is_none() {
            st.fallback = Some(fb.to_owned());
        }
    }
}
