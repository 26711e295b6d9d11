//! Verified reads under `/proc/<pid>`.
//!
//! The recipe (DESIGN.md §3 step 4): open `/proc/<pid>` as a directory fd, **then**
//! check that the pidfd's process is still alive (or a zombie), then read only through
//! that dirfd. If the process was alive after the open, its pid could not have been
//! recycled before it, so the dirfd is that process's; and reads through a
//! `/proc/<pid>` dirfd fail with `ESRCH` once its process is reaped, so they never return
//! another process's data. Nothing here reads `/proc/<pid>/...` by path.

use crate::parse::ParseError;
use rustix::fs::{Mode, OFlags};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};

/// A `/proc/<pid>` directory fd that was verified against the process's pidfd after it
/// was opened.
#[derive(Debug)]
pub(crate) struct ProcDir {
    fd: OwnedFd,
}

impl ProcDir {
    /// Opens `/proc/<pid>` and then runs `verify_alive`, which must return `Ok` only if
    /// the pidfd's process is still alive or a zombie.
    pub(crate) fn open_verified(
        pid: u32,
        verify_alive: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<Self> {
        let buf = itoa_buf(pid);
        let fd = rustix::fs::open(
            buf.as_path(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        verify_alive()?;
        Ok(Self { fd })
    }

    /// Reads a small text file under the directory (`comm`, `status`, `cgroup`,
    /// `uid_map`, …).
    pub(crate) fn read(&self, name: &str) -> io::Result<String> {
        let fd = rustix::fs::openat(
            self.fd.as_fd(),
            name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        let mut s = String::with_capacity(256);
        std::fs::File::from(fd)
            .take(1 << 20)
            .read_to_string(&mut s)?;
        Ok(s)
    }

    /// Reads a symlink under the directory (`exe`, …): into a stack buffer of
    /// `PATH_MAX` bytes (one exact allocation for the answer), through the heap only for
    /// a longer target.
    pub(crate) fn readlink(&self, name: &str) -> io::Result<String> {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let (link, rest) = rustix::fs::readlinkat_raw(self.fd.as_fd(), name, &mut buf)?;
        if !rest.is_empty() {
            return Ok(String::from_utf8_lossy(link).into_owned());
        }
        let target = rustix::fs::readlinkat(self.fd.as_fd(), name, Vec::with_capacity(8192))?;
        Ok(target.to_string_lossy().into_owned())
    }

    /// The inode of a namespace link (`ns/user` → `user:[4026531837]`), read into a
    /// stack buffer.
    pub(crate) fn readlink_ns(&self, name: &str) -> io::Result<u64> {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 64];
        let (link, _) = rustix::fs::readlinkat_raw(self.fd.as_fd(), name, &mut buf)?;
        let text = std::str::from_utf8(link).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, "namespace link is not UTF-8")
        })?;
        parse_ns_link(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// `comm` without its newline: one read into a stack buffer (the kernel's answer is
    /// at most 16 bytes plus the newline, and procfs hands it out in one read).
    pub(crate) fn read_comm(&self) -> io::Result<String> {
        let fd = rustix::fs::openat(
            self.fd.as_fd(),
            "comm",
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        let mut buf = [0u8; 64];
        let n = rustix::io::read(&fd, &mut buf)?;
        let line = buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]);
        Ok(String::from_utf8_lossy(line).into_owned())
    }
}

/// `/proc/<pid>` without allocating.
struct PathBuf32 {
    buf: [u8; 32],
    len: usize,
}

impl PathBuf32 {
    fn as_path(&self) -> &std::ffi::CStr {
        // The buffer always holds "/proc/<digits>\0" written by `itoa_buf`.
        std::ffi::CStr::from_bytes_with_nul(&self.buf[..=self.len]).unwrap_or(c"/proc/self")
    }
}

fn itoa_buf(pid: u32) -> PathBuf32 {
    let mut buf = [0u8; 32];
    buf[..6].copy_from_slice(b"/proc/");
    let mut digits = [0u8; 10];
    let mut n = pid;
    let mut k = 0;
    loop {
        digits[k] = b'0' + (n % 10) as u8;
        k += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..k {
        buf[6 + i] = digits[k - 1 - i];
    }
    PathBuf32 { buf, len: 6 + k }
}

/// The fields of `/proc/<pid>/status` we use on the fallback path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Status {
    /// `PPid:`.
    pub(crate) ppid: Option<u32>,
    /// `Uid:` real, effective, saved, fs.
    pub(crate) uid: Option<[u32; 4]>,
    /// `Gid:` real, effective, saved, fs.
    pub(crate) gid: Option<[u32; 4]>,
    /// `Groups:`.
    pub(crate) groups: Option<Vec<u32>>,
    /// First letter of `State:` (`R`, `S`, `Z`, …).
    pub(crate) state: Option<char>,
}

const STATUS: &str = "/proc/<pid>/status";

/// Parses `/proc/<pid>/status`, keeping the fields above; lines it does not know are
/// ignored, known lines with a bad shape are errors.
pub(crate) fn parse_status(text: &str) -> Result<Status, ParseError> {
    let mut st = Status::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some((key, value)) = line.split_once(':') else {
            if line.is_empty() {
                continue;
            }
            return Err(ParseError::new(STATUS, n, "line without ':'"));
        };
        let value = value.trim();
        match key {
            "PPid" => {
                st.ppid = Some(
                    value
                        .parse()
                        .map_err(|_| ParseError::new(STATUS, n, "bad PPid"))?,
                );
            }
            "Uid" | "Gid" => {
                let mut ids = [0u32; 4];
                let mut it = value.split_ascii_whitespace();
                for id in &mut ids {
                    *id = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or(ParseError::new(STATUS, n, "expected four ids"))?;
                }
                if it.next().is_some() {
                    return Err(ParseError::new(STATUS, n, "more than four ids"));
                }
                if key == "Uid" {
                    st.uid = Some(ids);
                } else {
                    st.gid = Some(ids);
                }
            }
            "Groups" => {
                let groups = value
                    .split_ascii_whitespace()
                    .map(|g| g.parse::<u32>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| ParseError::new(STATUS, n, "bad group id"))?;
                st.groups = Some(groups);
            }
            "State" => {
                st.state = Some(value.chars().next().ok_or(ParseError::new(
                    STATUS,
                    n,
                    "empty State",
                ))?);
            }
            _ => {}
        }
    }
    Ok(st)
}

