//! The cgroup2 mount (from `/proc/self/mountinfo`), cgroup id → path through
//! `open_by_handle_at`, and `/proc/<pid>/cgroup` parsing for the fallback path.

use crate::parse::ParseError;
use crate::sys;
use rustix::fs::{Mode, OFlags};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One line of mountinfo that matters to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// Root of the mount within its filesystem (`/` for a whole cgroup2 tree).
    pub(crate) root: String,
    /// Where it is mounted, relative to our root.
    pub(crate) mount_point: String,
    /// Filesystem type.
    pub(crate) fstype: String,
}

const MOUNTINFO: &str = "mountinfo";

/// Undoes the kernel's octal escaping of space, tab, newline and backslash (`\040`,
/// `\011`, `\012`, `\134`) in mountinfo paths.
pub(crate) fn unescape_octal(s: &str, line: usize) -> Result<String, ParseError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let digits =
                b.get(i + 1..i + 4)
                    .ok_or(ParseError::new(MOUNTINFO, line, "bad escape"))?;
            let mut v: u32 = 0;
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return Err(ParseError::new(MOUNTINFO, line, "bad escape"));
                }
                v = v * 8 + u32::from(d - b'0');
            }
            let byte =
                u8::try_from(v).map_err(|_| ParseError::new(MOUNTINFO, line, "bad escape"))?;
            out.push(byte);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ParseError::new(MOUNTINFO, line, "path is not UTF-8"))
}

/// Parses `/proc/self/mountinfo` text.
pub(crate) fn parse_mountinfo(text: &str) -> Result<Vec<MountEntry>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let (left, right) =
            line.split_once(" - ")
                .ok_or(ParseError::new(MOUNTINFO, n, "no ' - ' separator"))?;
        let f: Vec<&str> = left.split(' ').collect();
        if f.len() < 6 {
            return Err(ParseError::new(
                MOUNTINFO,
                n,
                "too few fields before the separator",
            ));
        }
        if f[0].parse::<u64>().is_err() || f[1].parse::<u64>().is_err() {
            return Err(ParseError::new(MOUNTINFO, n, "mount ids are not numbers"));
        }
        let fstype = right
            .split(' ')
            .next()
            .filter(|t| !t.is_empty())
            .ok_or(ParseError::new(MOUNTINFO, n, "no filesystem type"))?;
        out.push(MountEntry {
            root: unescape_octal(f[3], n)?,
            mount_point: unescape_octal(f[4], n)?,
            fstype: unescape_octal(fstype, n)?,
        });
    }
    Ok(out)
}

/// The cgroup2 mount to use: the last cgroup2 mount whose root is the whole tree (a
/// later mount over the same point hides earlier ones); otherwise the last cgroup2 mount
/// of a subtree (inside a cgroup namespace).
pub(crate) fn pick_cgroup2(entries: &[MountEntry]) -> Option<&MountEntry> {
    let v2 = || entries.iter().rev().filter(|e| e.fstype == "cgroup2");
    v2().find(|e| e.root == "/").or_else(|| v2().next())
}

/// The `0::` (cgroup v2) line of `/proc/<pid>/cgroup`: its path, with a ` (deleted)`
/// suffix stripped, and whether that suffix was there. `Ok(None)` when there is no v2
/// line (pure v1 host).
pub(crate) fn parse_proc_cgroup_v2(text: &str) -> Result<Option<(&str, bool)>, ParseError> {
    const WHAT: &str = "/proc/<pid>/cgroup";
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(hier), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError::new(WHAT, n, "expected id:controllers:path"));
        };
        if hier.parse::<u32>().is_err() {
            return Err(ParseError::new(WHAT, n, "hierarchy id is not a number"));
        }
        if !path.starts_with('/') {
            return Err(ParseError::new(WHAT, n, "path is not absolute"));
        }
        if hier == "0" && ctrls.is_empty() {
            if found.is_some() {
                return Err(ParseError::new(WHAT, n, "two cgroup v2 lines"));
            }
            found = Some(match path.strip_suffix(" (deleted)") {
                Some(p) => (p, true),
                None => (path, false),
            });
        }
    }
    Ok(found)
}

/// The cgroup2 mount we resolve cgroup ids on.
#[derive(Debug)]
pub(crate) struct Cgroup2 {
    /// Mount point (absolute, as in mountinfo).
    pub(crate) mount_point: PathBuf,
    /// Root of the mounted subtree within the cgroup2 hierarchy (`/` normally).
    pub(crate) root: String,
    /// `O_PATH|O_DIRECTORY` fd of the mount point, for `open_by_handle_at`.
    pub(crate) fd: OwnedFd,
}

