//! [`Identifier`]: probes the kernel once, owns the caches, turns a socket into an
//! [`Identity`].

use crate::error::{Error, Result};
use crate::identity::Identity;
use std::os::fd::AsFd;

/// Turns accepted Unix sockets (or pids) into [`Identity`] records.
#[derive(Debug)]
pub struct Identifier {
    _private: (),
}

impl Identifier {
    /// Probes kernel features and finds the cgroup2 mount.
    pub fn new() -> Result<Self> {
        Ok(Self { _private: () })
    }

    /// Identifies the peer of an accepted `AF_UNIX` stream or seqpacket socket.
    pub fn identify(&self, sock: &impl AsFd) -> Result<Identity> {
        let _ = sock.as_fd();
        Err(Error::Unsupported { syscall: "identify", source: std::io::Error::from(std::io::ErrorKind::Unsupported) })
    }

    /// Identifies a process by pid (no connect-time facts: there is no socket).
    pub fn identify_pid(&self, pid: crate::ids::Pid) -> Result<Identity> {
        let _ = pid;
        Err(Error::Unsupported {
            syscall: "identify_pid",
            source: std::io::Error::from(std::io::ErrorKind::Unsupported),
        })
    }
}
