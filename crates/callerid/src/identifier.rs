//! [`Identifier`]: probes the kernel once, owns the caches, turns a socket (or a pid)
//! into an [`Identity`].

use crate::cache::GenCache;
use crate::cgroup::{Cgroup2, parse_proc_cgroup_v2};
use crate::connect_cgroup::ConnectCgroupSource;
use crate::error::errno_text;
use crate::error::{Error, Result, WrongSocketKind};
use crate::features::{Feature, FeatureStatus, Features, probe};
use crate::identity::{
    Cgroup, CgroupAt, CgroupRef, Drift, DriftKind, IDENTITY_VERSION, IdMapLine, Identity,
    Namespaces, Part, Peer, PidfdSource, Process, ProcessState, Provenance, ProvenanceMap,
    UserNamespace, Warning, WarningCode,
};
use crate::ids::{CgroupId, Gid, NsGid, NsInode, NsUid, Pid, PidfsId, Uid};
use crate::process::{ProcDir, Status, parse_status};
use crate::sys;
use crate::sys::pidfd::{InfoCreds, NsKind};
use crate::sys::uapi;
use crate::userns::{is_identity_map, parse_id_map, to_inside};
use crate::workload::Workload;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// Which optional parts of the [`Identity`] to collect.
///
/// `peer` and `cgroup` are always collected (kernel calls only). Each optional part
/// not collected is `null` with provenance `not_collected`, never guessed. The daemon
/// derives this from what its policy and outputs use; [`Parts::ALL`] is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Parts {
    /// `process` (pidfs id, pid, ppid, creds now, state): kernel calls only.
    pub process: bool,
    /// `process.comm`: one verified `/proc` read per identification.
    pub comm: bool,
    /// `process.exe`: one verified `/proc` readlink per identification.
    pub exe: bool,
    /// `namespaces`: verified `/proc/<pid>/ns` readlinks (one syscall each), or pidfd
    /// ioctls when only one is wanted or `/proc` cannot be used.
    pub namespaces: bool,
    /// `user_namespace`: the user namespace inode, plus `uid_map`/`gid_map` reads on a
    /// cache miss.
    pub user_namespace: bool,
    /// `workload`: the classifier over the cgroup path (cached per cgroup id).
    pub workload: bool,
}

impl Parts {
    /// Everything.
    pub const ALL: Parts = Parts {
        process: true,
        comm: true,
        exe: true,
        namespaces: true,
        user_namespace: true,
        workload: true,
    };
    /// Only what needs no `/proc` text read on a warm cache: peer, process (without
    /// comm and exe), cgroup, workload.
    pub const KERNEL_ONLY: Parts = Parts {
        process: true,
        comm: false,
        exe: false,
        namespaces: false,
        user_namespace: false,
        workload: true,
    };
    /// Only `peer` and `cgroup`.
    pub const MINIMAL: Parts = Parts {
        process: false,
        comm: false,
        exe: false,
        namespaces: false,
        user_namespace: false,
        workload: false,
    };
}

impl Default for Parts {
    fn default() -> Self {
        Self::ALL
    }
}

/// Builds an [`Identifier`]: parts to collect, features to switch off, cache sizes and
/// an optional connect-time cgroup source.
#[derive(Debug, Clone)]
pub struct IdentifierBuilder {
    parts: Parts,
    disabled: Vec<Feature>,
    cgroup_cache: usize,
    userns_cache: usize,
    process_cache: usize,
    source: Option<Arc<dyn ConnectCgroupSource>>,
}

impl Default for IdentifierBuilder {
    fn default() -> Self {
        Self {
            parts: Parts::ALL,
            disabled: Vec::new(),
            cgroup_cache: 4096,
            userns_cache: 1024,
            process_cache: 4096,
            source: None,
        }
    }
}

impl IdentifierBuilder {
    /// Which optional parts to collect (default [`Parts::ALL`]).
    pub fn parts(mut self, parts: Parts) -> Self {
        self.parts = parts;
        self
    }

    /// Do not use `feature` even if the kernel has it: the fallback is taken, and
    /// provenance and warnings say so. Meant for tests and for distrusting a feature.
    pub fn disable(mut self, feature: Feature) -> Self {
        if !self.disabled.contains(&feature) {
            self.disabled.push(feature);
        }
        self
    }

    /// Maximum entries of the cgroup id → (path, workload) cache (default 4096; 0 turns
    /// it off).
    pub fn cgroup_cache_size(mut self, entries: usize) -> Self {
        self.cgroup_cache = entries;
        self
    }

    /// Maximum entries of the user namespace → (uid_map, gid_map) cache (default 1024;
    /// 0 turns it off).
    pub fn userns_cache_size(mut self, entries: usize) -> Self {
        self.userns_cache = entries;
        self
    }

    /// Maximum entries of the per-process cache keyed by pidfs id (default 4096; 0 turns
    /// it off). It holds only what cannot change during a process's life: its pid
    /// namespace.
    pub fn process_cache_size(mut self, entries: usize) -> Self {
        self.process_cache = entries;
        self
    }

