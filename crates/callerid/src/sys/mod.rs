//! The only unsafe code of the crate: thin, checked wrappers around the kernel calls
//! rustix does not cover (SO_PEERCRED with a pid that may be 0, SO_PEERPIDFD,
//! SO_PEERGROUPS, SO_PEERSEC, PIDFD_GET_INFO, the pidfd namespace ioctls,
//! open_by_handle_at on the cgroup2 mount).
//!
//! Every function here takes borrowed or owned fds, checks the length the kernel
//! reports, and returns `std::io::Error` with the errno; the callers above decide what
//! an errno means.
#![allow(unsafe_code)]

pub(crate) mod handle;
pub(crate) mod pidfd;
pub(crate) mod sockopt;
pub(crate) mod uapi;

/// The errno of the last failed libc call, as an `io::Error`.
fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}
