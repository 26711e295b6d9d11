//! `PIDFD_GET_INFO` and the pidfd namespace ioctls.

use super::last_error;
use super::uapi::{
    PIDFD_GET_CGROUP_NAMESPACE_NR, PIDFD_GET_INFO_NR, PIDFD_GET_IPC_NAMESPACE_NR,
    PIDFD_GET_MNT_NAMESPACE_NR, PIDFD_GET_NET_NAMESPACE_NR, PIDFD_GET_PID_NAMESPACE_NR,
    PIDFD_GET_TIME_NAMESPACE_NR, PIDFD_GET_USER_NAMESPACE_NR, PIDFD_GET_UTS_NAMESPACE_NR,
    PIDFD_INFO_CGROUPID, PIDFD_INFO_CREDS, PIDFD_INFO_EXIT, PIDFD_INFO_PID, PIDFS_IOCTL_MAGIC,
};
use rustix::ioctl::opcode;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `struct pidfd_info` at the newest size we know (`PIDFD_INFO_SIZE_VER3`, 88 bytes).
///
/// The kernel accepts any size ≥ 64, copies out what it has (72 bytes on 6.18) and
/// zero-fills the rest; which fields are valid is said by `mask` alone.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct PidfdInfoRaw {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
    coredump_mask: u32,
    coredump_signal: u32,
    supported_mask: u64,
    coredump_code: u32,
    spare: u32,
}

const _: () = {
    assert!(size_of::<PidfdInfoRaw>() == 88);
    assert!(offset_of!(PidfdInfoRaw, cgroupid) == 8);
    assert!(offset_of!(PidfdInfoRaw, pid) == 16);
    assert!(offset_of!(PidfdInfoRaw, ppid) == 24);
    assert!(offset_of!(PidfdInfoRaw, ruid) == 28);
    assert!(offset_of!(PidfdInfoRaw, euid) == 36);
    assert!(offset_of!(PidfdInfoRaw, exit_code) == 60);
    assert!(offset_of!(PidfdInfoRaw, coredump_mask) == 64);
    assert!(offset_of!(PidfdInfoRaw, supported_mask) == 72);
    assert!(offset_of!(PidfdInfoRaw, coredump_code) == 80);
};

const PIDFD_GET_INFO: rustix::ioctl::Opcode =
    opcode::read_write::<PidfdInfoRaw>(PIDFS_IOCTL_MAGIC, PIDFD_GET_INFO_NR);

/// Current credentials of a process, as `PIDFD_GET_INFO` reports them (mapped into our
/// user namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InfoCreds {
    pub(crate) ruid: u32,
    pub(crate) euid: u32,
    pub(crate) rgid: u32,
    pub(crate) egid: u32,
}

/// The checked answer of `PIDFD_GET_INFO`: each field is only there when the kernel set
/// its bit in `mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PidfdInfo {
    /// The mask the kernel returned.
    pub(crate) mask: u64,
    /// `(pid, tgid, ppid)` in our pid namespace.
    pub(crate) pid: Option<(u32, u32, u32)>,
    /// Current credentials.
    pub(crate) creds: Option<InfoCreds>,
    /// cgroup2 id: current, or the exit-time one when `exit_code` is present.
    pub(crate) cgroup_id: Option<u64>,
    /// Wait status at exit (only after reap, only when asked for).
    pub(crate) exit_code: Option<i32>,
}

/// `ioctl(pidfd, PIDFD_GET_INFO, &info)` with `info.mask = request`.
///
/// Since Linux 6.13. `ESRCH` once the process was reaped (unless `PIDFD_INFO_EXIT` is
/// asked for, 6.15+), `EREMOTE` when it is outside our pid namespace hierarchy, `ENOTTY`
/// on older kernels.
#[doc(alias = "PIDFD_GET_INFO")]
pub(crate) fn pidfd_get_info(pidfd: BorrowedFd<'_>, request: u64) -> io::Result<PidfdInfo> {
    let mut raw = PidfdInfoRaw {
        mask: request,
        ..PidfdInfoRaw::default()
    };
    // SAFETY: `raw` is a valid, writable `struct pidfd_info` of the size encoded in the
    // opcode; the kernel writes at most that many bytes.
    let rc = unsafe {
        libc::ioctl(
            pidfd.as_raw_fd(),
            PIDFD_GET_INFO as _,
            (&raw mut raw).cast::<libc::c_void>(),
        )
    };
    if rc < 0 {
        return Err(last_error());
    }
    let m = raw.mask;
    Ok(PidfdInfo {
        mask: m,
        pid: (m & PIDFD_INFO_PID != 0).then_some((raw.pid, raw.tgid, raw.ppid)),
        creds: (m & PIDFD_INFO_CREDS != 0).then_some(InfoCreds {
            ruid: raw.ruid,
            euid: raw.euid,
            rgid: raw.rgid,
            egid: raw.egid,
        }),
        cgroup_id: (m & PIDFD_INFO_CGROUPID != 0).then_some(raw.cgroupid),
        exit_code: (m & PIDFD_INFO_EXIT != 0).then_some(raw.exit_code),
    })
}