    /// Where the connect-time cgroup comes from (e.g. `callerid-bpf`). With a source,
    /// `cgroup` is the connect-time one and `drift` compares it with now.
    pub fn connect_cgroup_source(mut self, source: Arc<dyn ConnectCgroupSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Probes the kernel and builds the identifier.
    pub fn build(self) -> Result<Identifier> {
        let probed = probe();
        let mut features = probed.features;
        for &f in &self.disabled {
            features.disable(f);
        }
        if let Some(src) = &self.source {
            features.connect_cgroup = FeatureStatus {
                available: true,
                disabled: false,
                detail: src.describe(),
                fallback: Some(
                    "sockets the source has no record of: cgroup at identification time".to_owned(),
                ),
            };
        }
        Ok(Identifier {
            parts: self.parts,
            peerpidfd: features.so_peerpidfd.in_use(),
            get_info: features.pidfd_get_info.in_use(),
            handles: features.open_by_handle_at.in_use(),
            ns_ioctls: features.pidfd_namespace_ioctls.in_use(),
            pidfs: features.pidfs.in_use(),
            procfs: features.procfs.in_use(),
            cgroup2: probed.cgroup2,
            cgroups: RwLock::new(GenCache::new(self.cgroup_cache)),
            userns: Mutex::new(GenCache::new(self.userns_cache)),
            pidns: RwLock::new(GenCache::new(self.process_cache)),
            source: self.source,
            features,
        })
    }
}

#[derive(Debug)]
struct CgroupEntry {
    path: Option<String>,
    workload: Option<Workload<'static>>,
}

#[derive(Debug)]
struct UsernsEntry {
    uid_map: Vec<IdMapLine>,
    gid_map: Vec<IdMapLine>,
}

/// Turns accepted Unix sockets (or pids) into [`Identity`] records.
///
/// Probes kernel features once (see [`Identifier::features`]), finds the cgroup2 mount,
/// and owns bounded caches (cgroup id → path and workload; user namespace → id maps).
/// `Send + Sync`: share one per process behind an `Arc`.
///
/// **Drift.** With a [`ConnectCgroupSource`] that knows the socket, `cgroup` is the
/// connect-time one and [`Identity::drift`] compares it with the cgroup now (or at
/// exit), and the connect-time euid/egid with the current ones. `exe` is never
/// reported as drift: the kernel records no connect-time executable and exposes no
/// exec counter, and an exe remembered "at first sight" may predate or postdate this
/// `connect()`, so a difference would not soundly mean "changed since connect".
///
/// ```no_run
/// use std::os::unix::net::UnixListener;
/// let ident = callerid::Identifier::new()?;
/// let listener = UnixListener::bind("/tmp/example.sock")?;
/// let (stream, _) = listener.accept()?;
/// let who = ident.identify(&stream)?;
/// println!("uid {} in cgroup {:?}", who.peer().uid, who.cgroup().and_then(|c| c.path.as_deref()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Identifier {
    parts: Parts,
    peerpidfd: bool,
    get_info: bool,
    handles: bool,
    ns_ioctls: bool,
    pidfs: bool,
    procfs: bool,
    cgroup2: Option<Cgroup2>,
    cgroups: RwLock<GenCache<u64, Arc<CgroupEntry>>>,
    userns: Mutex<GenCache<u64, Arc<UsernsEntry>>>,
    /// pidfs id → pid namespace inode.
    pidns: RwLock<GenCache<u64, u64>>,
    source: Option<Arc<dyn ConnectCgroupSource>>,
    features: Features,
}

// One identifier is shared by every thread of a server.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Identifier>();
};

/// How the record's `peer` part is obtained.
enum PeerFrom {
    /// From the socket at `connect()`.
    Connect(Peer),
    /// `identify_pid`: from the process's credentials now.
    Now(u32),
}

/// Warnings under construction.
#[derive(Default)]
struct Warnings(Vec<Warning>);

impl Warnings {
    fn push(&mut self, part: Part, code: WarningCode, message: impl Into<String>) {
        self.0.push(Warning {
            part,
            code,
            message: message.into(),
        });
    }
    fn io(&mut self, part: Part, what: &str, e: &io::Error) {
        let code = match e.raw_os_error() {
            Some(libc::ESRCH) => WarningCode::PeerExited,
            Some(libc::EPERM | libc::EACCES) => WarningCode::NotPermitted,
            Some(libc::EREMOTE) => WarningCode::ForeignPidNamespace,
            Some(libc::ESTALE) => WarningCode::CgroupRemoved,
            Some(libc::ENOTTY | libc::ENOSYS | libc::EOPNOTSUPP | libc::ENOPROTOOPT) => {
                WarningCode::FeatureFallback
            }
            _ => WarningCode::UnexpectedKernelAnswer,
        };
        self.push(part, code, format!("{what}: {}", errno_text(e)));
    }
}

fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
}

