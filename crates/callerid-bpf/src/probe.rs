//! Cheap checks of the environment, done before any `bpf(2)` call so that the reason
//! capture is unavailable can be told exactly.

use crate::error::{Capability, Unavailable};
use rustix::thread::CapabilitySet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Fixed inode numbers of the initial namespaces (`include/linux/proc_ns.h`).
const PROC_USER_INIT_INO: u64 = 0xEFFF_FFFD;
const PROC_PID_INIT_INO: u64 = 0xEFFF_FFFC;
/// The kernfs id of a cgroup hierarchy's root directory.
const CGROUP_ROOT_ID: u64 = 1;

/// What [`probe`] found: where to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// The cgroup2 hierarchy root directory (e.g. `/sys/fs/cgroup/unified` on hybrid hosts).
    pub cgroup2_root: PathBuf,
    /// `uname -r`.
    pub kernel_release: String,
}

/// Checks, without side effects, whether this process can load and attach the capture
/// program: kernel >= 6.7, initial user and pid namespaces, CAP_BPF + CAP_PERFMON +
/// CAP_NET_ADMIN effective, kernel BTF, and the cgroup2 hierarchy root visible.
pub fn probe() -> Result<Environment, Unavailable> {
    let kernel_release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    if !kernel_at_least(&kernel_release, 6, 7) {
        return Err(Unavailable::KernelTooOld {
            release: kernel_release,
        });
    }
    if ns_inode("user") != Some(PROC_USER_INIT_INO) {
        return Err(Unavailable::NotInitialUserNamespace);
    }
    let missing = missing_capabilities();
    if !missing.is_empty() {
        return Err(Unavailable::MissingCapabilities { missing });
    }
    if ns_inode("pid") != Some(PROC_PID_INIT_INO) {
        return Err(Unavailable::NotInitialPidNamespace);
    }
    if !Path::new(crate::loader::KERNEL_BTF).exists() {
        return Err(Unavailable::NoKernelBtf);
    }
    let mounts: Vec<(PathBuf, u64)> = cgroup2_mounts()
        .into_iter()
        .filter_map(|m| fs::metadata(&m).ok().map(|md| (m, md.ino())))
        .collect();
    // Several cgroup2 mounts can be visible (e.g. a sub-tree bind-mounted for a
    // container); any one of them that is the hierarchy root will do.
    match mounts.iter().find(|(_, id)| *id == CGROUP_ROOT_ID) {
        Some((root, _)) => Ok(Environment {
            cgroup2_root: root.clone(),
            kernel_release,
        }),
        None => match mounts.into_iter().next() {
            Some((mount, id)) => Err(Unavailable::NotCgroup2Root { mount, id }),
            None => Err(Unavailable::NoCgroup2Mount),
        },
    }
}

/// `true` when `release` (`uname -r`, e.g. `6.18.44-foo`) is at least `major.minor`.
pub(crate) fn kernel_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b))) => (a, b) >= (major, minor),
        _ => false,
    }
}

fn ns_inode(kind: &str) -> Option<u64> {
    fs::metadata(format!("/proc/self/ns/{kind}"))
        .ok()
        .map(|m| m.ino())
}

/// The effective capabilities the capture lacks. The kernel accepts CAP_SYS_ADMIN in
/// place of each of them (`bpf_capable`, `perfmon_capable`, `bpf_net_capable`).
fn missing_capabilities() -> Vec<Capability> {
    let eff = rustix::thread::capabilities(None)
        .map(|c| c.effective)
        .unwrap_or(CapabilitySet::empty());
    if eff.contains(CapabilitySet::SYS_ADMIN) {
        return Vec::new();
    }
    [
        (CapabilitySet::BPF, Capability::Bpf),
        (CapabilitySet::PERFMON, Capability::Perfmon),
        (CapabilitySet::NET_ADMIN, Capability::NetAdmin),
    ]
    .into_iter()
    .filter(|(flag, _)| !eff.contains(*flag))
    .map(|(_, cap)| cap)
    .collect()
}

/// Every cgroup2 mount point in `/proc/self/mountinfo`, in order.
fn cgroup2_mounts() -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if right.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            left.split_whitespace()
                .nth(4)
                .map(|p| PathBuf::from(unescape_mountinfo(p)))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert!(kernel_at_least("6.7.0", 6, 7));
        assert!(kernel_at_least("6.18.44-fc-v1252", 6, 7));
        assert!(kernel_at_least("7.0", 6, 7));
        assert!(!kernel_at_least("6.6.30-generic", 6, 7));
        assert!(!kernel_at_least("5.15.0", 6, 7));
        assert!(!kernel_at_least("garbage", 6, 7));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(
            unescape_mountinfo("/sys/fs/cgroup/unified"),
            "/sys/fs/cgroup/unified"
        );
        assert_eq!(unescape_mountinfo(r"/x\"), r"/x\");
    }
}
