//! The daemon's only unsafe code: taking ownership of descriptors inherited through
//! systemd socket activation.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor the service manager passed us (`LISTEN_FDS`).
///
/// Refuses descriptors below 3 (stdio is never a listening socket) and descriptors
/// that are not open.
pub(crate) fn adopt_inherited_fd(raw: RawFd) -> io::Result<OwnedFd> {
    if raw < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("inherited descriptor {raw} is a stdio descriptor"),
        ));
    }
    // SAFETY: F_GETFD only reads the descriptor flags of `raw`; it touches no memory
    // and fails with EBADF when `raw` is not open.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (checked above) and, per the sd_listen_fds
    // protocol (LISTEN_PID names us), was handed to this process by the service
    // manager. `activation::take` adopts each inherited number exactly once, at
    // startup, and nothing else in the process refers to these numbers, so the new
    // `OwnedFd` is the sole owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}
