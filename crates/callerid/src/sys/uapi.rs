//! Kernel constants that the `libc` crate (for our target) does not export, each with
//! the uapi header and the kernel version that added it.

/// `SO_PEERSEC`, `include/uapi/asm-generic/socket.h`, Linux 2.6.2.
pub(crate) const SO_PEERSEC: libc::c_int = 31;
/// `SO_PEERGROUPS`, `include/uapi/asm-generic/socket.h`, Linux 4.13.
pub(crate) const SO_PEERGROUPS: libc::c_int = 59;
/// `SO_PEERPIDFD`, `include/uapi/asm-generic/socket.h`, Linux 6.5.
pub(crate) const SO_PEERPIDFD: libc::c_int = 77;

/// `PIDFD_INFO_PID`, `include/uapi/linux/pidfd.h`, Linux 6.13.
pub(crate) const PIDFD_INFO_PID: u64 = 1 << 0;
/// `PIDFD_INFO_CREDS`, Linux 6.13.
pub(crate) const PIDFD_INFO_CREDS: u64 = 1 << 1;
/// `PIDFD_INFO_CGROUPID`, Linux 6.13.
pub(crate) const PIDFD_INFO_CGROUPID: u64 = 1 << 2;
/// `PIDFD_INFO_EXIT`, Linux 6.15: only set after the task was reaped.
pub(crate) const PIDFD_INFO_EXIT: u64 = 1 << 3;
/// `PIDFD_INFO_COREDUMP`, Linux 6.16.
pub(crate) const PIDFD_INFO_COREDUMP: u64 = 1 << 4;

/// `PIDFS_IOCTL_MAGIC`, `include/uapi/linux/pidfd.h`.
pub(crate) const PIDFS_IOCTL_MAGIC: u8 = 0xFF;
/// Number of `PIDFD_GET_INFO` (`_IOWR(0xFF, 11, struct pidfd_info)`), Linux 6.13.
pub(crate) const PIDFD_GET_INFO_NR: u8 = 11;

/// `PIDFD_GET_CGROUP_NAMESPACE` .. `PIDFD_GET_UTS_NAMESPACE` are `_IO(0xFF, 1..=10)`,
/// Linux 6.11.
pub(crate) const PIDFD_GET_CGROUP_NAMESPACE_NR: u8 = 1;
/// `PIDFD_GET_IPC_NAMESPACE`.
pub(crate) const PIDFD_GET_IPC_NAMESPACE_NR: u8 = 2;
/// `PIDFD_GET_MNT_NAMESPACE`.
pub(crate) const PIDFD_GET_MNT_NAMESPACE_NR: u8 = 3;
/// `PIDFD_GET_NET_NAMESPACE`.
pub(crate) const PIDFD_GET_NET_NAMESPACE_NR: u8 = 4;
/// `PIDFD_GET_PID_NAMESPACE`.
pub(crate) const PIDFD_GET_PID_NAMESPACE_NR: u8 = 5;
/// `PIDFD_GET_TIME_NAMESPACE`.
pub(crate) const PIDFD_GET_TIME_NAMESPACE_NR: u8 = 7;
/// `PIDFD_GET_USER_NAMESPACE`.
pub(crate) const PIDFD_GET_USER_NAMESPACE_NR: u8 = 9;
/// `PIDFD_GET_UTS_NAMESPACE`.
pub(crate) const PIDFD_GET_UTS_NAMESPACE_NR: u8 = 10;

/// `FILEID_KERNFS`, `include/linux/exportfs.h`: handle type of kernfs (cgroup2, pidfs)
/// file handles, payload = the 8-byte node id. cgroup handles since Linux 5.5.
pub(crate) const FILEID_KERNFS: libc::c_int = 0xfe;

/// `PIDFS_MAGIC`, `include/uapi/linux/magic.h`, Linux 6.9: pidfds live on pidfs and
/// their inode numbers identify processes.
pub(crate) const PIDFS_MAGIC: u64 = 0x5049_4446;

/// `PROC_USER_INIT_INO`, `include/linux/proc_ns.h` (since Linux 3.8): the fixed inode
/// number of the initial user namespace.
pub(crate) const PROC_USER_INIT_INO: u64 = 0xEFFF_FFFD;
