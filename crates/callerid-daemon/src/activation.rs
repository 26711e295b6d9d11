//! systemd socket activation: descriptors passed through `LISTEN_FDS`, named by
//! `LISTEN_FDNAMES` (`FileDescriptorName=` in the .socket unit).

use crate::error::Error;
use crate::sys;
use std::os::fd::OwnedFd;

/// One descriptor the service manager passed us.
#[derive(Debug)]
pub struct InheritedSocket {
    /// Its `FileDescriptorName=` (systemd's default is the socket unit's name;
    /// `"unknown"` when `LISTEN_FDNAMES` is absent).
    pub name: String,
    /// The listening socket.
    pub fd: OwnedFd,
}

/// Takes every descriptor passed through socket activation (none when `LISTEN_PID`
/// does not name this process). Each is checked to be a listening `AF_UNIX` stream
/// socket; anything else is an error rather than a guess.
pub fn take() -> Result<Vec<InheritedSocket>, Error> {
    // Checks LISTEN_PID and marks the descriptors close-on-exec.
    let fds = match sd_notify::listen_fds_with_names() {
        Ok(fds) => fds,
        Err(source) => {
            return Err(Error::Activation {
                detail: "LISTEN_FDS/LISTEN_FDNAMES".into(),
                source,
            });
        }
    };
    let mut out = Vec::with_capacity(fds.len());
    for (raw, name) in fds {
        let fd = sys::adopt_inherited_fd(raw).map_err(|source| Error::Activation {
            detail: format!("descriptor {raw} ({name})"),
            source,
        })?;
        check_listening_unix(&fd).map_err(|source| Error::Activation {
            detail: format!("descriptor {raw} ({name})"),
            source,
        })?;
        out.push(InheritedSocket { name, fd });
    }
    Ok(out)
}

fn check_listening_unix(fd: &OwnedFd) -> std::io::Result<()> {
    use rustix::net::{AddressFamily, SocketType, sockopt};
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string());
    if sockopt::socket_domain(fd)? != AddressFamily::UNIX {
        return Err(bad("not an AF_UNIX socket (ListenStream= must be a path)"));
    }
    if sockopt::socket_type(fd)? != SocketType::STREAM {
        return Err(bad("not a stream socket"));
    }
    if !sockopt::socket_acceptconn(fd)? {
        return Err(bad("not a listening socket (Accept=no is required)"));
    }
    Ok(())
}
