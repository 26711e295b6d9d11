//! Pluggable source of the peer's cgroup *as of `connect()`*.
//!
//! The kernel records the connecting task's cgroup on the socket that `accept()`
//! returns, but no getsockopt exposes it. `callerid-bpf` reads it with a BPF program and
//! implements [`ConnectCgroupSource`]; this crate stays free of BPF and C.

use crate::ids::CgroupId;
use std::os::fd::BorrowedFd;

/// Something that can tell the cgroup an accepted socket's peer was in at `connect()`.
pub trait ConnectCgroupSource: Send + Sync + std::fmt::Debug {
    /// The cgroup id recorded for the accepted socket `sock`, or `Ok(None)` when the
    /// source has no record for it (e.g. a `socketpair()` end).
    fn connect_cgroup(&self, sock: BorrowedFd<'_>) -> std::io::Result<Option<CgroupId>>;

    /// A short human description for `callerid doctor` (e.g. "bpf cgroup/getsockname_unix").
    fn describe(&self) -> String;
}

/// A borrowed source is a source: one loaded capture can serve several identifiers
/// (e.g. a `&'static` one in an `Arc<dyn ConnectCgroupSource>`) without a wrapper type.
impl<T: ConnectCgroupSource + ?Sized> ConnectCgroupSource for &T {
    fn connect_cgroup(&self, sock: BorrowedFd<'_>) -> std::io::Result<Option<CgroupId>> {
        (**self).connect_cgroup(sock)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}
