//! Live connections of Unix sockets served on this host, and who is on the other end.
//!
//! [`peers_of_socket`] lists every connection accepted on the listening socket bound at
//! a path (or an abstract name); [`peers_of_pid`] lists every connected `AF_UNIX`
//! stream or seqpacket socket one process holds. Each comes with the [`Identity`] of
//! the process at the other end, exactly as the server itself would see it.
//!
//! # How, and why it is race-free
//! A pid read from `/proc` (or from `ss`) is never identified. Instead, for each server
//! process:
//! 1. `pidfd_open(pid)`, then `/proc/<pid>` is opened as a directory and checked
//!    against that pidfd (DESIGN.md §3 step 4), and its `fd/` directory is listed for
//!    `socket:[inode]` links;
//! 2. each such descriptor is copied into this process with `pidfd_getfd` on the
//!    pidfd — so it is the pidfd's process's descriptor even if the pid was reused;
//! 3. `fstat` on the copy must show the inode the link named (descriptors can be closed
//!    and reused between the listing and the copy); a mismatch is skipped;
//! 4. type, listening state and names come from the copy itself (`SO_TYPE`,
//!    `SO_ACCEPTCONN`, `getsockname`, `getpeername`), never from the listing;
//! 5. [`Identifier::identify`] runs on the copy: `SO_PEERCRED`/`SO_PEERPIDFD` on the
//!    server's side of the connection name the client as of its `connect()`.
//!
//! The copy is closed as soon as it was identified: while we hold it the connection
//! cannot close, even if its server closes its own descriptor.
//!
//! # Privilege
//! `pidfd_getfd` needs ptrace *attach* permission over the server (root with
//! `CAP_SYS_PTRACE`, or the same user with a dumpable server); listing `/proc/<pid>/fd`
//! needs the same user or `CAP_SYS_PTRACE`. Without it the answer is
//! [`PeersError::NotPermitted`], never a partial guess.
//!
//! # Side effect
//! Receiving a socket descriptor (which `pidfd_getfd` does) makes the kernel set the
//! socket's `net_cls` class id and `net_prio` index to the *caller's* (cgroup v1
//! controllers). Both are meaningless for `AF_UNIX`; the socket's cgroup v2 pointer,
//! which connect-time cgroup capture reads, is not touched.
//!
//! # Names and namespaces
//! A socket bound with a relative path reports that relative path from `getsockname`;
//! such a socket matches [`SocketName::Path`] only when given the same spelling.
//! Paths are per mount namespace, so [`peers_of_socket`] compares socket *files*
//! where it can (see there). An accepted socket belongs to its **client's** network
//! namespace, not its server's: `/proc/net/unix`, `ss -x` and `sock_diag` in the
//! server's namespace do not show it. `/proc/self/net/unix` serves here only to pass
//! over sockets without copying them; a socket it does not show is copied and checked.

use crate::error::Error;
use crate::identifier::Identifier;
use crate::identity::Identity;
use crate::ids::Pid;
use crate::sys;
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
use rustix::process::{PidfdFlags, PidfdGetfdFlags};
use serde::Serialize;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Which side of a connection the server-side descriptor is.
///
/// The kernel records no such thing; it is read from the names. An accepted socket
/// carries its listener's name and the client's (usually none); a connected one has no
/// name of its own (unless it bound one) and the listener's as its peer's. When both
/// ends are named, the socket counts as accepted only if the process listens on its
/// name — so a connection handed over from another process (`SCM_RIGHTS`, systemd
/// `Accept=yes`) whose client bound a name reads as `Connected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SocketRole {
    /// Returned by `accept()` on one of the process's listening sockets: the peer is a
    /// client.
    Accepted,
    /// Made by `connect()` from this process: the peer is the server that listened.
    Connected,
    /// One end of a `socketpair()`: neither end has a name.
    Socketpair,
}

impl std::fmt::Display for SocketRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Accepted => "accepted",
            Self::Connected => "connected",
            Self::Socketpair => "socketpair",
        })
    }
}

