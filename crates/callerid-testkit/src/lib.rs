//! Test support shared by callerid's integration tests.
//!
//! Tests use the real kernel: real cgroups, namespaces and a real container runtime.
//! A test that cannot have what it needs calls [`skip`], which prints why and returns
//! `true` so the test can return early — except under `CALLERID_REQUIRE_PRIVILEGED=1`
//! (set by `.ci/run`), where a skip is a failure.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// `true` when CI demands that privileged tests run rather than skip.
pub fn privileged_required() -> bool {
    std::env::var("CALLERID_REQUIRE_PRIVILEGED").is_ok_and(|v| v == "1")
}

/// Reports a skipped test. Panics instead under `CALLERID_REQUIRE_PRIVILEGED=1`.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    if privileged_required() {
        panic!("{test}: cannot run ({why}) and CALLERID_REQUIRE_PRIVILEGED=1 forbids skipping");
    }
    eprintln!("SKIP {test}: {why}");
}

/// `true` when running as uid 0.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Returns `true` (after reporting the skip) when the test must stop because we are
/// not root. Use as `if testkit::need_root("name") { return; }`.
#[track_caller]
pub fn need_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    skip(test, "needs root");
    true
}

/// The cgroup2 mount point, from `/proc/self/mountinfo`.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        if fstype != "cgroup2" {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A cgroup the test created under the cgroup2 mount; removed on drop (its processes
/// are moved back to the root cgroup first).
#[derive(Debug)]
pub struct TestCgroup {
    mount: PathBuf,
    path: PathBuf,
    owned: Vec<PathBuf>,
}

impl TestCgroup {
    /// Creates `<cgroup2>/callerid-test-<pid>-<n>/<rel>` (with intermediate
    /// directories, so `rel` may be a whole runtime-shaped path such as
    /// `system.slice/docker-<id>.scope`).
    pub fn new(rel: &str) -> io::Result<Self> {
        let mount = cgroup2_mount()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no cgroup2 mount"))?;
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let base = mount.join(format!("callerid-test-{}-{n}", std::process::id()));
        Self::create(mount, base, rel)
    }

    /// Creates exactly `<cgroup2>/<rel>` (with intermediate directories). Every
    /// directory it created is removed on drop; existing ones are left alone.
    pub fn at_root(rel: &str) -> io::Result<Self> {
        let mount = cgroup2_mount()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no cgroup2 mount"))?;
        let base = mount.clone();
        Self::create(mount, base, rel)
    }

    fn create(mount: PathBuf, base: PathBuf, rel: &str) -> io::Result<Self> {
        let mut owned = Vec::new();
        let mut path = mount.clone();
        let full = base.join(rel.trim_start_matches('/'));
        for comp in full.strip_prefix(&mount).unwrap_or(&full).components() {
            path.push(comp);
            match fs::create_dir(&path) {
                Ok(()) => owned.push(path.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    let me = Self { mount, path: path.clone(), owned };
                    drop(me);
                    return Err(e);
                }
            }
        }
        Ok(Self { mount, path, owned })
    }

    /// Absolute directory of the cgroup.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// Path relative to the cgroup2 mount, with a leading `/` (as the kernel reports it).
    pub fn rel_path(&self) -> String {
        let rel = self.path.strip_prefix(&self.mount).unwrap_or(&self.path);
        format!("/{}", rel.display())
    }

    /// The cgroup id (the directory's inode).
    pub fn id(&self) -> u64 {
        fs::metadata(&self.path).map(|m| m.ino()).unwrap_or(0)
    }

    /// Moves a process into this cgroup.
    pub fn add_pid(&self, pid: u32) -> io::Result<()> {
        fs::write(self.path.join("cgroup.procs"), pid.to_string())
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for dir in self.owned.iter().rev() {
            evacuate(&self.mount, dir);
            // A cgroup whose last process is a zombie can be busy for a moment.
            for _ in 0..50 {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        }
    }
}

/// Moves every process of `dir` and its descendants to the root cgroup.
fn evacuate(mount: &Path, dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                evacuate(mount, &e.path());
            }
        }
    }
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines() {
            let _ = fs::write(mount.join("cgroup.procs"), pid);
        }
    }
}
