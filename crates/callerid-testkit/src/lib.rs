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

pub mod corpus;
pub mod echo;
pub mod policy_bench;
pub mod reexec;
pub mod unix_server;

/// The top-level names of the identity JSON (DESIGN.md §2), each present in every
/// answer (null when not collected), for tests that check the contract's shape.
pub const IDENTITY_JSON_KEYS: [&str; 9] = [
    "version",
    "peer",
    "process",
    "cgroup",
    "namespaces",
    "user_namespace",
    "workload",
    "provenance",
    "warnings",
];

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

/// `true` when the shell finds `cmd` on `PATH` (for tests that drive `socat`, `setpriv`...).
pub fn have(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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
                    let me = Self {
                        mount,
                        path: path.clone(),
                        owned,
                    };
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

/// A real container runtime for end-to-end tests: podman with runc and a busybox image
/// imported from Debian's `busybox-static` (DESIGN.md §6).
pub mod podman {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::OnceLock;

    /// The image every test uses.
    pub const IMAGE: &str = "localhost/callerid-busybox:v1";

    /// Why podman cannot be used here, if it cannot.
    pub fn unavailable() -> Option<String> {
        if !super::is_root() {
            return Some("podman tests need root".into());
        }
        for tool in ["podman", "runc"] {
            let ok = Command::new(tool)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                return Some(format!(
                    "`{tool}` is not installed (apt-get install podman runc)"
                ));
            }
        }
        if !Path::new("/bin/busybox").exists() {
            return Some("/bin/busybox missing (apt-get install busybox-static)".into());
        }
        None
    }

    /// Imports the busybox image once per process (and reuses one already imported).
    ///
    /// The rootfs has `/bin/busybox` with applet links, and `lib`/`lib64` links into
    /// `/usr` so that a read-only bind mount of the host's `/usr` (merged-/usr Debian)
    /// lets dynamically linked host binaries — ours — run inside.
    pub fn image() -> io::Result<&'static str> {
        static DONE: OnceLock<Result<(), String>> = OnceLock::new();
        DONE.get_or_init(|| build_image().map_err(|e| e.to_string()))
            .as_ref()
            .map(|()| IMAGE)
            .map_err(|e| io::Error::other(e.clone()))
    }

    fn build_image() -> io::Result<()> {
        let exists = Command::new("podman")
            .args(["image", "exists", IMAGE])
            .status()?;
        if exists.success() {
            return Ok(());
        }
        let root = tempdir("callerid-busybox-root")?;
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin)?;
        std::fs::copy("/bin/busybox", bin.join("busybox"))?;
        for applet in ["sh", "ls", "cat", "sleep", "echo", "id", "true", "nc"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet))?;
        }
        std::os::unix::fs::symlink("usr/lib", root.join("lib"))?;
        std::os::unix::fs::symlink("usr/lib64", root.join("lib64"))?;
        for dir in ["usr", "x", "tmp", "proc", "sys", "dev", "etc"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-cf", "-", "."])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let out = Command::new("podman")
            .args(["import", "-", IMAGE])
            .stdin(tar.stdout.ok_or_else(|| io::Error::other("tar stdout"))?)
            .output()?;
        let _ = std::fs::remove_dir_all(&root);
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "podman import failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    fn tempdir(prefix: &str) -> io::Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            super::SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// A `podman run` command line with the flags this machine needs (runc: crun
    /// refuses hybrid cgroups; explicit ulimits: the sandbox lacks CAP_SYS_RESOURCE),
    /// the host's `/usr` mounted read-only, and `--cidfile` so the test learns the id.
    #[derive(Debug)]
    pub struct Run {
        cmd: Command,
        cidfile: PathBuf,
    }

    impl Run {
        /// Starts building `podman run` of [`IMAGE`] (call [`image`] first).
        pub fn new() -> io::Result<Self> {
            let cidfile = tempdir("callerid-cid")?.join("cid");
            let mut cmd = Command::new("podman");
            cmd.args(["--runtime", "runc", "run", "--rm", "--network=none"])
                .args([
                    "--ulimit",
                    "nofile=1024:1024",
                    "--ulimit",
                    "nproc=1024:1024",
                ])
                .args(["-v", "/usr:/usr:ro"])
                .arg("--cidfile")
                .arg(&cidfile);
            Ok(Self { cmd, cidfile })
        }

        /// Bind-mounts a host directory (read-write).
        pub fn volume(mut self, host: &Path, inside: &str) -> Self {
            self.cmd
                .arg("-v")
                .arg(format!("{}:{inside}", host.display()));
            self
        }

        /// Runs the container in a user namespace mapping 0..65536 to `base..`.
        pub fn userns(mut self, base: u32) -> Self {
            let map = format!("0:{base}:65536");
            self.cmd.args(["--uidmap", &map, "--gidmap", &map]);
            self
        }

        /// Adds raw `podman run` arguments.
        pub fn args<I, S>(mut self, args: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: AsRef<std::ffi::OsStr>,
        {
            self.cmd.args(args);
            self
        }

        /// Finishes with the image and the command to run inside; returns the command
        /// (to spawn or run) and the path of the file podman writes the full id into.
        pub fn command<I, S>(mut self, argv: I) -> (Command, PathBuf)
        where
            I: IntoIterator<Item = S>,
            S: AsRef<std::ffi::OsStr>,
        {
            self.cmd.arg(IMAGE).args(argv);
            (self.cmd, self.cidfile)
        }
    }

    /// Reads the 64-hex id podman wrote to a `--cidfile`, waiting up to ~10 s for it.
    pub fn read_cid(cidfile: &Path) -> io::Result<String> {
        for _ in 0..500 {
            if let Ok(s) = std::fs::read_to_string(cidfile) {
                let s = s.trim();
                if s.len() == 64 {
                    return Ok(s.to_owned());
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "podman wrote no container id",
        ))
    }
}
