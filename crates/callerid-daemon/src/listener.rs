//! Listening sockets: bound by us (mode, owner, stale-socket cleanup) or inherited
//! through socket activation.

use crate::error::Error;
use crate::owner::Owner;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};

/// How a listener got its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Bound by us at this path; removed again at shutdown.
    Bound(PathBuf),
    /// Passed by the service manager under this `FileDescriptorName=`.
    Activated(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bound(p) => write!(f, "{}", p.display()),
            Self::Activated(n) => write!(f, "socket-activated fd {n:?}"),
        }
    }
}

/// Binds `path` as a listening socket with `mode` and `owner` applied *before* it is
/// visible at `path` (bound under a temporary name, then renamed), so no client ever
/// sees it with looser permissions. A stale socket at `path` (nothing accepts on it)
/// is removed; a live one or a non-socket is an error.
pub(crate) fn bind(
    listener: &str,
    path: &Path,
    mode: Option<u32>,
    owner: Option<Owner>,
) -> Result<StdUnixListener, Error> {
    let err = |what: &'static str, source: std::io::Error| Error::Listen {
        listener: listener.to_string(),
        what,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|e| err("create directory for", e))?;
        // Only the daemon's own user manages its socket directory.
        let _ = rustix::fs::chmod(dir, rustix::fs::Mode::from_raw_mode(0o755));
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(Error::InUse {
                        listener: listener.to_string(),
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(|e| err("remove stale socket", e))?;
                }
                Err(e) => return Err(err("probe existing socket", e)),
            }
        }
        Ok(_) => {
            return Err(Error::NotASocket {
                listener: listener.to_string(),
                path: path.to_path_buf(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err("stat", e)),
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let sock = StdUnixListener::bind(&tmp).map_err(|e| err("bind", e))?;
    let finish = || -> Result<(), Error> {
        if let Some(mode) = mode {
            rustix::fs::chmod(&tmp, rustix::fs::Mode::from_raw_mode(mode))
                .map_err(|e| err("chmod", e.into()))?;
        }
        if let Some(o) = owner {
            rustix::fs::chown(
                &tmp,
                o.uid.map(rustix::fs::Uid::from_raw),
                o.gid.map(rustix::fs::Gid::from_raw),
            )
            .map_err(|e| err("chown", e.into()))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| err("rename into place", e))
    };
    if let Err(e) = finish() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sock.set_nonblocking(true)
        .map_err(|e| err("set non-blocking", e))?;
    Ok(sock)
}

/// Wraps an inherited listening socket.
pub(crate) fn from_inherited(fd: OwnedFd) -> Result<StdUnixListener, Error> {
    let sock = StdUnixListener::from(fd);
    sock.set_nonblocking(true).map_err(|source| Error::Io {
        what: "set inherited socket non-blocking",
        source,
    })?;
    Ok(sock)
}

/// The inode of the socket file we put at `path`, to recognise it at shutdown.
pub(crate) fn path_inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| m.ino())
}

/// Removes our socket file at shutdown, but only if it is still the one we bound
/// (a successor may already have replaced it).
pub(crate) fn unlink_if_ours(path: &Path, ino: Option<u64>) {
    if ino.is_some() && path_inode(path) == ino {
        let _ = std::fs::remove_file(path);
    }
}
