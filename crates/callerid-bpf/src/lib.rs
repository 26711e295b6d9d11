//! callerid-bpf: connect-time cgroup capture (DESIGN.md §5) — the real `SO_PEERCGROUP`.
//!
//! The socket `accept()` returns was allocated by the connecting task inside `connect()`,
//! so the kernel recorded the client's cgroup on it then. A `cgroup/getsockname_unix` BPF
//! program (Linux ≥ 6.7), attached at the cgroup2 root and acting only for this process,
//! copies that cgroup id into the socket's SK_STORAGE when we call `getsockname()` on it;
//! we then read it back with the socket fd as the key. The answer stays the connect-time
//! cgroup after the client moves, exits, or closes before `accept()`.
//!
//! The program is C (`bpf/capture.bpf.c`); the clang-built object is committed and
//! embedded, and loaded by a small loader here (raw `bpf(2)`, with the CO-RE field
//! offsets resolved against `/sys/kernel/btf/vmlinux`), so building needs no C toolchain.
//! The attachment is a BPF link held only by this process: it goes away when the
//! [`ConnectCapture`] is dropped or the process dies, however it dies. Nothing is pinned.
//!
//! ```no_run
//! use std::sync::Arc;
//! use callerid_bpf::ConnectCapture;
//!
//! let mut builder = callerid::Identifier::builder();
//! match ConnectCapture::load().and_then(|c| c.self_test().map(|_| c)) {
//!     Ok(capture) => builder = builder.connect_cgroup_source(Arc::new(capture)),
//!     Err(why) => eprintln!("connect-time cgroup capture off: {why}"),
//! }
//! let ident = builder.build()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod btf;
mod elf;
mod error;
mod loader;
mod probe;
#[allow(unsafe_code)]
mod sys;

pub use error::{Capability, CaptureError, ObjectError, Unavailable};
pub use probe::{Environment, probe};

use callerid::{CgroupId, ConnectCgroupSource};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The Linux attach type the program uses (`BPF_CGROUP_UNIX_GETSOCKNAME`), for callers that
/// query attachments themselves.
pub const ATTACH_TYPE: u32 = sys::ATTACH_CGROUP_UNIX_GETSOCKNAME;

/// Connect-time cgroup capture for this process: a loaded program, its map and the link
/// that keeps it attached. Dropping it detaches the program.
#[derive(Debug)]
pub struct ConnectCapture {
    map: OwnedFd,
    link: OwnedFd,
    cgroup2_root: PathBuf,
    tgid: u32,
}

impl ConnectCapture {
    /// Checks the environment ([`probe()`]), then loads the program for this process and
    /// attaches it at the cgroup2 root.
    ///
    /// The program acts for this process (all its threads) only: a child forked after
    /// loading has another tgid and gets no records, so load after daemonizing. Sockets
    /// accepted before loading still work — the kernel recorded their cgroup at
    /// `connect()` and the program reads it at the first lookup.
    pub fn load() -> Result<Self, CaptureError> {
        let env = probe()?;
        let tgid = std::process::id();
        let loaded = loader::load(&env.cgroup2_root, tgid)?;
        Ok(Self {
            map: loaded.map,
            link: loaded.link,
            cgroup2_root: env.cgroup2_root,
            tgid,
        })
    }

    /// The cgroup the peer of the accepted AF_UNIX socket `sock` was in when it called
    /// `connect()`. Calls `getsockname(sock)` (which runs the program) and looks the
    /// socket up. `Ok(None)` when nothing was recorded: a `socketpair()` end, an unbound
    /// socket, a non-unix socket.
    pub fn lookup(&self, sock: BorrowedFd<'_>) -> io::Result<Option<CgroupId>> {
        sys::getsockname_unix(sock)?;
        self.recorded(sock)
    }

    /// The cgroup id recorded for `sock` by an earlier `getsockname()` of this process,
    /// without calling `getsockname()` again.
    pub fn recorded(&self, sock: BorrowedFd<'_>) -> io::Result<Option<CgroupId>> {
        let found = sys::sk_storage_lookup(self.map.as_fd(), sock)?;
        Ok(found
            .map(|v| v.cgroup_id)
            .filter(|&id| id != 0)
            .map(CgroupId::new))
    }

    /// Checks end to end that capture works in this process: connects to a private
    /// abstract-namespace listener, accepts, and looks the accepted socket up; the answer
    /// must be this process's own cgroup. For `callerid doctor` and daemon start-up.
    pub fn self_test(&self) -> Result<CgroupId, CaptureError> {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
        let io = |op: &'static str| move |source| CaptureError::Syscall { op, source };
        let name = format!("callerid-bpf-self-test-{}-{:p}", self.tgid, self);
        let addr =
            SocketAddr::from_abstract_name(name.as_bytes()).map_err(io("self-test address"))?;
        let listener = UnixListener::bind_addr(&addr).map_err(io("self-test bind"))?;
        let _client = UnixStream::connect_addr(&addr).map_err(io("self-test connect"))?;
        let (conn, _) = listener.accept().map_err(io("self-test accept"))?;
        let got = self.lookup(conn.as_fd()).map_err(io("self-test lookup"))?;
        let own = own_cgroup(&self.cgroup2_root);
        match got {
            Some(id) if own.is_none_or(|own| own == id) => Ok(id),
            other => Err(CaptureError::SelfTest(format!(
                "the accepted socket's record is {other:?}, expected this thread's cgroup {own:?}"
            ))),
        }
    }

    /// Where the program is attached.
    pub fn cgroup2_root(&self) -> &Path {
        &self.cgroup2_root
    }

    /// The process id the program acts for.
    pub fn tgid(&self) -> u32 {
        self.tgid
    }

    /// The kernel's id of the loaded program (as listed by [`attached_programs`] and
    /// `bpftool cgroup show`).
    pub fn program_id(&self) -> Result<u32, CaptureError> {
        sys::link_ids(self.link.as_fd())
            .map(|(_, prog)| prog)
            .map_err(|source| CaptureError::Syscall {
                op: "BPF_OBJ_GET_INFO_BY_FD link",
                source,
            })
    }
}

impl ConnectCgroupSource for ConnectCapture {
    fn connect_cgroup(&self, sock: BorrowedFd<'_>) -> io::Result<Option<CgroupId>> {
        self.lookup(sock)
    }

    fn describe(&self) -> String {
        format!(
            "bpf cgroup/getsockname_unix linked at {} for pid {}",
            self.cgroup2_root.display(),
            self.tgid
        )
    }
}

/// This thread's cgroup2 id (the inode of its directory), when it can be found.
fn own_cgroup(root: &Path) -> Option<CgroupId> {
    use std::os::unix::fs::MetadataExt;
    let text = std::fs::read_to_string("/proc/thread-self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let meta = std::fs::metadata(root.join(rel.trim_start_matches('/'))).ok()?;
    Some(CgroupId::new(meta.ino()))
}

/// Ids of the BPF programs attached *directly* to the cgroup directory `cgroup` for the
/// `cgroup/getsockname_unix` hook (`BPF_PROG_QUERY`), e.g. to check nothing is left over.
pub fn attached_programs(cgroup: &Path) -> Result<Vec<u32>, CaptureError> {
    let dir = File::open(cgroup).map_err(|source| CaptureError::Read {
        path: cgroup.into(),
        source,
    })?;
    sys::prog_query(dir.as_fd(), ATTACH_TYPE).map_err(|source| CaptureError::Syscall {
        op: "BPF_PROG_QUERY",
        source,
    })
}