/// A namespace type reachable through a pidfd ioctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NsKind {
    User,
    Pid,
    Net,
    Mnt,
    Cgroup,
    Ipc,
    Uts,
    Time,
}

impl NsKind {
    /// All kinds, in the order of the JSON record.
    pub(crate) const ALL: [NsKind; 8] = [
        NsKind::User,
        NsKind::Pid,
        NsKind::Net,
        NsKind::Mnt,
        NsKind::Cgroup,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Time,
    ];

    /// Name under `/proc/<pid>/ns/`.
    pub(crate) const fn proc_name(self) -> &'static str {
        match self {
            NsKind::User => "ns/user",
            NsKind::Pid => "ns/pid",
            NsKind::Net => "ns/net",
            NsKind::Mnt => "ns/mnt",
            NsKind::Cgroup => "ns/cgroup",
            NsKind::Ipc => "ns/ipc",
            NsKind::Uts => "ns/uts",
            NsKind::Time => "ns/time",
        }
    }

    /// Name of the pidfd ioctl, for messages.
    pub(crate) const fn ioctl_name(self) -> &'static str {
        match self {
            NsKind::User => "ioctl(PIDFD_GET_USER_NAMESPACE)",
            NsKind::Pid => "ioctl(PIDFD_GET_PID_NAMESPACE)",
            NsKind::Net => "ioctl(PIDFD_GET_NET_NAMESPACE)",
            NsKind::Mnt => "ioctl(PIDFD_GET_MNT_NAMESPACE)",
            NsKind::Cgroup => "ioctl(PIDFD_GET_CGROUP_NAMESPACE)",
            NsKind::Ipc => "ioctl(PIDFD_GET_IPC_NAMESPACE)",
            NsKind::Uts => "ioctl(PIDFD_GET_UTS_NAMESPACE)",
            NsKind::Time => "ioctl(PIDFD_GET_TIME_NAMESPACE)",
        }
    }

    const fn ioctl_nr(self) -> u8 {
        match self {
            NsKind::User => PIDFD_GET_USER_NAMESPACE_NR,
            NsKind::Pid => PIDFD_GET_PID_NAMESPACE_NR,
            NsKind::Net => PIDFD_GET_NET_NAMESPACE_NR,
            NsKind::Mnt => PIDFD_GET_MNT_NAMESPACE_NR,
            NsKind::Cgroup => PIDFD_GET_CGROUP_NAMESPACE_NR,
            NsKind::Ipc => PIDFD_GET_IPC_NAMESPACE_NR,
            NsKind::Uts => PIDFD_GET_UTS_NAMESPACE_NR,
            NsKind::Time => PIDFD_GET_TIME_NAMESPACE_NR,
        }
    }
}

/// `ioctl(pidfd, PIDFD_GET_<KIND>_NAMESPACE, 0)`: an nsfs fd of the process's
/// namespace. Since Linux 6.11; needs ptrace-read access to the process.
#[doc(alias = "PIDFD_GET_USER_NAMESPACE")]
pub(crate) fn pidfd_namespace(pidfd: BorrowedFd<'_>, kind: NsKind) -> io::Result<OwnedFd> {
    let op = opcode::none(PIDFS_IOCTL_MAGIC, kind.ioctl_nr());
    // SAFETY: these ioctls take no argument (the 0 is ignored) and return a new fd.
    let rc = unsafe { libc::ioctl(pidfd.as_raw_fd(), op as _, 0usize) };
    if rc < 0 {
        return Err(last_error());
    }
    // SAFETY: on success the kernel installed a new fd (O_CLOEXEC) and its ownership is
    // ours.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

/// `pidfd_send_signal(pidfd, 0, NULL, 0)`: a liveness probe that delivers nothing.
///
/// Since Linux 5.1. `ESRCH` once reaped (a zombie still answers 0), `EPERM` when the
/// process is alive but not ours to signal, `EINVAL` across pid namespaces. rustix
/// cannot express signal 0.
#[doc(alias = "pidfd_send_signal")]
pub(crate) fn pidfd_signal_zero(pidfd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: signal 0 with a null siginfo and no flags; the fd is borrowed for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0 as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if rc < 0 { Err(last_error()) } else { Ok(()) }
}