/// The name of a Unix socket: a filesystem path or an abstract name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SocketName {
    /// A path in the filesystem, as given to `bind()`.
    Path(PathBuf),
    /// An abstract name (without the leading NUL byte).
    Abstract(Vec<u8>),
}

impl SocketName {
    /// Reads the command-line spelling: `@name` is abstract, anything else a path.
    pub fn parse(text: &OsStr) -> Self {
        match text.as_bytes().strip_prefix(b"@") {
            Some(name) => Self::Abstract(name.to_vec()),
            None => Self::Path(PathBuf::from(text)),
        }
    }

    fn from_addr(addr: &SocketAddrUnix) -> Option<Self> {
        // An empty abstract name is how an unnamed peer comes back from getpeername.
        if let Some(name) = addr.abstract_name() {
            return (!name.is_empty()).then(|| Self::Abstract(name.to_vec()));
        }
        addr.path_bytes()
            .filter(|p| !p.is_empty())
            .map(|p| Self::Path(PathBuf::from(OsStr::from_bytes(p))))
    }
}

impl std::fmt::Display for SocketName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(p) => write!(f, "{}", p.display()),
            Self::Abstract(n) => write!(f, "@{}", String::from_utf8_lossy(n)),
        }
    }
}

impl Serialize for SocketName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The server-side descriptor of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerSocket {
    /// The process holding the descriptor (as seen from our pid namespace).
    pub pid: Pid,
    /// The descriptor number in that process.
    pub fd: RawFd,
    /// The socket's inode (`socket:[inode]`, the `Inode` column of `/proc/net/unix`).
    pub inode: u64,
    /// The name of the listening socket the connection went through: our own name for
    /// an accepted socket, the peer's for a connected one; `None` for a socketpair (or
    /// a connection to an unnamed socket).
    pub path: Option<SocketName>,
    /// Which side this descriptor is.
    pub role: SocketRole,
    /// The peer has closed its end (`POLLHUP`): the connection lingers only until this
    /// process closes its descriptor.
    pub peer_closed: bool,
}

/// One live connection: the server's descriptor and the identity of its peer.
#[derive(Debug)]
pub struct Connection {
    /// The server side.
    pub server: ServerSocket,
    /// The peer, or why it could not be identified.
    pub identity: Result<Identity, Error>,
}

/// The result of a host-wide scan: the connections found and the processes that could
/// not be looked into.
#[derive(Debug, Default)]
pub struct Scan {
    /// The connections, ordered by server pid and descriptor.
    pub connections: Vec<Connection>,
    /// Processes skipped because we may not inspect them (their connections, if any,
    /// are missing from [`Scan::connections`]).
    pub not_permitted: Vec<PeersError>,
}

