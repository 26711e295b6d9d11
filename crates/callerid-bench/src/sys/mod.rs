//! The bench crate's only unsafe code: libsystemd's `sd_peer_*` (the peer we compare
//! against), and the raw socket options and pidfd ioctl used to break the floor down.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

#[link(name = "systemd")]
unsafe extern "C" {
    fn sd_peer_get_cgroup(fd: c_int, cgroup: *mut *mut c_char) -> c_int;
    fn sd_peer_get_unit(fd: c_int, unit: *mut *mut c_char) -> c_int;
}

/// Takes ownership of a string libsystemd allocated with `malloc`.
///
/// # Safety
/// `p` is null or a NUL-terminated string from `malloc` that nobody else frees.
unsafe fn take_c_string(p: *mut c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `p` is a valid NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: allocated by libsystemd with malloc, owned by us from here on.
    unsafe { libc::free(p.cast()) };
    Some(s)
}

/// libsystemd: `sd_peer_get_cgroup` then `sd_peer_get_unit` on the same socket.
/// Returns the cgroup path and the unit (either may be missing: negative errno).
pub fn sd_peer_cgroup_and_unit(sock: BorrowedFd<'_>) -> (Result<String, i32>, Result<String, i32>) {
    let mut cg: *mut c_char = std::ptr::null_mut();
    // SAFETY: `cg` is a valid out-pointer; the fd is borrowed for the call.
    let r1 = unsafe { sd_peer_get_cgroup(sock.as_raw_fd(), &mut cg) };
    // SAFETY: on success libsystemd stored a malloc'd string (or left it null).
    let cg = unsafe { take_c_string(cg) };
    let mut unit: *mut c_char = std::ptr::null_mut();
    // SAFETY: as above.
    let r2 = unsafe { sd_peer_get_unit(sock.as_raw_fd(), &mut unit) };
    // SAFETY: as above.
    let unit = unsafe { take_c_string(unit) };
    (
        if r1 < 0 { Err(r1) } else { cg.ok_or(r1) },
        if r2 < 0 { Err(r2) } else { unit.ok_or(r2) },
    )
}

const SO_PEERPIDFD: c_int = 77;

/// `getsockopt(SO_PEERPIDFD)`.
pub fn peer_pidfd(sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut fd: c_int = -1;
    let mut len = size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `fd` is a writable c_int and `len` says so.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&raw mut fd).cast(),
            &mut len,
        )
    };
    if rc != 0 || fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel installed a new fd that is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `struct pidfd_info`, VER1 (72 bytes), enough for pid, creds and cgroup id.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    ids: [u32; 12],
    coredump: [u32; 2],
}

/// `ioctl(PIDFD_GET_INFO)` asking for pid, creds and cgroup id; returns the cgroup id.
pub fn pidfd_cgroup_id(pidfd: BorrowedFd<'_>) -> io::Result<u64> {
    const PIDFD_GET_INFO_72: libc::c_ulong = 0xC048_FF0B;
    let mut info = PidfdInfo {
        mask: 0x7,
        ..PidfdInfo::default()
    };
    const _: () = assert!(size_of::<PidfdInfo>() == 72);
    // SAFETY: `info` is a writable 72-byte struct pidfd_info, the size the opcode encodes.
    let rc = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO_72, &raw mut info) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info.cgroupid)
}