/// The pidfd has become readable: the process has exited (zombie or reaped).
fn pidfd_exited(pidfd: BorrowedFd<'_>) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

/// Current-time facts gathered through the pidfd.
struct Now {
    state: ProcessState,
    pid: Option<u32>,
    ppid: Option<u32>,
    creds: Option<InfoCreds>,
    /// cgroup id now (or at exit) with when and how we know it.
    cgroup: Option<(u64, CgroupAt, Provenance)>,
    /// The path, when the fallback read it together with the id.
    cgroup_path: Option<String>,
    groups: Option<Vec<u32>>,
    process_prov: Provenance,
    foreign: bool,
}

/// A lazily opened, verified `/proc/<pid>` directory.
struct LazyDir {
    tried: bool,
    dir: Option<ProcDir>,
}

impl Identifier {
    /// Probes kernel features, finds the cgroup2 mount, collects every part.
    pub fn new() -> Result<Self> {
        Self::builder().build()
    }

    /// A builder for parts, feature switches, cache sizes and a connect-time source.
    pub fn builder() -> IdentifierBuilder {
        IdentifierBuilder::default()
    }

    /// What this kernel offers and what falls back (for `callerid doctor`).
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The parts this identifier collects.
    pub fn parts(&self) -> Parts {
        self.parts
    }

    /// Identifies the peer of an accepted `AF_UNIX` stream or seqpacket socket (or
    /// either end of a `socketpair()`).
    ///
    /// Blocks on nothing but procfs: a handful of syscalls, and `/proc` reads only for
    /// the parts that need them and are not cached.
    ///
    /// # Errors
    /// [`Error::WrongSocket`] for anything but a connected Unix socket with a peer;
    /// other errors only when the connect-time snapshot itself cannot be read. Missing
    /// *parts* (peer exited, not permitted, …) are not errors but `null` parts with
    /// [`Identity::warnings`].
    pub fn identify(&self, sock: &impl AsFd) -> Result<Identity> {
        let sock = sock.as_fd();
        let cred = check_socket(sock)?;
        let mut w = Warnings::default();

        let groups = match sys::sockopt::peer_groups(sock) {
            Ok(g) => Some(g.into_iter().map(Gid::new).collect()),
            Err(e) => {
                w.io(Part::Peer, "getsockopt(SO_PEERGROUPS)", &e);
                None
            }
        };
        let security_label = match sys::sockopt::peer_security(sock) {
            Ok(l) => l,
            Err(e) => {
                w.io(Part::Peer, "getsockopt(SO_PEERSEC)", &e);
                None
            }
        };
        let pid = u32::try_from(cred.pid).ok().filter(|&p| p != 0);
        if pid.is_none() {
            w.push(
                Part::Peer,
                WarningCode::ForeignPidNamespace,
                "SO_PEERCRED: pid 0, the peer is not visible in our pid namespace",
            );
        }
        let peer = Peer {
            pid: pid.map(Pid::new),
            uid: Uid::new(cred.uid),
            gid: Gid::new(cred.gid),
            groups,
            security_label,
        };

        let pidfd = if self.peerpidfd {
            match sys::sockopt::peer_pidfd(sock) {
                Ok(fd) => Some((fd, PidfdSource::SoPeerpidfd)),
                Err(e) if errno(&e) == Some(libc::EINVAL) => {
                    // Kernels before 6.16 refuse once the peer has been reaped.
                    w.push(
                        Part::Process,
                        WarningCode::PeerExited,
                        "getsockopt(SO_PEERPIDFD): EINVAL, the peer was reaped",
                    );
                    None
                }
                Err(e) => {
                    w.io(Part::Process, "getsockopt(SO_PEERPIDFD)", &e);
                    None
                }
            }
        } else {
            self.pidfd_by_number(pid, &mut w)
        };

        let connect_cgroup = match &self.source {
            Some(src) => match src.connect_cgroup(sock) {
                Ok(id) => id,
                Err(e) => {
                    w.push(
                        Part::Cgroup,
                        WarningCode::ConnectCgroupUnavailable,
                        format!("{}: {}", src.describe(), errno_text(&e)),
                    );
                    None
                }
            },
            None => None,
        };

        self.assemble(PeerFrom::Connect(peer), pidfd, pid, connect_cgroup, w)
    }

    /// Identifies the process `pid` *now*, through `pidfd_open` (for `callerid whois`).
    ///
    /// Not connect-time: `peer` holds the process's current effective ids with
    /// provenance `kernel_now` (or `proc_verified`), and `provenance.pidfd` is
    /// `pidfd_open`.
    ///
    /// # Errors
    /// [`Error::PeerGone`] when there is no such process (or it exits before its
    /// credentials are read), [`Error::NotPermitted`], [`Error::Unsupported`] on
    /// kernels without `pidfd_open` (< 5.3).
    pub fn identify_pid(&self, pid: u32) -> Result<Identity> {
        let raw = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| Error::PeerGone {
                syscall: "pidfd_open",
                source: io::Error::from_raw_os_error(libc::ESRCH),
            })?;
        let fd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty())
            .map_err(|e| Error::from_rustix("pidfd_open", e))?;
        self.assemble(
            PeerFrom::Now(pid),
            Some((fd, PidfdSource::PidfdOpen)),
            Some(pid),
            None,
            Warnings::default(),
        )
    }

    /// Without `SO_PEERPIDFD`: a pidfd by number, which may name a newer process that
    /// reused the pid after the peer was reaped. Said so in a warning and in
    /// `provenance.pidfd`.
    fn pidfd_by_number(
        &self,
        pid: Option<u32>,
        w: &mut Warnings,
    ) -> Option<(OwnedFd, PidfdSource)> {
        let raw = pid
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)?;
        match rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => {
                w.push(
                    Part::Process,
                    WarningCode::PidReusePossible,
                    "no SO_PEERPIDFD: pidfd_open(pid) after connect(); the pid may have been reused",
                );
                Some((fd, PidfdSource::PidfdOpen))
            }
            Err(e) => {
                w.io(Part::Process, "pidfd_open", &io::Error::from(e));
                None
            }
        }
    }

    fn cgroup_cache_write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, GenCache<u64, Arc<CgroupEntry>>> {
        self.cgroups.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn pidns_write(&self) -> std::sync::RwLockWriteGuard<'_, GenCache<u64, u64>> {
        self.pidns.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn pidns_cached(&self, pidfs_id: u64) -> Option<u64> {
        let hit = self
            .pidns
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .peek(&pidfs_id);
        hit.or_else(|| self.pidns_write().get(&pidfs_id))
    }

    fn cgroup_cache_lookup(&self, id: u64) -> Option<Arc<CgroupEntry>> {
        let hit = self
            .cgroups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .peek(&id);
        hit.or_else(|| self.cgroup_cache_write().get(&id))
    }

    /// Liveness check used to verify a `/proc/<pid>` dirfd after opening it.
    fn check_alive(&self, pidfd: BorrowedFd<'_>) -> io::Result<()> {
        if self.get_info {
            sys::pidfd::pidfd_get_info(pidfd, 0).map(|_| ())
        } else {
            match sys::pidfd::pidfd_signal_zero(pidfd) {
                Err(e) if errno(&e) == Some(libc::EPERM) => Ok(()),
                r => r,
            }
        }
    }

    fn open_dir<'d>(
        &self,
        lazy: &'d mut LazyDir,
        pidfd: BorrowedFd<'_>,
        now: &mut Now,
        w: &mut Warnings,
    ) -> Option<&'d ProcDir> {
        if !lazy.tried {
            lazy.tried = true;
            if !self.procfs {
                w.push(
                    Part::Process,
                    WarningCode::ProcUnavailable,
                    "/proc is not of our pid namespace: no /proc reads",
                );
            } else if let (Some(pid), false) = (now.pid, now.state == ProcessState::Exited) {
                match ProcDir::open_verified(pid, || self.check_alive(pidfd)) {
                    Ok(d) => lazy.dir = Some(d),
                    Err(e) if matches!(errno(&e), Some(libc::ESRCH | libc::ENOENT)) => {
                        now.state = ProcessState::Exited;
                        w.push(
                            Part::Process,
                            WarningCode::PeerExited,
                            format!("the peer exited during identification: {}", errno_text(&e)),
                        );
                    }
                    Err(e) => w.io(Part::Process, "open /proc/<pid>", &e),
                }
            }
        }
        lazy.dir.as_ref()
    }

    /// Current facts through the pidfd.
    fn now_facts(
        &self,
        pidfd: Option<BorrowedFd<'_>>,
        pid_hint: Option<u32>,
        w: &mut Warnings,
    ) -> Now {
        let mut now = Now {
            state: ProcessState::Exited,
            pid: None,
            ppid: None,
            creds: None,
            cgroup: None,
            cgroup_path: None,
            groups: None,
            process_prov: Provenance::KernelNow,
            foreign: false,
        };
        let Some(fd) = pidfd else {
            now.process_prov = Provenance::KernelConnect;
            return now;
        };
        if self.get_info {
            let ask = uapi::PIDFD_INFO_PID | uapi::PIDFD_INFO_CREDS | uapi::PIDFD_INFO_CGROUPID;
            match sys::pidfd::pidfd_get_info(fd, ask) {
                Ok(info) => {
                    now.state = if pidfd_exited(fd) {
                        ProcessState::Zombie
                    } else {
                        ProcessState::Alive
                    };
                    now.pid = info.pid.map(|p| p.0).filter(|&p| p != 0);
                    now.ppid = info.pid.map(|p| p.2).filter(|&p| p != 0);
                    now.creds = info.creds;
                    now.cgroup = info
                        .cgroup_id
                        .map(|id| (id, CgroupAt::Now, Provenance::KernelNow));
                }
                Err(e) if errno(&e) == Some(libc::ESRCH) => {
                    now.state = ProcessState::Exited;
                    now.process_prov = Provenance::KernelExit;
                    w.push(
                        Part::Process,
                        WarningCode::PeerExited,
                        "PIDFD_GET_INFO: ESRCH, the peer was reaped",
                    );
                    let ask = uapi::PIDFD_INFO_EXIT | uapi::PIDFD_INFO_CGROUPID;
                    match sys::pidfd::pidfd_get_info(fd, ask) {
                        Ok(info) => {
                            now.cgroup = info
                                .cgroup_id
                                .map(|id| (id, CgroupAt::Exit, Provenance::KernelExit));
                        }
                        Err(e) => w.io(Part::Cgroup, "PIDFD_GET_INFO(EXIT)", &e),
                    }
                }
                Err(e) if errno(&e) == Some(libc::EREMOTE) => {
                    now.foreign = true;
                    now.state = if pidfd_exited(fd) {
                        ProcessState::Exited
                    } else {
                        ProcessState::Alive
                    };
                    w.push(
                        Part::Process,
                        WarningCode::ForeignPidNamespace,
                        "PIDFD_GET_INFO: EREMOTE, the peer is outside our pid namespace",
                    );
                }
                Err(e) => {
                    w.io(Part::Process, "PIDFD_GET_INFO", &e);
                    now.state = if pidfd_exited(fd) {
                        ProcessState::Exited
                    } else {
                        ProcessState::Alive
                    };
                }
            }
        } else {
            now.process_prov = Provenance::ProcVerified;
            match sys::pidfd::pidfd_signal_zero(fd).map_err(|e| errno(&e)) {
                Ok(()) | Err(Some(libc::EPERM)) => {
                    now.state = if pidfd_exited(fd) {
                        ProcessState::Zombie
                    } else {
                        ProcessState::Alive
                    };
                    now.pid = pid_hint;
                }
                Err(Some(libc::ESRCH)) => {
                    now.state = ProcessState::Exited;
                    w.push(
                        Part::Process,
                        WarningCode::PeerExited,
                        "pidfd_send_signal(0): ESRCH, the peer was reaped",
                    );
                }
                Err(Some(libc::EINVAL)) => {
                    now.foreign = true;
                    now.state = ProcessState::Alive;
                    w.push(
                        Part::Process,
                        WarningCode::ForeignPidNamespace,
                        "pidfd_send_signal(0): EINVAL, the peer is outside our pid namespace",
                    );
                }
                Err(e) => w.io(
                    Part::Process,
                    "pidfd_send_signal",
                    &io::Error::from_raw_os_error(e.unwrap_or(libc::EIO)),
                ),
            }
        }
        now
    }

    fn assemble(
        &self,
        peer_from: PeerFrom,
        pidfd: Option<(OwnedFd, PidfdSource)>,
        pid_hint: Option<u32>,
        connect_cgroup: Option<CgroupId>,
        mut w: Warnings,
    ) -> Result<Identity> {
        let parts = self.parts;
        let fd = pidfd.as_ref().map(|(fd, _)| fd.as_fd());
        let pidfd_source = pidfd.as_ref().map(|(_, s)| *s);
        let pidfs_id = match fd {
            Some(fd) if self.pidfs => rustix::fs::fstat(fd).ok().map(|st| PidfsId::new(st.st_ino)),
            _ => None,
        };
        let mut now = self.now_facts(fd, pid_hint, &mut w);
        let mut lazy = LazyDir {
            tried: false,
            dir: None,
        };
        let is_pid_lookup = matches!(peer_from, PeerFrom::Now(_));

        // Fallback without PIDFD_GET_INFO: creds and cgroup from verified /proc text.
        // identify_pid also wants the groups, which only status has.
        if let Some(fd) = fd
            && (!self.get_info || is_pid_lookup)
            && let Some(dir) = self.open_dir(&mut lazy, fd, &mut now, &mut w)
        {
            match dir.read("status").map(|t| parse_status(&t)) {
                Ok(Ok(st)) => self.apply_status(&mut now, st),
                Ok(Err(e)) => w.push(
                    Part::Process,
                    WarningCode::UnexpectedKernelAnswer,
                    e.to_string(),
                ),
                Err(e) => w.io(Part::Process, "read /proc/<pid>/status", &e),
            }
            if !self.get_info {
                match dir.read("cgroup") {
                    Ok(text) => self.cgroup_from_text(&text, &mut now, &mut w),
                    Err(e) => w.io(Part::Cgroup, "read /proc/<pid>/cgroup", &e),
                }
            }
        }

        let (peer, peer_prov) = match peer_from {
            PeerFrom::Connect(p) => (p, Provenance::KernelConnect),
            PeerFrom::Now(pid) => {
                let creds = now.creds.ok_or_else(|| Error::PeerGone {
                    syscall: "PIDFD_GET_INFO",
                    source: io::Error::from_raw_os_error(libc::ESRCH),
                })?;
                let prov = if self.get_info {
                    Provenance::KernelNow
                } else {
                    Provenance::ProcVerified
                };
                (
                    Peer {
                        pid: Some(Pid::new(pid)),
                        uid: Uid::new(creds.euid),
                        gid: Gid::new(creds.egid),
                        groups: now
                            .groups
                            .take()
                            .map(|g| g.into_iter().map(Gid::new).collect()),
                        security_label: None,
                    },
                    prov,
                )
            }
        };

        // comm and exe: query-time /proc reads, never cached (execve changes them and
        // the kernel exposes no counter for it).
        let mut comm = None;
        let mut exe = None;
        if parts.process
            && (parts.comm || parts.exe)
            && let Some(fd) = fd
            && !now.foreign
            && let Some(dir) = self.open_dir(&mut lazy, fd, &mut now, &mut w)
        {
            let zombie = now.state == ProcessState::Zombie;
            if parts.comm {
                match dir.read_comm() {
                    Ok(c) => comm = Some(c),
                    Err(e) if zombie && errno(&e) == Some(libc::ENOENT) => {}
                    Err(e) => w.io(Part::Process, "read /proc/<pid>/comm", &e),
                }
            }
            if parts.exe {
                match dir.readlink("exe") {
                    Ok(x) => exe = Some(x),
                    // Zombies and kernel threads have no exe.
                    Err(e) if errno(&e) == Some(libc::ENOENT) => {}
                    Err(e) => w.io(Part::Process, "readlink /proc/<pid>/exe", &e),
                }
            }
        }

        // Namespaces.
        let want_ns: &[NsKind] = if parts.namespaces {
            &NsKind::ALL
        } else if parts.user_namespace {
            &[NsKind::User]
        } else {
            &[]
        };
        let mut ns = Namespaces::default();
        let mut ns_prov = None;
        if !want_ns.is_empty()
            && let Some(fd) = fd
        {
            let id = pidfs_id.map(PidfsId::get);
            ns_prov = self.namespaces(fd, id, want_ns, &mut ns, &mut lazy, &mut now, &mut w);
        }

        // User namespace.
        let mut user_namespace = None;
        let mut userns_prov = None;
        if parts.user_namespace
            && let Some(fd) = fd
        {
            user_namespace = self.user_namespace(fd, &peer, ns.user, &mut lazy, &mut now, &mut w);
            userns_prov = user_namespace.as_ref().map(|_| Provenance::ProcVerified);
        }

        // cgroup: connect-time when a source has it, else now / exit / proc.
        let mut drift = None;
        let (cgroup, cgroup_prov) = if let Some(cid) = connect_cgroup {
            let entry = self.resolve(cid.get(), None, fd, &mut lazy, &mut now, &mut w);
            let mut changed = Vec::new();
            let mut current = None;
            if let Some((id, _, _)) = now.cgroup
                && id != cid.get()
            {
                changed.push(DriftKind::Cgroup);
                let e = self.resolve(id, now.cgroup_path.take(), fd, &mut lazy, &mut now, &mut w);
                current = Some(CgroupRef {
                    id: CgroupId::new(id),
                    path: e.path.clone(),
                });
            }
            if let Some(c) = now.creds {
                if c.euid != peer.uid.get() {
                    changed.push(DriftKind::Euid);
                }
                if c.egid != peer.gid.get() {
                    changed.push(DriftKind::Egid);
                }
            }
            drift = Some(Drift {
                cgroup: current,
                changed,
            });
            (
                Some((cid, entry, CgroupAt::Connect)),
                Some(Provenance::KernelConnect),
            )
        } else if let Some((id, at, prov)) = now.cgroup {
            let known = now.cgroup_path.take();
            let entry = self.resolve(id, known, fd, &mut lazy, &mut now, &mut w);
            (Some((CgroupId::new(id), entry, at)), Some(prov))
        } else {
            if !w.0.iter().any(|x| x.part == Part::Cgroup) {
                w.push(
                    Part::Cgroup,
                    WarningCode::PeerExited,
                    "no cgroup: the peer is gone or outside our pid namespace",
                );
            }
            (None, None)
        };
        let workload = match &cgroup {
            Some((_, e, _)) if parts.workload => e.workload.clone(),
            _ => None,
        };
        let workload_prov = if !parts.workload {
            Some(Provenance::NotCollected)
        } else {
            workload.as_ref().map(|_| Provenance::CgroupPath)
        };
        let cgroup = cgroup.map(|(id, e, at)| Cgroup {
            id,
            path: e.path.clone(),
            at,
        });

        let process = (parts.process && pidfd_source.is_some()).then(|| {
            let exited = now.state == ProcessState::Exited;
            Process {
                pidfs_id,
                pid: if exited { None } else { now.pid.map(Pid::new) },
                ppid: if exited { None } else { now.ppid.map(Pid::new) },
                uid: now.creds.map(|c| Uid::new(c.ruid)),
                euid: now.creds.map(|c| Uid::new(c.euid)),
                gid: now.creds.map(|c| Gid::new(c.rgid)),
                egid: now.creds.map(|c| Gid::new(c.egid)),
                comm,
                exe,
                state: now.state,
            }
        });
        let process_prov = if !parts.process {
            Some(Provenance::NotCollected)
        } else {
            process.as_ref().map(|_| now.process_prov)
        };
        let namespaces_out = if parts.namespaces && ns_prov.is_some() {
            Some(ns)
        } else {
            None
        };
        let provenance = ProvenanceMap {
            peer: Some(peer_prov),
            process: process_prov,
            cgroup: cgroup_prov,
            namespaces: if parts.namespaces {
                namespaces_out.as_ref().and(ns_prov)
            } else {
                Some(Provenance::NotCollected)
            },
            user_namespace: if parts.user_namespace {
                userns_prov
            } else {
                Some(Provenance::NotCollected)
            },
            workload: workload_prov,
            pidfd: pidfd_source,
        };
        Ok(Identity {
            version: IDENTITY_VERSION,
            peer,
            process,
            cgroup,
            namespaces: namespaces_out,
            user_namespace,
            workload,
            drift,
            provenance,
            warnings: w.0,
        })
    }

    fn apply_status(&self, now: &mut Now, st: Status) {
        if st.state == Some('Z') && now.state == ProcessState::Alive {
            now.state = ProcessState::Zombie;
        }
        now.groups = st.groups;
        if !self.get_info {
            now.ppid = st.ppid.filter(|&p| p != 0);
            if let (Some(u), Some(g)) = (st.uid, st.gid) {
                now.creds = Some(InfoCreds {
                    ruid: u[0],
                    euid: u[1],
                    rgid: g[0],
                    egid: g[1],
                });
            }
        }
    }

    /// Fallback cgroup: the verified `0::` line, and its id from `stat` on our cgroup2
    /// mount.
    fn cgroup_from_text(&self, text: &str, now: &mut Now, w: &mut Warnings) {
        match parse_proc_cgroup_v2(text) {
            Ok(Some((_, true))) => w.push(
                Part::Cgroup,
                WarningCode::CgroupRemoved,
                "/proc/<pid>/cgroup: the peer's cgroup was removed",
            ),
            Ok(Some((path, false))) => match &self.cgroup2 {
                Some(cg) => match cg.id_of_path(path) {
                    Ok(id) => {
                        now.cgroup = Some((id, CgroupAt::Now, Provenance::ProcVerified));
                        now.cgroup_path = Some(path.to_owned());
                    }
                    Err(e) => w.io(Part::Cgroup, "stat of the peer's cgroup directory", &e),
                },
                None => w.push(
                    Part::Cgroup,
                    WarningCode::CgroupUnresolved,
                    "no cgroup2 mount",
                ),
            },
            Ok(None) => w.push(
                Part::Cgroup,
                WarningCode::CgroupUnresolved,
                "no cgroup v2 line",
            ),
            Err(e) => w.push(
                Part::Cgroup,
                WarningCode::UnexpectedKernelAnswer,
                e.to_string(),
            ),
        }
    }

    /// cgroup id → (path, workload), through the cache; on a miss
    /// `open_by_handle_at`, or (fallback) the verified `/proc/<pid>/cgroup` path whose
    /// `stat` gives the same id.
    fn resolve(
        &self,
        id: u64,
        known_path: Option<String>,
        pidfd: Option<BorrowedFd<'_>>,
        lazy: &mut LazyDir,
        now: &mut Now,
        w: &mut Warnings,
    ) -> Arc<CgroupEntry> {
        if let Some(e) = self.cgroup_cache_lookup(id) {
            return e;
        }
        let mut cacheable = true;
        let path = if let Some(p) = known_path {
            Some(p)
        } else if let (true, Some(cg)) = (self.handles, &self.cgroup2) {
            match cg.path_of_id(id) {
                Ok(p) => Some(p),
                Err(e) => {
                    // ESTALE: removed for good, worth remembering; anything else may pass.
                    cacheable = errno(&e) == Some(libc::ESTALE);
                    w.io(Part::Cgroup, "open_by_handle_at(cgroup id)", &e);
                    None
                }
            }
        } else {
            cacheable = false;
            let mut found = None;
            if let (Some(fd), Some(cg), false) = (pidfd, &self.cgroup2, now.foreign)
                && let Some(dir) = self.open_dir(lazy, fd, now, w)
                && let Ok(text) = dir.read("cgroup")
                && let Ok(Some((p, false))) = parse_proc_cgroup_v2(&text)
                && cg.id_of_path(p).ok() == Some(id)
            {
                found = Some(p.to_owned());
                cacheable = true;
            }
            if found.is_none() {
                w.push(
                    Part::Cgroup,
                    WarningCode::CgroupUnresolved,
                    "no open_by_handle_at and the peer's /proc/<pid>/cgroup does not name this cgroup",
                );
            }
            found
        };
        let workload = path
            .as_deref()
            .map(|p| crate::workload::classify(p).into_owned());
        let entry = Arc::new(CgroupEntry { path, workload });
        if cacheable {
            self.cgroup_cache_write().insert(id, Arc::clone(&entry));
        }
        entry
    }

    /// Namespace inodes: verified readlinks of `/proc/<pid>/ns/*`, or pidfd ioctls +
    /// `fstat` of the nsfs fd (see the route choice inside).
    #[allow(clippy::too_many_arguments)]
    fn namespaces(
        &self,
        fd: BorrowedFd<'_>,
        pidfs_id: Option<u64>,
        kinds: &[NsKind],
        out: &mut Namespaces,
        lazy: &mut LazyDir,
        now: &mut Now,
        w: &mut Warnings,
    ) -> Option<Provenance> {
        if now.state != ProcessState::Alive {
            w.push(
                Part::Namespaces,
                WarningCode::PeerExited,
                "the peer has exited: no namespaces",
            );
            return None;
        }
        let mut first_err: Option<(NsKind, io::Error)> = None;
        let mut any = false;
        // The pid namespace of a process never changes (setns/unshare only set the one
        // for its children), so it is remembered per pidfs id.
        let mut kinds_buf = [NsKind::User; 8];
        let mut n_kinds = 0;
        for &k in kinds {
            if k == NsKind::Pid
                && let Some(id) = pidfs_id
                && let Some(ino) = self.pidns_cached(id)
            {
                set_ns(out, k, ino);
                any = true;
                continue;
            }
            kinds_buf[n_kinds] = k;
            n_kinds += 1;
        }
        let kinds = &kinds_buf[..n_kinds];
        // Route (measured, BENCHMARKS.md): a readlink through the verified /proc/<pid>
        // dirfd is one syscall per namespace; an ioctl is three (ioctl, fstat, close).
        // So /proc wins as soon as the dirfd is open anyway or more than one namespace is
        // wanted; the ioctls serve a single namespace, a peer outside our pid namespace,
        // and a /proc that cannot be used.
        let prefer_proc = !self.ns_ioctls
            || (self.procfs && !now.foreign && (lazy.dir.is_some() || kinds.len() > 1));
        let dir = if prefer_proc && !kinds.is_empty() {
            self.open_dir(lazy, fd, now, w)
        } else {
            None
        };
        // Only the first failure is kept: it becomes the part's one warning below.
        let mut record = |k: NsKind, r: io::Result<u64>| match r {
            Ok(ino) => {
                set_ns(out, k, ino);
                any = true;
            }
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some((k, e));
                }
            }
        };
        let prov = if let Some(dir) = dir {
            for &k in kinds {
                record(k, dir.readlink_ns(k.proc_name()));
            }
            Provenance::ProcVerified
        } else if self.ns_ioctls {
            for &k in kinds {
                let r = sys::pidfd::pidfd_namespace(fd, k)
                    .and_then(|nsfd| rustix::fs::fstat(&nsfd).map_err(io::Error::from))
                    .map(|st| st.st_ino);
                record(k, r);
            }
            Provenance::KernelNow
        } else {
            Provenance::ProcVerified
        };
        if let (Some(id), Some(ino)) = (pidfs_id, out.pid)
            && kinds.contains(&NsKind::Pid)
        {
            self.pidns_write().insert(id, ino.get());
        }
        if let Some((k, e)) = first_err {
            // A kernel without time namespaces has no ns/time: not worth a warning.
            let benign =
                k == NsKind::Time && matches!(errno(&e), Some(libc::ENOENT | libc::EOPNOTSUPP));
            if !benign {
                let what = if prov == Provenance::KernelNow {
                    k.ioctl_name()
                } else {
                    k.proc_name()
                };
                w.io(Part::Namespaces, what, &e);
            }
        }
        any.then_some(prov)
    }

    fn user_namespace(
        &self,
        fd: BorrowedFd<'_>,
        peer: &Peer,
        user_ino: Option<NsInode>,
        lazy: &mut LazyDir,
        now: &mut Now,
        w: &mut Warnings,
    ) -> Option<UserNamespace> {
        if now.state != ProcessState::Alive || now.foreign {
            w.push(
                Part::UserNamespace,
                if now.foreign {
                    WarningCode::ForeignPidNamespace
                } else {
                    WarningCode::PeerExited
                },
                "no user namespace for a peer that exited or is outside our pid namespace",
            );
            return None;
        }
        let ino = user_ino.map(NsInode::get);
        let cached = ino.and_then(|i| {
            self.userns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&i)
        });
        let entry = match cached {
            Some(e) => e,
            None => {
                let dir = self.open_dir(lazy, fd, now, w)?;
                let read = |name: &str| -> std::result::Result<Vec<IdMapLine>, String> {
                    let text = dir
                        .read(name)
                        .map_err(|e| format!("read /proc/<pid>/{name}: {}", errno_text(&e)))?;
                    parse_id_map(&text).map_err(|e| e.to_string())
                };
                let (uid_map, gid_map) = match (read("uid_map"), read("gid_map")) {
                    (Ok(u), Ok(g)) => (u, g),
                    (Err(e), _) | (_, Err(e)) => {
                        w.push(Part::UserNamespace, WarningCode::UnexpectedKernelAnswer, e);
                        return None;
                    }
                };
                let e = Arc::new(UsernsEntry { uid_map, gid_map });
                if let Some(i) = ino
                    && !e.uid_map.is_empty()
                    && !e.gid_map.is_empty()
                {
                    self.userns
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(i, Arc::clone(&e));
                }
                e
            }
        };
        let initial = match ino {
            Some(i) => i == uapi::PROC_USER_INIT_INO,
            None => is_identity_map(&entry.uid_map),
        };
        let uid = to_inside(&entry.uid_map, peer.uid.get()).map(NsUid::new);
        let gid = to_inside(&entry.gid_map, peer.gid.get()).map(NsGid::new);
        if uid.is_none() || gid.is_none() {
            w.push(
                Part::UserNamespace,
                WarningCode::UnmappedId,
                "the peer's uid or gid has no mapping in its own user namespace",
            );
        }
        Some(UserNamespace {
            initial,
            uid_map: entry.uid_map.clone(),
            gid_map: entry.gid_map.clone(),
            uid,
            gid,
        })
    }

    /// Same as [`Identifier::identify`], for async code: identification does only
    /// short syscalls and procfs reads, so it runs inline without blocking the
    /// executor for long. (`tokio::net::UnixStream` is `AsFd`, so calling
    /// [`Identifier::identify`] directly works just as well.)
    ///
    /// ```no_run
    /// # async fn serve(ident: &callerid::Identifier) -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = tokio::net::UnixListener::bind("/run/example.sock")?;
    /// let (stream, _) = listener.accept().await?;
    /// let who = ident.identify_async(&stream).await?;
    /// println!("uid {}", who.peer().uid);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn identify_async(&self, stream: &tokio::net::UnixStream) -> Result<Identity> {
        self.identify(stream)
    }
}

