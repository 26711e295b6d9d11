//! The identity record: what the host knows about the peer of one connection.
//!
//! Connect-time facts (`peer`, and `cgroup` when `at == Connect`) and current facts
//! (`process`, `cgroup` with `at == Now`) are kept apart, and every part says where it
//! came from in [`Identity::provenance`]. The JSON form (DESIGN.md §2) is a contract:
//! field names never change, missing parts are `null`, never omitted.

use crate::ids::{CgroupId, Gid, NsGid, NsInode, NsUid, Pid, PidfsId, Uid};
use crate::workload::Workload;
use serde::{Deserialize, Serialize};

/// Version of the JSON form of [`Identity`].
pub const IDENTITY_VERSION: u32 = 1;

/// Everything callerid found out about the peer of one connection (or one pid).
///
/// Immutable once built. Built by [`crate::Identifier`], or read back from its JSON form
/// with `serde` (for `callerid explain --identity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub(crate) version: u32,
    pub(crate) peer: Peer,
    pub(crate) process: Option<Process>,
    pub(crate) cgroup: Option<Cgroup>,
    pub(crate) namespaces: Option<Namespaces>,
    pub(crate) user_namespace: Option<UserNamespace>,
    pub(crate) workload: Option<Workload<'static>>,
    /// Difference between connect-time and current state, when connect-time capture ran.
    #[serde(default)]
    pub(crate) drift: Option<Drift>,
    pub(crate) provenance: ProvenanceMap,
    pub(crate) warnings: Vec<Warning>,
}

impl Identity {
    /// Version of the record's JSON form (currently 1).
    pub fn version(&self) -> u32 {
        self.version
    }
    /// Who connected: the kernel's snapshot at `connect()`.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }
    /// The process behind the connection now, through its pidfd.
    pub fn process(&self) -> Option<&Process> {
        self.process.as_ref()
    }
    /// The peer's cgroup v2 and when that was true.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }
    /// Namespace inodes of the peer process.
    pub fn namespaces(&self) -> Option<&Namespaces> {
        self.namespaces.as_ref()
    }
    /// The peer's user namespace and the peer's ids inside it.
    pub fn user_namespace(&self) -> Option<&UserNamespace> {
        self.user_namespace.as_ref()
    }
    /// Container / pod / sandbox / unit chain derived from the cgroup path.
    pub fn workload(&self) -> Option<&Workload<'static>> {
        self.workload.as_ref()
    }
    /// What changed between `connect()` and now, when connect-time capture ran.
    pub fn drift(&self) -> Option<&Drift> {
        self.drift.as_ref()
    }
    /// Where each part came from.
    pub fn provenance(&self) -> &ProvenanceMap {
        &self.provenance
    }
    /// Why parts are missing or weaker than usual.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
}

/// The connect-time snapshot: `SO_PEERCRED`, `SO_PEERGROUPS`, `SO_PEERSEC`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Thread-group id of the connecting process in our pid namespace; `None` when it
    /// is not visible from here (kernel reports 0).
    pub pid: Option<Pid>,
    /// Effective uid at `connect()`.
    pub uid: Uid,
    /// Effective gid at `connect()`.
    pub gid: Gid,
    /// Supplementary groups at `connect()`; `None` when the kernel cannot say.
    pub groups: Option<Vec<Gid>>,
    /// LSM label of the peer socket; `None` when no LSM labels sockets.
    pub security_label: Option<String>,
}

/// Liveness of the peer process at identification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessState {
    /// Running.
    Alive,
    /// Exited, not yet reaped by its parent.
    Zombie,
    /// Exited and reaped.
    Exited,
}

