//! Errors callers can act on: the daemon fails closed on every one of them.

use std::io;

/// Why a socket is not one we can identify a peer of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WrongSocketKind {
    /// Not an `AF_UNIX` socket (e.g. TCP).
    NotUnix,
    /// A listening socket: there is no peer until `accept()`.
    Listening,
    /// Not connected (e.g. an unconnected datagram socket).
    NotConnected,
    /// A datagram socket: identity is per message, not per connection.
    Datagram,
    /// Not a socket at all, or a closed descriptor.
    NotASocket,
}

impl std::fmt::Display for WrongSocketKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotUnix => "not an AF_UNIX socket",
            Self::Listening => "a listening socket has no peer",
            Self::NotConnected => "socket is not connected",
            Self::Datagram => "datagram sockets carry no connection identity",
            Self::NotASocket => "not a socket (or a closed descriptor)",
        })
    }
}

/// Errors from identification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer process no longer exists.
    #[error("{syscall}: the peer process is gone")]
    PeerGone {
        /// The call that found out.
        syscall: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// We lack the privilege for this.
    #[error("{syscall}: not permitted")]
    NotPermitted {
        /// The call refused.
        syscall: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// This kernel lacks a feature we need and there is no fallback.
    #[error("{syscall}: not supported by this kernel")]
    Unsupported {
        /// The call that is missing.
        syscall: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// The peer is outside our pid namespace hierarchy.
    #[error("{syscall}: the peer is outside our pid namespace")]
    ForeignPidNamespace {
        /// The call that found out.
        syscall: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// The descriptor is not an accepted stream/seqpacket AF_UNIX socket.
    #[error("{syscall}: {kind}")]
    WrongSocket {
        /// The call that found out.
        syscall: &'static str,
        /// What is wrong with it.
        kind: WrongSocketKind,
        /// The kernel's answer, when there was one.
        #[source]
        source: Option<io::Error>,
    },
    /// Any other I/O failure, with the path when there was one.
    #[error("{syscall}{}", path.as_deref().map(|p| format!(" {p}")).unwrap_or_default())]
    Io {
        /// The call that failed.
        syscall: &'static str,
        /// The path involved.
        path: Option<String>,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Sorts a kernel error into the variant a caller can act on: `ESRCH` → peer gone,
    /// `EPERM`/`EACCES` → not permitted, `ENOTTY`/`ENOSYS`/`ENOPROTOOPT`/`EOPNOTSUPP` →
    /// unsupported, `EREMOTE` → foreign pid namespace, anything else → I/O.
    pub(crate) fn from_io(syscall: &'static str, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::ESRCH) => Self::PeerGone { syscall, source },
            Some(libc::EPERM | libc::EACCES) => Self::NotPermitted { syscall, source },
            Some(libc::ENOTTY | libc::ENOSYS | libc::ENOPROTOOPT | libc::EOPNOTSUPP) => {
                Self::Unsupported { syscall, source }
            }
            Some(libc::EREMOTE) => Self::ForeignPidNamespace { syscall, source },
            _ => Self::Io {
                syscall,
                path: None,
                source,
            },
        }
    }

    pub(crate) fn from_rustix(syscall: &'static str, e: rustix::io::Errno) -> Self {
        Self::from_io(syscall, io::Error::from_raw_os_error(e.raw_os_error()))
    }
}

/// `EACCES: Permission denied` style text for warnings and the feature report.
pub(crate) fn errno_text(e: &io::Error) -> String {
    let Some(n) = e.raw_os_error() else {
        return e.to_string();
    };
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EBADF => "EBADF",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::ENODATA => "ENODATA",
        libc::EREMOTE => "EREMOTE",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ESTALE => "ESTALE",
        libc::ENOTCONN => "ENOTCONN",
        _ => return e.to_string(),
    };
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    format!("{name}: {text}")
}