fn set_ns(out: &mut Namespaces, k: NsKind, ino: u64) {
    let v = Some(NsInode::new(ino));
    match k {
        NsKind::User => out.user = v,
        NsKind::Pid => out.pid = v,
        NsKind::Net => out.net = v,
        NsKind::Mnt => out.mnt = v,
        NsKind::Cgroup => out.cgroup = v,
        NsKind::Ipc => out.ipc = v,
        NsKind::Uts => out.uts = v,
        NsKind::Time => out.time = v,
    }
}

/// The connect-time credentials, after making sure `sock` is a connected Unix socket
/// with a peer.
fn check_socket(sock: BorrowedFd<'_>) -> Result<sys::sockopt::RawUcred> {
    const SO_PEERCRED: &str = "getsockopt(SO_PEERCRED)";
    let wrong = |kind, source| Error::WrongSocket {
        syscall: SO_PEERCRED,
        kind,
        source,
    };
    let cred = sys::sockopt::peer_cred(sock).map_err(|e| match errno(&e) {
        Some(libc::ENOTSOCK | libc::EBADF) => wrong(WrongSocketKind::NotASocket, Some(e)),
        _ => Error::from_io(SO_PEERCRED, e),
    })?;
    let listening = rustix::net::sockopt::socket_acceptconn(sock).unwrap_or(false);
    if listening {
        return Err(wrong(WrongSocketKind::Listening, None));
    }
    let no_peer = cred.pid == 0 && cred.uid == u32::MAX && cred.gid == u32::MAX;
    if no_peer {
        let domain = rustix::net::sockopt::socket_domain(sock).ok();
        if domain != Some(rustix::net::AddressFamily::UNIX) {
            return Err(wrong(WrongSocketKind::NotUnix, None));
        }
        let ty = rustix::net::sockopt::socket_type(sock).ok();
        if ty == Some(rustix::net::SocketType::DGRAM) {
            return Err(wrong(WrongSocketKind::Datagram, None));
        }
        return Err(wrong(WrongSocketKind::NotConnected, None));
    }
    Ok(cred)
}