/// The process behind the connection, as it is now (query time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// pidfs inode: never reused within a boot.
    pub pidfs_id: Option<PidfsId>,
    /// Current pid in our pid namespace (`None` if outside it or reaped).
    pub pid: Option<Pid>,
    /// Parent pid in our pid namespace.
    pub ppid: Option<Pid>,
    /// Real uid now.
    pub uid: Option<Uid>,
    /// Effective uid now.
    pub euid: Option<Uid>,
    /// Real gid now.
    pub gid: Option<Gid>,
    /// Effective gid now.
    pub egid: Option<Gid>,
    /// Process name. Informational only: the process chooses it.
    pub comm: Option<String>,
    /// Path of the executable, as the kernel resolves `/proc/<pid>/exe`.
    pub exe: Option<String>,
    /// Alive, zombie or exited.
    pub state: ProcessState,
}

/// When a cgroup membership was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupAt {
    /// At `connect()` (connect-time capture).
    Connect,
    /// At identification time.
    Now,
    /// When the process exited (it was reaped before we asked).
    Exit,
}

/// The peer's cgroup v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cgroup {
    /// cgroup v2 id.
    pub id: CgroupId,
    /// Path relative to the cgroup2 mount root, e.g. `/system.slice/foo.service`;
    /// `None` when the cgroup is gone or cannot be resolved.
    pub path: Option<String>,
    /// When this membership was true.
    pub at: CgroupAt,
}

/// Namespace inodes of the peer process.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespaces {
    /// User namespace.
    pub user: Option<NsInode>,
    /// Pid namespace.
    pub pid: Option<NsInode>,
    /// Network namespace.
    pub net: Option<NsInode>,
    /// Mount namespace.
    pub mnt: Option<NsInode>,
    /// cgroup namespace.
    pub cgroup: Option<NsInode>,
    /// IPC namespace.
    pub ipc: Option<NsInode>,
    /// UTS namespace.
    pub uts: Option<NsInode>,
    /// Time namespace.
    pub time: Option<NsInode>,
}

/// One line of a `uid_map`/`gid_map`: `[inside, outside, count]`, where `outside` is
/// in the identifying process's user namespace.
pub type IdMapLine = [u32; 3];

/// The peer's user namespace as seen from ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserNamespace {
    /// `true` when the peer is in the initial user namespace.
    pub initial: bool,
    /// The peer's `uid_map` as we read it.
    pub uid_map: Vec<IdMapLine>,
    /// The peer's `gid_map` as we read it.
    pub gid_map: Vec<IdMapLine>,
    /// The peer's connect-time uid as seen inside its own user namespace.
    pub uid: Option<NsUid>,
    /// The peer's connect-time gid as seen inside its own user namespace.
    pub gid: Option<NsGid>,
}

/// A cgroup reference without a time: id and (if known) path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupRef {
    /// cgroup v2 id.
    pub id: CgroupId,
    /// Path relative to the cgroup2 mount root.
    pub path: Option<String>,
}

/// One thing that differs between connect time and now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The process is in another cgroup than at `connect()`.
    Cgroup,
    /// Its effective uid differs from the connect-time uid.
    Euid,
    /// Its effective gid differs from the connect-time gid.
    Egid,
    /// It executed another program since.
    Exe,
}

/// What changed since `connect()`; present when connect-time facts could be compared
/// with current ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// The current cgroup, when it differs from the connect-time one.
    pub cgroup: Option<CgroupRef>,
    /// Which facts differ. Empty means no drift.
    pub changed: Vec<DriftKind>,
}

/// Where a part of the record came from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Recorded by the kernel at `connect()`.
    KernelConnect,
    /// Asked of the kernel through the peer's pidfd at identification time.
    KernelNow,
    /// Recorded by the kernel when the process exited.
    KernelExit,
    /// Read under `/proc/<pid>` through a directory fd verified against the pidfd.
    ProcVerified,
    /// Derived from the cgroup path by the classifier.
    CgroupPath,
    /// Reported by a container runtime's API.
    RuntimeApi,
    /// Not asked for by the caller of the [`crate::Identifier`].
    NotCollected,
}

