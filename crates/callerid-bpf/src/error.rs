//! Typed errors: why capture is unavailable here, and what failed while loading it.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A capability the capture needs in the initial user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `CAP_BPF`: create the maps and load the program.
    Bpf,
    /// `CAP_PERFMON`: `bpf_skc_to_unix_sock()` and the pointer walk to the cgroup.
    Perfmon,
    /// `CAP_NET_ADMIN`: attach a cgroup socket-address program.
    NetAdmin,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bpf => "CAP_BPF",
            Self::Perfmon => "CAP_PERFMON",
            Self::NetAdmin => "CAP_NET_ADMIN",
        })
    }
}

/// Why connect-time capture cannot run in this process, found before touching `bpf(2)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// The kernel predates the `cgroup/getsockname_unix` hook (Linux 6.7).
    #[error("kernel {release} is older than 6.7 (no cgroup/getsockname_unix hook)")]
    KernelTooOld {
        /// `uname -r`.
        release: String,
    },
    /// The process is not in the initial user namespace, where the capabilities must be.
    #[error("not in the initial user namespace (BPF needs capabilities in the initial one)")]
    NotInitialUserNamespace,
    /// Effective capabilities are missing (`CAP_SYS_ADMIN` stands in for all three).
    #[error("missing capabilities: {}", join(missing))]
    MissingCapabilities {
        /// The missing ones.
        missing: Vec<Capability>,
    },
    /// No cgroup2 hierarchy is mounted.
    #[error("no cgroup2 mount in /proc/self/mountinfo")]
    NoCgroup2Mount,
    /// The visible cgroup2 mount is not the hierarchy root (a cgroup namespace or a bind
    /// mount of a sub-tree): the program would not run for sockets of other cgroups.
    #[error(
        "{mount} is not the cgroup2 root (cgroup id {id}, not 1): in a cgroup namespace or container?"
    )]
    NotCgroup2Root {
        /// The mount point found.
        mount: PathBuf,
        /// Its cgroup id.
        id: u64,
    },
    /// The process is not in the initial pid namespace; the program compares the
    /// kernel's (initial-namespace) tgid with ours.
    #[error("not in the initial pid namespace (the program filters on the host tgid)")]
    NotInitialPidNamespace,
    /// `/sys/kernel/btf/vmlinux` is missing (kernel built without BTF).
    #[error("no kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)")]
    NoKernelBtf,
}

fn join(caps: &[Capability]) -> String {
    caps.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A malformed embedded object or BTF, or a relocation the loader does not handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// Not a little-endian ELF64 file.
    #[error("not a little-endian ELF64 object")]
    NotElf64Le,
    /// Not a BPF object.
    #[error("ELF machine {machine} is not EM_BPF")]
    NotBpf {
        /// `e_machine`.
        machine: u16,
    },
    /// A read past the end of the data.
    #[error("truncated: {len} bytes at offset {offset}")]
    Truncated {
        /// Where the read started.
        offset: usize,
        /// How many bytes it needed.
        len: usize,
    },
    /// A string table entry that is unterminated or not UTF-8.
    #[error("bad string at offset {offset}")]
    BadString {
        /// Offset in its string table.
        offset: usize,
    },
    /// A section the loader needs is absent.
    #[error("no section {0}")]
    MissingSection(String),
    /// A symbol the loader needs is absent.
    #[error("no symbol {0}")]
    MissingSymbol(String),
    /// Malformed BTF.
    #[error("BTF: {0}")]
    Btf(String),
    /// A CO-RE relocation that cannot be resolved against the running kernel.
    #[error("CO-RE relocation {access}: {why}")]
    Core {
        /// The access string.
        access: String,
        /// What went wrong.
        why: String,
    },
    /// A relocation that points at an instruction of the wrong shape.
    #[error("relocation at instruction {index}: {why}")]
    BadInstruction {
        /// Instruction index in the program.
        index: usize,
        /// What went wrong.
        why: String,
    },
}

/// Why [`crate::ConnectCapture::load`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The environment rules capture out; nothing was attempted.
    #[error("connect-time capture unavailable: {0}")]
    Unavailable(#[from] Unavailable),
    /// Reading a file failed.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The embedded object, or the kernel's BTF, could not be used.
    #[error("BPF object: {0}")]
    Object(#[from] ObjectError),
    /// The kernel refused the object's BTF (`BPF_BTF_LOAD`).
    #[error("bpf(BPF_BTF_LOAD) failed: {source}{}", log_suffix(log))]
    BtfLoad {
        /// errno.
        #[source]
        source: io::Error,
        /// The kernel's BTF verifier log.
        log: String,
    },
    /// A `bpf(2)` command failed.
    #[error("bpf({op}) failed: {source}")]
    Syscall {
        /// The command, e.g. `BPF_MAP_CREATE sock_cgroup`.
        op: &'static str,
        /// errno.
        #[source]
        source: io::Error,
    },
    /// The verifier rejected the program (`BPF_PROG_LOAD`).
    #[error("bpf(BPF_PROG_LOAD) rejected the program: {source}{}", log_suffix(log))]
    Load {
        /// errno.
        #[source]
        source: io::Error,
        /// The verifier log.
        log: String,
    },
    /// The program loaded and attached, but [`crate::ConnectCapture::self_test`] did not
    /// get this process's own cgroup back.
    #[error("connect-time capture self-test failed: {0}")]
    SelfTest(String),
    /// Attaching at the cgroup2 root failed (`BPF_LINK_CREATE`).
    #[error("bpf(BPF_LINK_CREATE) at {cgroup} (cgroup/getsockname_unix) failed: {source}")]
    Attach {
        /// The cgroup2 root directory.
        cgroup: PathBuf,
        /// errno.
        #[source]
        source: io::Error,
    },
}

impl CaptureError {
    /// The errno of a failed system call, if that is what failed.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Read { source, .. }
            | Self::BtfLoad { source, .. }
            | Self::Syscall { source, .. }
            | Self::Load { source, .. }
            | Self::Attach { source, .. } => source.raw_os_error(),
            Self::Unavailable(_) | Self::Object(_) | Self::SelfTest(_) => None,
        }
    }
}

fn log_suffix(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("; kernel log:\n{log}")
    }
}