impl Cgroup2 {
    /// Finds and opens the cgroup2 mount from `/proc/self/mountinfo`.
    pub(crate) fn discover() -> Result<Option<Self>, String> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
        let entries = parse_mountinfo(&text).map_err(|e| e.to_string())?;
        let Some(e) = pick_cgroup2(&entries) else {
            return Ok(None);
        };
        let fd = rustix::fs::open(
            e.mount_point.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|err| format!("open {}: {err}", e.mount_point))?;
        Ok(Some(Self {
            mount_point: PathBuf::from(&e.mount_point),
            root: e.root.clone(),
            fd,
        }))
    }

    /// cgroup id → path relative to the cgroup2 root (e.g. `/system.slice/x.service`),
    /// through `open_by_handle_at` and a readlink of the resulting fd.
    pub(crate) fn path_of_id(&self, id: u64) -> io::Result<String> {
        let dir = sys::handle::open_cgroup_by_id(self.fd.as_fd(), id)?;
        let link = rustix::fs::readlinkat(
            rustix::fs::CWD,
            format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir)),
            Vec::new(),
        )?;
        let link = Path::new(std::ffi::OsStr::from_bytes(link.as_bytes()));
        let rel = link.strip_prefix(&self.mount_point).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "cgroup outside the cgroup2 mount",
            )
        })?;
        Ok(self.join_root(rel))
    }

    /// The id (inode) of the cgroup at `path` (relative to the cgroup2 root).
    pub(crate) fn id_of_path(&self, path: &str) -> io::Result<u64> {
        let rel = self.strip_root(path).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "cgroup outside our cgroup2 mount")
        })?;
        let st = if rel.is_empty() {
            rustix::fs::fstat(&self.fd)?
        } else {
            rustix::fs::statat(&self.fd, rel, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?
        };
        Ok(st.st_ino)
    }

    fn join_root(&self, rel: &Path) -> String {
        let rel = rel.to_string_lossy();
        let root = self.root.trim_end_matches('/');
        if rel.is_empty() {
            if root.is_empty() {
                "/".to_owned()
            } else {
                root.to_owned()
            }
        } else {
            format!("{root}/{rel}")
        }
    }

    fn strip_root<'p>(&self, path: &'p str) -> Option<&'p str> {
        let root = self.root.trim_end_matches('/');
        let rest = path.strip_prefix(root)?;
        if rest.is_empty() {
            return Some("");
        }
        rest.strip_prefix('/')
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HYBRID: &str = "\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
40 22 0:40 /sub /mnt/with\\040space rw - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_cgroup2_on_hybrid_hosts() {
        let e = parse_mountinfo(HYBRID).unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!(e[4].mount_point, "/mnt/with space");
        assert_eq!(e[4].root, "/sub");
        let pick = pick_cgroup2(&e).unwrap();
        assert_eq!(pick.mount_point, "/sys/fs/cgroup/unified");
    }

    #[test]
    fn unescapes() {
        assert_eq!(
            unescape_octal(r"a\040b\134c\011d\012", 1).unwrap(),
            "a b\\c\td\n"
        );
        assert!(unescape_octal(r"a\04", 1).is_err());
        assert!(unescape_octal(r"a\999", 1).is_err());
        assert!(unescape_octal(r"\777", 1).is_err());
    }

    #[test]
    fn proc_cgroup() {
        let t = "12:memory:/x\n1:name=systemd:/user.slice\n0::/krt7 (deleted)\n";
        assert_eq!(parse_proc_cgroup_v2(t).unwrap(), Some(("/krt7", true)));
        assert_eq!(parse_proc_cgroup_v2("0::/\n").unwrap(), Some(("/", false)));
        assert_eq!(
            parse_proc_cgroup_v2("0::/../../..\n").unwrap(),
            Some(("/../../..", false))
        );
        assert_eq!(parse_proc_cgroup_v2("4:memory:/a\n").unwrap(), None);
        assert!(parse_proc_cgroup_v2("0::x\n").is_err());
        assert!(parse_proc_cgroup_v2("garbage\n").is_err());
        assert!(parse_proc_cgroup_v2("0::/a\n0::/b\n").is_err());
        assert_eq!(
            parse_proc_cgroup_v2("0::/a:b/c\n").unwrap(),
            Some(("/a:b/c", false)),
            "colons inside the path belong to the path"
        );
    }

    proptest! {
        #[test]
        fn mountinfo_garbage_never_panics(s in "(.{0,80}\n){0,6}") {
            let _ = parse_mountinfo(&s);
        }

        #[test]
        fn mountinfo_shaped_garbage_never_panics(
            s in "([0-9]{1,3} [0-9]{1,3} [0-9:]{0,5} [/a-z\\\\0-9]{0,12} [/a-z\\\\0-9]{0,12} [a-z,]{0,6}( - )?[a-z0-9 ]{0,12}\n){0,4}"
        ) {
            if let Ok(e) = parse_mountinfo(&s) {
                let _ = pick_cgroup2(&e);
            }
        }

        #[test]
        fn proc_cgroup_garbage_never_panics(s in "([0-9a-z=,:/ ()]{0,40}\n){0,6}") {
            if let Ok(Some((p, _))) = parse_proc_cgroup_v2(&s) {
                prop_assert!(p.starts_with('/'));
            }
        }
    }
}