/// How the pidfd of the peer was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PidfdSource {
    /// `SO_PEERPIDFD`: bound by the kernel to the connecting process.
    SoPeerpidfd,
    /// `pidfd_open(pid)`: opened by number, verified as well as the kernel allows.
    PidfdOpen,
}

/// Provenance of each part; `None` where the part is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceMap {
    /// Provenance of [`Identity::peer`].
    pub peer: Option<Provenance>,
    /// Provenance of [`Identity::process`].
    pub process: Option<Provenance>,
    /// Provenance of [`Identity::cgroup`].
    pub cgroup: Option<Provenance>,
    /// Provenance of [`Identity::namespaces`].
    pub namespaces: Option<Provenance>,
    /// Provenance of [`Identity::user_namespace`].
    pub user_namespace: Option<Provenance>,
    /// Provenance of [`Identity::workload`].
    pub workload: Option<Provenance>,
    /// How the pidfd behind `process` was obtained.
    #[serde(default)]
    pub pidfd: Option<PidfdSource>,
}

/// Which part of the record a [`Warning`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// [`Identity::peer`]
    Peer,
    /// [`Identity::process`]
    Process,
    /// [`Identity::cgroup`]
    Cgroup,
    /// [`Identity::namespaces`]
    Namespaces,
    /// [`Identity::user_namespace`]
    UserNamespace,
    /// [`Identity::workload`]
    Workload,
}

/// Why a part is missing or weaker than usual. Failure is data, not a panic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    /// The part concerned.
    pub part: Part,
    /// Stable machine-readable code, e.g. `peer_exited`, `foreign_pid_namespace`.
    pub code: WarningCode,
    /// Human-readable explanation, with the syscall and errno where there was one.
    pub message: String,
}

/// Stable machine-readable reason of a [`Warning`] (`snake_case` in JSON).
///
/// A missing LSM label is not a warning: most hosts label no sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningCode {
    /// The peer process exited (zombie or reaped) before everything could be read:
    /// current facts about it are missing, connect-time and exit-time ones remain.
    PeerExited,
    /// The peer is outside our pid namespace (hierarchy): no pid, and no current facts
    /// that need one.
    ForeignPidNamespace,
    /// The kernel refused for lack of privilege (e.g. ptrace access, CAP_DAC_READ_SEARCH).
    NotPermitted,
    /// The cgroup was removed, so its path is unknown.
    CgroupRemoved,
    /// The cgroup id could not be turned into a path by any available route.
    CgroupUnresolved,
    /// A kernel feature is unavailable or disabled and a weaker route was taken.
    FeatureFallback,
    /// The pidfd was opened by pid number after `connect()` (no `SO_PEERPIDFD`): the
    /// pid may have been reused by another process in between.
    PidReusePossible,
    /// `/proc` is not usable for the peer (not mounted, or not of our pid namespace).
    ProcUnavailable,
    /// The peer's uid/gid has no mapping in its own user namespace.
    UnmappedId,
    /// The connect-time cgroup source failed for this socket.
    ConnectCgroupUnavailable,
    /// Kernel text that did not parse (a bug or a kernel we do not know).
    UnexpectedKernelAnswer,
    /// A code from a newer version of callerid.
    #[serde(other)]
    Other,
}

impl WarningCode {
    /// The `snake_case` name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PeerExited => "peer_exited",
            Self::ForeignPidNamespace => "foreign_pid_namespace",
            Self::NotPermitted => "not_permitted",
            Self::CgroupRemoved => "cgroup_removed",
            Self::CgroupUnresolved => "cgroup_unresolved",
            Self::FeatureFallback => "feature_fallback",
            Self::PidReusePossible => "pid_reuse_possible",
            Self::ProcUnavailable => "proc_unavailable",
            Self::UnmappedId => "unmapped_id",
            Self::ConnectCgroupUnavailable => "connect_cgroup_unavailable",
            Self::UnexpectedKernelAnswer => "unexpected_kernel_answer",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for WarningCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