/// Parses a namespace link target such as `user:[4026531837]` into the inode number.
pub(crate) fn parse_ns_link(link: &str) -> Result<u64, ParseError> {
    const WHAT: &str = "/proc/<pid>/ns/<type>";
    let (_, rest) =
        link.split_once(":[")
            .ok_or(ParseError::new(WHAT, 0, "expected type:[inode]"))?;
    let num = rest
        .strip_suffix(']')
        .ok_or(ParseError::new(WHAT, 0, "expected type:[inode]"))?;
    num.parse()
        .map_err(|_| ParseError::new(WHAT, 0, "inode is not a number"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn status_fields() {
        let t = "Name:\tsh\nState:\tS (sleeping)\nTgid:\t5\nPPid:\t1\nUid:\t0\t1\t2\t3\nGid:\t4\t5\t6\t7\nGroups:\t10 20 \nNSpid:\t5\n";
        let s = parse_status(t).unwrap();
        assert_eq!(s.ppid, Some(1));
        assert_eq!(s.uid, Some([0, 1, 2, 3]));
        assert_eq!(s.gid, Some([4, 5, 6, 7]));
        assert_eq!(s.groups, Some(vec![10, 20]));
        assert_eq!(s.state, Some('S'));
        assert_eq!(parse_status("Groups:\t\n").unwrap().groups, Some(vec![]));
        assert!(parse_status("Uid:\t0 1 2\n").is_err());
        assert!(parse_status("PPid:\tx\n").is_err());
    }

    #[test]
    fn ns_links() {
        assert_eq!(parse_ns_link("user:[4026531837]"), Ok(4026531837));
        assert!(parse_ns_link("user:4026531837").is_err());
        assert!(parse_ns_link("user:[x]").is_err());
    }

    #[test]
    fn proc_path() {
        assert_eq!(itoa_buf(0).as_path(), c"/proc/0");
        assert_eq!(itoa_buf(4242).as_path(), c"/proc/4242");
        assert_eq!(itoa_buf(u32::MAX).as_path(), c"/proc/4294967295");
    }

    proptest! {
        #[test]
        fn status_garbage_never_panics(s in "([A-Za-z]{0,6}:?[\t 0-9a-z()-]{0,30}\n){0,8}") {
            let _ = parse_status(&s);
        }

        #[test]
        fn status_any_text_never_panics(s in ".{0,300}") {
            let _ = parse_status(&s);
        }

        #[test]
        fn ns_link_never_panics(s in ".{0,40}") {
            let _ = parse_ns_link(&s);
        }
    }
}
