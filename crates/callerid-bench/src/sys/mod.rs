//! The bench crate's only unsafe code: libsystemd's `sd_peer_*` (the peer we compare
//! against), and the raw socket options and pidfd ioctl used to break the floor down.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

type SdPeerGet = unsafe extern "C" fn(c_int, *mut *mut c_char) -> c_int;

/// libsystemd's `sd_peer_get_cgroup` and `sd_peer_get_unit`, resolved at run time from
/// `libsystemd.so.0` (part of every Debian system), so that building the workspace needs
/// neither libsystemd-dev nor a link-time dependency.
struct SdPeer {
    get_cgroup: SdPeerGet,
    get_unit: SdPeerGet,
}

fn libsystemd() -> Option<&'static SdPeer> {
    static LIB: std::sync::OnceLock<Option<SdPeer>> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        // SAFETY: a NUL-terminated library name; loading libsystemd runs no code of ours.
        let handle = unsafe { libc::dlopen(c"libsystemd.so.0".as_ptr(), libc::RTLD_NOW) };
        if handle.is_null() {
            return None;
        }
        let sym = |name: &CStr| {
            // SAFETY: `handle` is a live dlopen handle (never closed) and `name` is
            // NUL-terminated.
            let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
            (!p.is_null()).then_some(p)
        };
        let (cg, unit) = (sym(c"sd_peer_get_cgroup")?, sym(c"sd_peer_get_unit")?);
        // SAFETY: both symbols are libsystemd's `int sd_peer_get_*(int fd, char **ret)`
        // (sd-login.h), which is exactly `SdPeerGet`; the library stays loaded forever.
        Some(unsafe {
            SdPeer {
                get_cgroup: std::mem::transmute::<*mut libc::c_void, SdPeerGet>(cg),
                get_unit: std::mem::transmute::<*mut libc::c_void, SdPeerGet>(unit),
            }
        })
    })
    .as_ref()
}

/// Whether libsystemd could be loaded (the comparison is skipped without it).
pub fn libsystemd_available() -> bool {
    libsystemd().is_some()
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
    let Some(sd) = libsystemd() else {
        return (Err(-libc::ENOSYS), Err(-libc::ENOSYS));
    };
    let mut cg: *mut c_char = std::ptr::null_mut();
    // SAFETY: `cg` is a valid out-pointer; the fd is borrowed for the call.
    let r1 = unsafe { (sd.get_cgroup)(sock.as_raw_fd(), &mut cg) };
    // SAFETY: on success libsystemd stored a malloc'd string (or left it null).
    let cg = unsafe { take_c_string(cg) };
    let mut unit: *mut c_char = std::ptr::null_mut();
    // SAFETY: as above.
    let r2 = unsafe { (sd.get_unit)(sock.as_raw_fd(), &mut unit) };
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