/// Why listing connections failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeersError {
    /// We may not look into the process's descriptors: `pidfd_getfd` needs ptrace attach
    /// permission (root, or the server's own user), listing `/proc/<pid>/fd` the same.
    #[error(
        "{syscall} {path}: not permitted (inspecting another process's sockets needs root or the same user)"
    )]
    NotPermitted {
        /// The process.
        pid: Pid,
        /// The call refused.
        syscall: &'static str,
        /// The path involved (`/proc/<pid>/fd`, or `pidfd of <pid>`).
        path: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// No such process (or it exited while we looked).
    #[error("{syscall} {path}: no such process")]
    NoSuchProcess {
        /// The process.
        pid: Pid,
        /// The call that found out.
        syscall: &'static str,
        /// The path involved.
        path: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// Any other failure.
    #[error("{syscall} {path}")]
    Io {
        /// The call that failed.
        syscall: &'static str,
        /// The path involved.
        path: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
}

impl PeersError {
    fn new(pid: Pid, syscall: &'static str, path: String, e: Errno) -> Self {
        let source = io::Error::from_raw_os_error(e.raw_os_error());
        match e {
            Errno::PERM | Errno::ACCESS => Self::NotPermitted {
                pid,
                syscall,
                path,
                source,
            },
            Errno::SRCH | Errno::NOENT => Self::NoSuchProcess {
                pid,
                syscall,
                path,
                source,
            },
            _ => Self::Io {
                syscall,
                path,
                source,
            },
        }
    }
}

/// Every connected `AF_UNIX` stream/seqpacket socket process `pid` holds — accepted,
/// connected out, and socketpair ends — with the identity of each peer.
///
/// Fails as a whole when the process cannot be inspected ([`PeersError::NotPermitted`],
/// [`PeersError::NoSuchProcess`]); a connection whose peer cannot be identified is
/// listed with the identification error.
pub fn peers_of_pid(ident: &Identifier, pid: u32) -> Result<Vec<Connection>, PeersError> {
    let sockets = scan_process(ident, pid, &mut All)?;
    let listening: Vec<&SocketName> = sockets.listening.iter().collect();
    Ok(sockets
        .connected
        .into_iter()
        .map(|s| {
            let role = match (&s.local, &s.remote) {
                (None, None) => SocketRole::Socketpair,
                (None, Some(_)) => SocketRole::Connected,
                (Some(_), None) => SocketRole::Accepted,
                // A client that bound its own name before connecting: accepted only if
                // the name is one this process listens on.
                (Some(l), Some(_)) if listening.contains(&l) => SocketRole::Accepted,
                (Some(_), Some(_)) => SocketRole::Connected,
            };
            let path = match role {
                SocketRole::Accepted => s.local,
                SocketRole::Connected => s.remote,
                SocketRole::Socketpair => None,
            };
            s.found.into_connection(sockets.pid, path, role)
        })
        .collect())
}

/// Every connection accepted on the listening socket named `name`, in every process
/// of the host we may inspect, with the identity of each peer (the client).
///
/// A server-side socket matches when it is not listening and its own name
/// (`getsockname`) names the same socket:
/// - for a path that exists here: the server's name, resolved inside the server's own
///   root and mount namespace (`/proc/<pid>/root`, `RESOLVE_IN_ROOT`), is the same file
///   (device and inode) — so a server in a container that bound the socket under
///   another path is found, and one that bound the same spelling in another mount
///   namespace is not mistaken for it;
/// - for a path that does not exist here (e.g. unlinked while its server still
///   serves), a relative name, or an abstract name: the name is equal (for a path, as
///   given or in its canonical form).
///
/// One case remains ambiguous: if the file was unlinked and another server bound the
/// same path since, connections of the first still resolve to the new file. The kernel
/// exposes a socket's bound inode only through `sock_diag` (`UNIX_DIAG_VFS`), which
/// answers per network namespace — and an accepted socket lives in its *client's*.
///
/// Processes we may not inspect are reported in [`Scan::not_permitted`]; processes that
/// exit during the scan are left out.
pub fn peers_of_socket(ident: &Identifier, name: &SocketName) -> Result<Scan, PeersError> {
    let mut select = ByName::new(name);
    let entries = std::fs::read_dir("/proc").map_err(|source| PeersError::Io {
        syscall: "readdir",
        path: "/proc".to_owned(),
        source,
    })?;
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let mut scan = Scan::default();
    for pid in pids {
        select.resolved.clear();
        let sockets = match scan_process(ident, pid, &mut select) {
            Ok(s) => s,
            Err(e @ PeersError::NotPermitted { .. }) => {
                scan.not_permitted.push(e);
                continue;
            }
            // Exited, or gone in some other way while we looked: nothing to list.
            Err(_) => continue,
        };
        for s in sockets.connected {
            scan.connections.push(s.found.into_connection(
                sockets.pid,
                s.local,
                SocketRole::Accepted,
            ));
        }
    }
    Ok(scan)
}

/// Which sockets of a process [`scan_process`] copies and identifies.
trait Select {
    /// Before copying: `false` when the socket is surely not wanted.
    fn worth_copying(&mut self, inode: u64, proc_dir: BorrowedFd<'_>) -> bool;
    /// After copying, for a connected socket: whether its own name is wanted.
    fn wanted(&mut self, local: &Option<SocketName>, proc_dir: BorrowedFd<'_>) -> bool;
}

/// Every socket.
struct All;

impl Select for All {
    fn worth_copying(&mut self, _: u64, _: BorrowedFd<'_>) -> bool {
        true
    }
    fn wanted(&mut self, _: &Option<SocketName>, _: BorrowedFd<'_>) -> bool {
        true
    }
}

/// Sockets whose own name is the wanted socket (see [`peers_of_socket`]).
struct ByName {
    /// The name as given, and in canonical form.
    names: Vec<SocketName>,
    /// `(st_dev, st_ino)` of the socket file, when the name is a path to one here.
    file: Option<(u64, u64)>,
    /// Names of sockets of our network namespace by inode, from `/proc/net/unix`:
    /// lets most sockets be passed over without copying them.
    listed: std::collections::HashMap<u64, Listed>,
    /// Per process: absolute names already resolved in its root, and the answer.
    resolved: Vec<(PathBuf, bool)>,
}

impl ByName {
    fn new(name: &SocketName) -> Self {
        let mut names = vec![name.clone()];
        let mut file = None;
        if let SocketName::Path(p) = name {
            if let Ok(c) = std::fs::canonicalize(p)
                && c != *p
            {
                names.push(SocketName::Path(c));
            }
            file = rustix::fs::stat(p)
                .ok()
                .filter(|st| FileType::from_raw_mode(st.st_mode) == FileType::Socket)
                .map(|st| (st.st_dev, st.st_ino));
        }
        // A listing we cannot read (or a name it cannot show on one line) only means
        // every socket gets copied and checked.
        let newline =
            matches!(name, SocketName::Path(p) if p.as_os_str().as_bytes().contains(&b'\n'));
        let listed = if newline {
            Default::default()
        } else {
            std::fs::read("/proc/self/net/unix")
                .map(|t| parse_net_unix(&t))
                .unwrap_or_default()
        };
        Self {
            names,
            file,
            listed,
            resolved: Vec::new(),
        }
    }

    fn name_matches(&mut self, local: &SocketName, proc_dir: BorrowedFd<'_>) -> bool {
        match (local, self.file) {
            (SocketName::Path(l), Some(f)) if l.is_absolute() => {
                if let Some((_, same)) = self.resolved.iter().find(|(p, _)| p == l) {
                    return *same;
                }
                let same = file_in_root(proc_dir, l) == Some(f);
                self.resolved.push((l.clone(), same));
                same
            }
            (l, _) => self.names.contains(l),
        }
    }
}

impl Select for ByName {
    fn worth_copying(&mut self, inode: u64, proc_dir: BorrowedFd<'_>) -> bool {
        match self.listed.get(&inode) {
            // In another network namespace (or listed twice: see `parse_net_unix`).
            None | Some(Listed::Unsure) => true,
            // Accepted sockets always carry their listener's name.
            Some(Listed::Unnamed) => false,
            Some(Listed::Path(p)) => {
                let p = SocketName::Path(p.clone());
                self.name_matches(&p, proc_dir)
            }
        }
    }

    fn wanted(&mut self, local: &Option<SocketName>, proc_dir: BorrowedFd<'_>) -> bool {
        local
            .as_ref()
            .is_some_and(|l| self.name_matches(l, proc_dir))
    }
}

/// What `/proc/net/unix` says of a socket's own name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Listed {
    /// No name.
    Unnamed,
    /// An absolute path.
    Path(PathBuf),
    /// An abstract name or a relative path (both may start with `@` there), or an
    /// inode that appears on more than one line.
    Unsure,
}

/// Socket names by inode from `/proc/net/unix` text. Lines that do not parse are
/// skipped. A path may contain a newline and so forge a line; since the kernel's own
/// line for an inode is always there, an inode seen twice is [`Listed::Unsure`], and a
/// forged line can only make a socket be copied and checked, never passed over.
fn parse_net_unix(text: &[u8]) -> std::collections::HashMap<u64, Listed> {
    use std::collections::hash_map::Entry;
    let mut out = std::collections::HashMap::new();
    for line in text.split(|&b| b == b'\n').skip(1) {
        let Some((inode, listed)) = parse_net_unix_line(line) else {
            continue;
        };
        match out.entry(inode) {
            Entry::Vacant(v) => {
                v.insert(listed);
            }
            Entry::Occupied(mut o) => {
                o.insert(Listed::Unsure);
            }
        }
    }
    out
}

/// `Num: RefCount Protocol Flags Type St Inode [Path]`, fields separated by spaces
/// (the inode is padded), the path after a single space and to the end of the line.
fn parse_net_unix_line(line: &[u8]) -> Option<(u64, Listed)> {
    let mut rest = line;
    let mut inode = None;
    for i in 0..7 {
        let start = rest.iter().position(|&b| b != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let field = &rest[..end];
        rest = &rest[end..];
        if i == 6 {
            if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
                return None;
            }
            inode = std::str::from_utf8(field).ok()?.parse().ok();
        }
    }
    let inode = inode?;
    let listed = match rest {
        [] => Listed::Unnamed,
        [b' ', path @ ..] if path.first() == Some(&b'/') => {
            Listed::Path(PathBuf::from(OsStr::from_bytes(path)))
        }
        [b' ', _, ..] => Listed::Unsure,
        _ => return None,
    };
    Some((inode, listed))
}

/// `(st_dev, st_ino)` of the socket file at absolute `path` as the process whose
/// verified `/proc/<pid>` directory is `proc_dir` sees it: resolved inside its root,
/// so its symlinks cannot point into ours.
fn file_in_root(proc_dir: BorrowedFd<'_>, path: &std::path::Path) -> Option<(u64, u64)> {
    let root = rustix::fs::openat(
        proc_dir,
        "root",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let rel = path.strip_prefix("/").ok()?;
    let fd = rustix::fs::openat2(
        &root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::Socket).then_some((st.st_dev, st.st_ino))
}

/// A connected socket of a server process, already identified (the copy is closed).
struct Found {
    fd: RawFd,
    inode: u64,
    peer_closed: bool,
    identity: Result<Identity, Error>,
}

impl Found {
    fn into_connection(self, pid: Pid, path: Option<SocketName>, role: SocketRole) -> Connection {
        Connection {
            server: ServerSocket {
                pid,
                fd: self.fd,
                inode: self.inode,
                path,
                role,
                peer_closed: self.peer_closed,
            },
            identity: self.identity,
        }
    }
}

/// A connected socket and its names.
struct ConnectedSocket {
    local: Option<SocketName>,
    remote: Option<SocketName>,
    found: Found,
}

/// What one process holds: its connected sockets (identified) and the names it listens
/// on.
struct ProcessSockets {
    pid: Pid,
    connected: Vec<ConnectedSocket>,
    listening: Vec<SocketName>,
}

/// Copies each Unix stream/seqpacket socket of process `raw_pid` that `select` finds
/// worth copying into ours, one at a time, and identifies the peer of each connected
/// one whose own name it wants.
/// Each copy is closed before the next is made: a busy server's thousands of
/// connections never need thousands of our descriptors, and no connection is held
/// open by us for longer than its identification.
fn scan_process(
    ident: &Identifier,
    raw_pid: u32,
    select: &mut impl Select,
) -> Result<ProcessSockets, PeersError> {
    let pid = Pid::new(raw_pid);
    let pidfd_path = || format!("pidfd of {raw_pid}");
    let fd_dir_path = || format!("/proc/{raw_pid}/fd");
    let rpid = i32::try_from(raw_pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| PeersError::new(pid, "pidfd_open", pidfd_path(), Errno::SRCH))?;
    let pidfd = rustix::process::pidfd_open(rpid, PidfdFlags::empty())
        .map_err(|e| PeersError::new(pid, "pidfd_open", pidfd_path(), e))?;
    let proc_dir = rustix::fs::open(
        format!("/proc/{raw_pid}"),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| PeersError::new(pid, "open", format!("/proc/{raw_pid}"), e))?;
    // The directory is the pidfd's process only if that process was still alive (or a
    // zombie) after the open: a pid cannot be reused before its process is reaped.
    match sys::pidfd::pidfd_signal_zero(pidfd.as_fd()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        Err(e) => {
            return Err(PeersError::new(
                pid,
                "pidfd_send_signal",
                pidfd_path(),
                Errno::from_io_error(&e).unwrap_or(Errno::SRCH),
            ));
        }
    }
    let fd_dir = rustix::fs::openat(
        &proc_dir,
        "fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| PeersError::new(pid, "open", fd_dir_path(), e))?;
    let links = list_socket_links(&fd_dir)
        .map_err(|e| PeersError::new(pid, "readdir", fd_dir_path(), e))?;

    let mut out = ProcessSockets {
        pid,
        connected: Vec::new(),
        listening: Vec::new(),
    };
    for (fd, inode) in links {
        if !select.worth_copying(inode, proc_dir.as_fd()) {
            continue;
        }
        let sock = match rustix::process::pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()) {
            Ok(s) => s,
            // Closed since we listed it.
            Err(Errno::BADF) => continue,
            Err(e) => return Err(PeersError::new(pid, "pidfd_getfd", pidfd_path(), e)),
        };
        match inspect(inode, &sock) {
            None => {}
            Some(Inspected::Listening(Some(name))) => out.listening.push(name),
            Some(Inspected::Listening(None)) => {}
            Some(Inspected::Connected { local, remote }) => {
                if !select.wanted(&local, proc_dir.as_fd()) {
                    continue;
                }
                let found = Found {
                    fd,
                    inode,
                    peer_closed: hung_up(&sock),
                    identity: ident.identify(&sock),
                };
                out.connected.push(ConnectedSocket {
                    local,
                    remote,
                    found,
                });
            }
        }
    }
    out.connected.sort_by_key(|c| c.found.fd);
    Ok(out)
}

enum Inspected {
    Connected {
        local: Option<SocketName>,
        remote: Option<SocketName>,
    },
    Listening(Option<SocketName>),
}

/// Checks the copy is the socket the listing named (`inode`) and an `AF_UNIX`
/// stream/seqpacket one, and reads its names. `None` for anything else.
fn inspect(inode: u64, sock: &OwnedFd) -> Option<Inspected> {
    let st = rustix::fs::fstat(sock).ok()?;
    // The number may have been closed and reused for another file since the listing.
    if st.st_ino != inode || FileType::from_raw_mode(st.st_mode) != FileType::Socket {
        return None;
    }
    if rustix::net::sockopt::socket_domain(sock).ok()? != AddressFamily::UNIX {
        return None;
    }
    let ty = rustix::net::sockopt::socket_type(sock).ok()?;
    if ty != SocketType::STREAM && ty != SocketType::SEQPACKET {
        return None;
    }
    let local = rustix::net::getsockname(sock)
        .ok()
        .and_then(|a| SocketAddrUnix::try_from(a).ok())
        .and_then(|a| SocketName::from_addr(&a));
    if rustix::net::sockopt::socket_acceptconn(sock).ok()? {
        return Some(Inspected::Listening(local));
    }
    // Not connected (never was, or a connect() still in progress) → no peer.
    let remote = rustix::net::getpeername(sock).ok()??;
    let remote = SocketAddrUnix::try_from(remote)
        .ok()
        .and_then(|a| SocketName::from_addr(&a));
    Some(Inspected::Connected { local, remote })
}

/// `true` when the peer has closed its end.
fn hung_up(sock: &OwnedFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        sock,
        rustix::event::PollFlags::RDHUP,
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .intersects(rustix::event::PollFlags::HUP | rustix::event::PollFlags::RDHUP)
}

/// `(fd, inode)` of every `socket:[inode]` entry of a `/proc/<pid>/fd` directory.
fn list_socket_links(fd_dir: &OwnedFd) -> Result<Vec<(RawFd, u64)>, Errno> {
    let dup = rustix::io::fcntl_dupfd_cloexec(fd_dir, 0)?;
    let mut dir = rustix::fs::Dir::new(dup)?;
    let mut out = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .ok()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // Closed since the directory was read: skip.
        let Ok(target) = rustix::fs::readlinkat(fd_dir, entry.file_name(), Vec::new()) else {
            continue;
        };
        if let Some(inode) = parse_socket_link(target.as_bytes()) {
            out.push((fd, inode));
        }
    }
    Ok(out)
}

/// The inode of a `socket:[12345]` link target.
fn parse_socket_link(target: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(parse_socket_link(b"socket:[]"), None);
        assert_eq!(parse_socket_link(b"socket:[-1]"), None);
        assert_eq!(parse_socket_link(b"socket:[+1]"), None);
        assert_eq!(parse_socket_link(b"pipe:[12345]"), None);
        assert_eq!(parse_socket_link(b"/tmp/socket:[1]"), None);
        assert_eq!(parse_socket_link(b"socket:[99999999999999999999999]"), None);
    }

    #[test]
    fn names() {
        assert_eq!(
            SocketName::parse(OsStr::new("@abs")),
            SocketName::Abstract(b"abs".to_vec())
        );
        assert_eq!(
            SocketName::parse(OsStr::new("/run/x.sock")),
            SocketName::Path("/run/x.sock".into())
        );
        assert_eq!(SocketName::Abstract(b"a".to_vec()).to_string(), "@a");
    }

    #[test]
    fn inspect_checks_the_inode() {
        use std::os::unix::net::UnixStream;
        let (a, _b) = UnixStream::pair().unwrap();
        let a = OwnedFd::from(a);
        let ino = rustix::fs::fstat(&a).unwrap().st_ino;
        assert!(matches!(
            inspect(ino, &a),
            Some(Inspected::Connected {
                local: None,
                remote: None
            })
        ));
        // The descriptor number was reused for another socket since the listing.
        assert!(inspect(ino + 1, &a).is_none());
        // Not a Unix socket / not a socket at all.
        let udp = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None).unwrap();
        let udp_ino = rustix::fs::fstat(&udp).unwrap().st_ino;
        assert!(inspect(udp_ino, &udp).is_none());
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let r_ino = rustix::fs::fstat(&r).unwrap().st_ino;
        assert!(inspect(r_ino, &r).is_none());
    }

    #[test]
    fn net_unix_lines() {
        let text = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/x.sock\n\
0000000000000000: 00000003 00000000 00000000 0001 03   678\n\
0000000000000000: 00000002 00000000 00010000 0005 01 9001 @abstract\n\
0000000000000000: 00000002 00000000 00000000 0001 03 4242 /tmp/a b\n\
garbage\n";
        let m = parse_net_unix(text);
        assert_eq!(m.get(&12345), Some(&Listed::Path("/run/x.sock".into())));
        assert_eq!(m.get(&678), Some(&Listed::Unnamed));
        assert_eq!(m.get(&9001), Some(&Listed::Unsure));
        assert_eq!(m.get(&4242), Some(&Listed::Path("/tmp/a b".into())));
        assert_eq!(m.len(), 4);
        // A path with a newline forging a second line for inode 678.
        let forged = b"header\n\
0000000000000000: 00000002 00000000 00000000 0001 03 555 /tmp/x\n\
0000000000000000: 00000002 00000000 00000000 0001 03 678 /run/wanted.sock\n\
0000000000000000: 00000003 00000000 00000000 0001 03   678\n";
        assert_eq!(parse_net_unix(forged).get(&678), Some(&Listed::Unsure));
    }

    proptest! {
        #[test]
        fn net_unix_never_panics(b: Vec<u8>) {
            let _ = parse_net_unix(&b);
        }

        #[test]
        fn net_unix_line_round_trip(inode: u64, path in "/[a-z0-9 ./]{0,40}") {
            let line = format!("0000000000000000: 00000002 00000000 00000000 0001 03 {inode:5} {path}");
            prop_assert_eq!(
                parse_net_unix_line(line.as_bytes()),
                Some((inode, Listed::Path(PathBuf::from(&path))))
            );
        }

        #[test]
        fn socket_link_round_trip(n: u64) {
            prop_assert_eq!(parse_socket_link(format!("socket:[{n}]").as_bytes()), Some(n));
        }

        #[test]
        fn socket_link_never_panics(b: Vec<u8>) {
            let _ = parse_socket_link(&b);
        }
    }
}
