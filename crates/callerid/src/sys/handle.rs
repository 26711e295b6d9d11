//! cgroup id → open directory through `open_by_handle_at` on the cgroup2 mount.

use super::last_error;
use super::uapi::FILEID_KERNFS;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `struct file_handle` followed by the 8-byte kernfs node id.
#[repr(C)]
struct KernfsHandle {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    id: [u8; 8],
}

const _: () = {
    assert!(size_of::<libc::file_handle>() == offset_of!(KernfsHandle, id));
    assert!(offset_of!(libc::file_handle, handle_type) == offset_of!(KernfsHandle, handle_type));
};

/// `open_by_handle_at(mount_fd, {FILEID_KERNFS, id}, O_RDONLY|O_DIRECTORY|O_CLOEXEC)`.
///
/// `mount_fd` must be an fd on the **cgroup2** mount (on a v1 hierarchy, id 1
/// "succeeds" in the wrong tree). Needs CAP_DAC_READ_SEARCH (`EPERM` otherwise);
/// a removed cgroup gives `ESTALE`. cgroup file handles since Linux 5.5.
///
/// # References
/// man2 `open_by_handle_at(2)`.
#[doc(alias = "open_by_handle_at")]
pub(crate) fn open_cgroup_by_id(mount_fd: BorrowedFd<'_>, id: u64) -> io::Result<OwnedFd> {
    let mut h = KernfsHandle {
        handle_bytes: 8,
        handle_type: FILEID_KERNFS,
        id: id.to_ne_bytes(),
    };
    // SAFETY: `h` is a `struct file_handle` whose `handle_bytes` (8) matches the payload
    // that follows it in memory (checked by the layout asserts above); the kernel reads
    // only `handle_bytes` bytes of payload.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount_fd.as_raw_fd(),
            (&raw mut h).cast::<libc::file_handle>(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: on success the kernel returned a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
