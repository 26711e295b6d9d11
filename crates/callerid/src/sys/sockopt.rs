//! `getsockopt` on an accepted `AF_UNIX` socket: the connect-time snapshot.

use super::last_error;
use super::uapi::{SO_PEERGROUPS, SO_PEERPIDFD, SO_PEERSEC};
use std::io;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `struct ucred` as `SO_PEERCRED` returns it. The pid may be 0 (peer not visible in
/// our pid namespace, or no peer at all), which is why rustix's `UCred` (whose pid is
/// non-zero) is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawUcred {
    /// tgid of the connecting process in our pid namespace, 0 when not visible.
    pub(crate) pid: i32,
    /// Effective uid at connect time, mapped into our user namespace.
    pub(crate) uid: u32,
    /// Effective gid at connect time.
    pub(crate) gid: u32,
}

/// `getsockopt(fd, SOL_SOCKET, SO_PEERCRED)`.
///
/// A socket without a peer answers `{pid: 0, uid: -1, gid: -1}`.
///
/// # References
/// man7 `unix(7)`, `socket(7)`.
#[doc(alias = "SO_PEERCRED")]
pub(crate) fn peer_cred(sock: BorrowedFd<'_>) -> io::Result<RawUcred> {
    let mut value = MaybeUninit::<libc::ucred>::uninit();
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `value` is writable for `len` bytes, `len` is a valid socklen_t, and the
    // fd is borrowed for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            value.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(last_error());
    }
    if len as usize != size_of::<libc::ucred>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "SO_PEERCRED: unexpected length",
        ));
    }
    // SAFETY: the kernel filled exactly `size_of::<ucred>()` bytes (checked above), and
    // every bit pattern is a valid `ucred` (three integers).
    let uc = unsafe { value.assume_init() };
    Ok(RawUcred {
        pid: uc.pid,
        uid: uc.uid,
        gid: uc.gid,
    })
}

/// `getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD)`: a pidfd bound to the connecting process.
///
/// Since Linux 6.5; since 6.16 it also succeeds after the peer was reaped (a "stale"
/// pidfd that still answers `PIDFD_GET_INFO` with `PIDFD_INFO_EXIT`).
/// `ENOPROTOOPT` on older kernels, `ENODATA` when the socket has no peer pid.
#[doc(alias = "SO_PEERPIDFD")]
pub(crate) fn peer_pidfd(sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
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
    if rc != 0 {
        return Err(last_error());
    }
    if len as usize != size_of::<libc::c_int>() || fd < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "SO_PEERPIDFD: unexpected answer",
        ));
    }
    // SAFETY: on success the kernel installed a new O_CLOEXEC fd in our table and
    // handed its ownership to us; nothing else refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS)`: the supplementary groups at connect
/// time. Asks with a stack buffer first, so the answer costs one exact allocation (none
/// for an empty list); grows a heap buffer when the kernel answers `ERANGE` with the
/// size it needs. Since Linux 4.13.
#[doc(alias = "SO_PEERGROUPS")]
pub(crate) fn peer_groups(sock: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    const GID: usize = size_of::<libc::gid_t>();
    let mut stack = [0u32; 64];
    let mut len = (stack.len() * GID) as libc::socklen_t;
    // SAFETY: `stack` is writable for `len` bytes; the kernel writes at most `len`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERGROUPS,
            stack.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc == 0 {
        let n = len as usize;
        if !n.is_multiple_of(GID) || n > stack.len() * GID {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "SO_PEERGROUPS: unexpected length",
            ));
        }
        return Ok(stack[..n / GID].to_vec());
    }
    let err = last_error();
    if err.raw_os_error() != Some(libc::ERANGE) {
        return Err(err);
    }
    let mut out: Vec<u32> = Vec::new();
    let mut need = (len as usize).div_ceil(GID);
    // NGROUPS_MAX is 65536; a few rounds always suffice unless the answer is absurd.
    for _ in 0..4 {
        if need <= out.capacity() || need > 65536 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "SO_PEERGROUPS: ERANGE without a usable size",
            ));
        }
        out.reserve_exact(need);
        let cap = out.capacity();
        let mut len = (cap * GID) as libc::socklen_t;
        // SAFETY: `out` has room for `cap` gids (`len` bytes); the kernel writes at
        // most `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                out.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc == 0 {
            let n = len as usize;
            if !n.is_multiple_of(GID) || n > cap * GID {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "SO_PEERGROUPS: unexpected length",
                ));
            }
            // SAFETY: the kernel initialised the first `n / GID` elements (bounded by
            // the capacity, checked above).
            unsafe { out.set_len(n / GID) };
            return Ok(out);
        }
        let err = last_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
        need = (len as usize).div_ceil(GID);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "SO_PEERGROUPS: group list keeps growing",
    ))
}

/// `getsockopt(fd, SOL_SOCKET, SO_PEERSEC)`: the LSM label of the peer socket.
///
/// `Ok(None)` when no LSM labels sockets (`ENOPROTOOPT`) — a normal case, not an error.
#[doc(alias = "SO_PEERSEC")]
pub(crate) fn peer_security(sock: BorrowedFd<'_>) -> io::Result<Option<String>> {
    // Most labels fit on the stack; the common answer (ENOPROTOOPT) allocates nothing.
    let mut stack = [0u8; 256];
    let mut heap: Vec<u8> = Vec::new();
    for _ in 0..3 {
        let buf: &mut [u8] = if heap.is_empty() {
            &mut stack
        } else {
            &mut heap
        };
        let mut len = buf.len() as libc::socklen_t;
        // SAFETY: `buf` is writable for `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERSEC,
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc == 0 {
            let mut label = &buf[..(len as usize).min(buf.len())];
            // The label may or may not carry its terminating NUL.
            while let [rest @ .., 0] = label {
                label = rest;
            }
            return Ok(Some(String::from_utf8_lossy(label).into_owned()));
        }
        let err = last_error();
        match err.raw_os_error() {
            Some(libc::ENOPROTOOPT) => return Ok(None),
            Some(libc::ERANGE) if (len as usize) > buf.len() && (len as usize) <= 1 << 16 => {
                heap = vec![0; len as usize];
            }
            _ => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "SO_PEERSEC: label keeps growing",
    ))
}
