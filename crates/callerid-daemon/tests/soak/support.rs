//! A gate daemon in a process of its own (this test binary re-executed in the `daemon`
//! role), its resource figures from /proc, backends, and the audit log tailer.

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Upper bound for waiting on something asynchronous: a liveness deadline, never a
/// timing assertion (a test only fails when it is exceeded by far).
pub(crate) const PATIENCE: Duration = Duration::from_secs(120);

pub(crate) const ROLE_ENV: &str = "CALLERID_SOAK_ROLE";

/// Prints a measured figure to the test log: straight to stderr, past libtest's
/// output capture, so CI logs show it without `--nocapture`.
macro_rules! figure {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
pub(crate) use figure;

/// `CALLERID_SOAK=long` selects the long form (1 M connections, …).
pub(crate) fn long_form() -> bool {
    std::env::var("CALLERID_SOAK").is_ok_and(|v| v == "long")
}

/// A number from the environment, or the default.
pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The three scenarios measure one daemon each and all want both CPUs: one at a time.
pub(crate) fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Raises this process's RLIMIT_NOFILE towards `want` (children — the daemon among
/// them — inherit it) and returns the soft limit now in force. Beyond the hard limit
/// this needs CAP_SYS_RESOURCE; without it (a container's root often lacks it) the soft
/// limit is raised to the hard one and the caller scales down.
pub(crate) fn raise_nofile(want: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    let soft = cur.current.unwrap_or(u64::MAX);
    if soft >= want {
        return soft;
    }
    let hard = cur.maximum.unwrap_or(u64::MAX);
    let set = |current: u64, maximum: u64| {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(current),
                maximum: Some(maximum),
            },
        )
    };
    if set(want, hard.max(want)).is_ok() {
        return want;
    }
    set(hard, hard).expect("raise RLIMIT_NOFILE to its hard limit");
    hard
}

/// A command that runs this test binary in `role`.
pub(crate) fn role_command(role: &str) -> Command {
    role_command_of(&std::env::current_exe().expect("current_exe"), role)
}

/// A copy of this test binary that any user can run (the build directory may be under
/// a home only root can enter), in a directory removed on drop.
pub(crate) fn public_copy_of_self() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("callerid-soak-bin")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let exe = dir.path().join("soak");
    std::fs::copy(std::env::current_exe().expect("current_exe"), &exe).expect("copy self");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (dir, exe)
}

/// A command that runs `exe` (this test binary or a copy) in `role`.
pub(crate) fn role_command_of(exe: &Path, role: &str) -> Command {
    let mut c = Command::new(exe);
    c.args([
        "--exact",
        "role_entry",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(ROLE_ENV, role)
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    c
}

/// Reads a child's stdout until a line starting with `prefix` (libtest prints its own
/// lines first); returns the rest of that line.
pub(crate) fn read_marked(out: &mut BufReader<ChildStdout>, prefix: &str) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(rest) = line.strip_prefix(prefix) {
            return Some(rest.trim_end().to_owned());
        }
    }
}

/// Dispatches to the role named in the environment, then exits the process.
pub(crate) fn role_entry() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let code = match role.as_str() {
        "daemon" => daemon_role(),
        "client" => crate::soak::client_role(),
        "attacker" => crate::slowloris::attacker_role(),
        other => {
            eprintln!("unknown role {other}");
            3
        }
    };
    std::process::exit(code);
}

/// The `daemon` role: `callerid gate` as the CLI runs it (its own multi-threaded
/// runtime, signals handled: SIGHUP reopens the audit log, SIGTERM drains and stops),
/// with the gate config in `$CALLERID_SOAK_CONFIG` and the audit log and metrics
/// socket next to it.
fn daemon_role() -> i32 {
    use callerid_daemon::{AuditSink, Daemon, DaemonConfig, MetricsAddr};
    let config = PathBuf::from(std::env::var("CALLERID_SOAK_CONFIG").expect("config path"));
    let dir = config.parent().expect("config dir").to_path_buf();
    let mut cfg = DaemonConfig::gate(config).expect("gate config");
    cfg.audit = Some(AuditSink::File(dir.join("audit.log")));
    // 4x the default, so that the writer thread being starved for a few seconds on a
    // busy 2-core machine drops nothing: a dropped record would look like a missing
    // audit line (drops are asserted to be zero). The queue is preallocated: each slot
    // is ~800 bytes, so this is ~13 MiB of the daemon's baseline RSS (3 MiB by default).
    cfg.audit_queue = 1 << 14;
    cfg.metrics = Some(MetricsAddr::Unix(dir.join("metrics.sock")));
    cfg.notify = false;
    cfg.socket_activation = false;
    cfg.drain_timeout = Duration::from_secs(5);
    // For comparing figures without the BPF program (and what libbpf keeps).
    if std::env::var("CALLERID_SOAK_NO_CAPTURE").is_ok_and(|v| v == "1") {
        cfg.connect_capture = callerid_daemon::ConnectCapture::Off;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let r = rt.block_on(async {
        let daemon = Daemon::start(cfg)?;
        let mut out = std::io::stdout().lock();
        for n in daemon.notes() {
            let _ = writeln!(out, "note {n}");
        }
        let capture = daemon.info().iter().any(|i| i.contains("capture: on"));
        let _ = writeln!(out, "ready capture={capture}");
        let _ = out.flush();
        drop(out);
        daemon.run().await
    });
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("daemon: {e}");
            1
        }
    }
}

/// Resource figures of a process from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    pub(crate) fds: usize,
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
    pub(crate) threads: u64,
}

pub(crate) fn usage(pid: u32) -> Usage {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Usage {
        fds,
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
    }
}

/// A gate running in a child process, in a directory of its own.
pub(crate) struct GateProcess {
    pub(crate) dir: tempfile::TempDir,
    child: Child,
    /// Whether connect-time cgroup capture (BPF) is on.
    pub(crate) capture: bool,
}

impl GateProcess {
    /// Writes `config` (with `{dir}` replaced by the daemon's directory) and starts the
    /// gate on it; returns once it listens.
    pub(crate) fn start(config: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("callerid-soak")
            .tempdir()
            .expect("tempdir");
        // Clients that run as another user reach the sockets (mode 0666) through it.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod tempdir");
        let path = dir.path().join("gate.toml");
        let text = config.replace("{dir}", dir.path().to_str().expect("utf-8 tempdir"));
        std::fs::write(&path, text).expect("write config");
        let mut child = role_command("daemon")
            .env("CALLERID_SOAK_CONFIG", &path)
            .env("CALLERID_LOG", "warn")
            .spawn()
            .expect("spawn daemon");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let ready = read_marked(&mut out, "ready ").expect("daemon did not start");
        let capture = ready.contains("capture=true");
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Self {
            dir,
            child,
            capture,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn usage(&self) -> Usage {
        usage(self.pid())
    }

    fn signal(&self, sig: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid() as i32) {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    /// SIGHUP: reload the policy and reopen the audit log.
    pub(crate) fn hup(&self) {
        self.signal(rustix::process::Signal::HUP);
    }

    /// Scrapes the metrics endpoint.
    pub(crate) fn scrape(&self) -> String {
        let mut s = UnixStream::connect(self.path("metrics.sock")).expect("metrics socket");
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("metrics request");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("metrics answer");
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }

    /// Waits until `callerid_connections_active` of `listener` is 0 (every relay
    /// ended), up to [`PATIENCE`].
    pub(crate) fn wait_idle(&self, listener: &str) {
        let series = format!(r#"callerid_connections_active{{listener="{listener}"}}"#);
        let deadline = Instant::now() + PATIENCE;
        while sample(&self.scrape(), &series).unwrap_or(0.0) > 0.0 {
            assert!(Instant::now() < deadline, "relays still open: {series}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, and the exit status must be success within [`PATIENCE`].
    pub(crate) fn stop(mut self) {
        self.signal(rustix::process::Signal::TERM);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait daemon") {
                assert!(st.success(), "daemon exited with {st}");
                return;
            }
            assert!(Instant::now() < deadline, "daemon did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for GateProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Value of a sample in Prometheus text: `name{labels}` exactly as written.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == series).then(|| v.parse().ok()).flatten()
    })
}

/// Connects, retrying while the listener's backlog is full (`EAGAIN`) up to
/// [`PATIENCE`].
pub(crate) fn connect(path: &Path) -> std::io::Result<UnixStream> {
    let deadline = Instant::now() + PATIENCE;
    let mut pause = Duration::from_millis(1);
    loop {
        match UnixStream::connect(path) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            r => return r,
        }
    }
}

/// Backends on a tokio runtime of their own in the test process.
pub(crate) struct Backends {
    rt: Option<tokio::runtime::Runtime>,
}

impl Backends {
    pub(crate) fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("backend runtime");
        Self { rt: Some(rt) }
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("runtime")
    }

    /// An echo backend: every connection gets back what it sends, until EOF.
    pub(crate) fn echo(&self, path: &Path) {
        let l = {
            let _g = self.rt().enter();
            tokio::net::UnixListener::bind(path).expect("bind backend")
        };
        self.rt().spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    use tokio::io::AsyncWriteExt;
                    let _ = w.shutdown().await;
                });
            }
        });
    }

    /// The soak backend: reads the PROXY v2 header, then the client's claim
    /// `<pid> <pidfs id> <cgroup id>\n`, and answers `ok\n` when the header's TLVs say
    /// the same, `bad …\n` otherwise (the client counts it as a misattribution), then
    /// waits for EOF.
    pub(crate) fn proxy_check(&self, path: &Path, stats: Arc<BackendStats>) {
        let l = {
            let _g = self.rt().enter();
            tokio::net::UnixListener::bind(path).expect("bind backend")
        };
        self.rt().spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let stats = stats.clone();
                tokio::spawn(async move {
                    check_one(s, &stats).await;
                });
            }
        });
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// What the soak backend saw.
#[derive(Debug, Default)]
pub(crate) struct BackendStats {
    pub(crate) connections: AtomicU64,
    pub(crate) verified: AtomicU64,
    pub(crate) mismatched: AtomicU64,
    pub(crate) no_request: AtomicU64,
}

async fn check_one(mut s: tokio::net::UnixStream, stats: &BackendStats) {
    use callerid_daemon::proxy::{Header, Tlv};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    stats.connections.fetch_add(1, Ordering::Relaxed);
    let mut head = vec![0u8; 16];
    if s.read_exact(&mut head).await.is_err() {
        stats.mismatched.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
    head.resize(16 + len, 0);
    if s.read_exact(&mut head[16..]).await.is_err() {
        stats.mismatched.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let Ok((header, _)) = Header::parse(&head) else {
        stats.mismatched.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let (r, mut w) = s.split();
    let mut r = tokio::io::BufReader::new(r);
    let mut line = String::new();
    match r.read_line(&mut line).await {
        Ok(n) if n > 0 && line.ends_with('\n') => {}
        // The client exited before (or while) sending its request.
        _ => {
            stats.no_request.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    let claim: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let seen = [
        header.tlv_u32(Tlv::Pid).map(u64::from),
        header.tlv_u64(Tlv::PidfsId),
        header.tlv_u64(Tlv::CgroupId),
    ];
    let answer = if claim.len() == 3 && seen.iter().zip(&claim).all(|(s, c)| *s == Some(*c)) {
        stats.verified.fetch_add(1, Ordering::Relaxed);
        "ok\n".to_owned()
    } else {
        stats.mismatched.fetch_add(1, Ordering::Relaxed);
        format!("bad claim {claim:?} header {seen:?}\n")
    };
    let _ = w.write_all(answer.as_bytes()).await;
    // Until the client closes (it may already have exited).
    let mut sink = [0u8; 64];
    while matches!(r.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// Per client process (pidfs id), what the audit log said about its connections.
#[derive(Debug, Default, Clone)]
pub(crate) struct Attributed {
    pub(crate) pids: Vec<u64>,
    pub(crate) uids: Vec<u64>,
    pub(crate) cgroups: Vec<String>,
    /// Deciding rule names (`-` for the policy default).
    pub(crate) rules: Vec<String>,
    pub(crate) allowed: u64,
    pub(crate) denied: u64,
}

/// Follows the audit log as the daemon writes it (also across rotation: the file is
/// renamed away and the daemon reopens on SIGHUP), aggregating lines by pidfs id so
/// memory stays small for a million lines.
pub(crate) struct AuditTail {
    pub(crate) lines: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<AuditSummary>>,
}

#[derive(Debug, Default)]
pub(crate) struct AuditSummary {
    pub(crate) by_pidfs: HashMap<u64, Attributed>,
    /// Lines with no peer, pid or pidfs id (an identification failure), kept whole.
    pub(crate) unattributable: Vec<String>,
    pub(crate) other_listener: u64,
    pub(crate) files: u64,
    /// Lines by `cgroup.at` (`connect`, `now`, `exit`).
    pub(crate) cgroup_at: HashMap<String, u64>,
}

impl AuditTail {
    pub(crate) fn start(path: PathBuf, listener: &'static str) -> Self {
        let lines = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (l2, s2) = (lines.clone(), stop.clone());
        let join = std::thread::spawn(move || tail(&path, listener, &l2, &s2));
        Self {
            lines,
            stop,
            join: Some(join),
        }
    }

    /// Waits until at least `n` lines were read (up to [`PATIENCE`]), then stops.
    pub(crate) fn finish(mut self, n: u64) -> AuditSummary {
        let deadline = Instant::now() + PATIENCE;
        while self.lines.load(Ordering::Relaxed) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.join
            .take()
            .expect("tail thread")
            .join()
            .expect("tail thread panicked")
    }
}

fn tail(path: &Path, listener: &str, count: &AtomicU64, stop: &AtomicBool) -> AuditSummary {
    let mut sum = AuditSummary::default();
    let mut file: Option<(std::fs::File, u64)> = None;
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if file.is_none() {
            match std::fs::File::open(path) {
                Ok(f) => {
                    let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                    sum.files += 1;
                    file = Some((f, ino));
                }
                Err(_) if stop.load(Ordering::Relaxed) => return sum,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
        }
        let Some((f, ino)) = file.as_mut() else {
            continue;
        };
        let n = f.read(&mut buf).expect("read audit log");
        if n > 0 {
            pending.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
                let line = &pending[start..start + pos];
                account(line, listener, &mut sum);
                count.fetch_add(1, Ordering::Relaxed);
                start += pos + 1;
            }
            pending.drain(..start);
            continue;
        }
        // At the end of this file. Rotated (a new file at the path)? The daemon
        // flushed the old one before creating the new one: read what is left, switch.
        let rotated = std::fs::metadata(path).is_ok_and(|m| m.ino() != *ino);
        if rotated {
            let mut rest = Vec::new();
            f.read_to_end(&mut rest).expect("read rotated audit log");
            pending.extend_from_slice(&rest);
            for line in pending.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                account(line, listener, &mut sum);
                count.fetch_add(1, Ordering::Relaxed);
            }
            pending.clear();
            file = None;
            continue;
        }
        if stop.load(Ordering::Relaxed) {
            return sum;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn account(line: &[u8], listener: &str, sum: &mut AuditSummary) {
    let v: Value = serde_json::from_slice(line).expect("audit line is JSON");
    if v["listener"] != listener {
        sum.other_listener += 1;
        return;
    }
    let (Some(pid), Some(pidfs)) = (v["peer"]["pid"].as_u64(), v["pidfs_id"].as_u64()) else {
        sum.unattributable
            .push(String::from_utf8_lossy(line).into_owned());
        return;
    };
    let e = sum.by_pidfs.entry(pidfs).or_default();
    if !e.pids.contains(&pid) {
        e.pids.push(pid);
    }
    let at = v["cgroup"]["at"].as_str().unwrap_or("(none)");
    *sum.cgroup_at.entry(at.to_owned()).or_default() += 1;
    let cg = v["cgroup"]["path"].as_str().unwrap_or("(none)");
    let uid = v["peer"]["uid"].as_u64().unwrap_or(u64::MAX);
    if !e.uids.contains(&uid) {
        e.uids.push(uid);
    }
    let rule = v["rule"].as_str().unwrap_or("-");
    if !e.rules.iter().any(|r| r == rule) {
        e.rules.push(rule.to_owned());
    }
    if !e.cgroups.iter().any(|c| c == cg) {
        e.cgroups.push(cg.to_owned());
    }
    if v["allow"] == true {
        e.allowed += 1;
    } else {
        e.denied += 1;
    }
}

/// A sampler of the daemon's fds and memory while a scenario runs.
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<Vec<(Instant, u64, Usage)>>>,
}

impl Sampler {
    /// Samples `pid` every `every`, tagging each sample with `progress`.
    pub(crate) fn start(pid: u32, every: Duration, progress: Arc<AtomicU64>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let join = std::thread::spawn(move || {
            let mut v = Vec::new();
            while !s2.load(Ordering::Relaxed) {
                v.push((Instant::now(), progress.load(Ordering::Relaxed), usage(pid)));
                std::thread::sleep(every);
            }
            v
        });
        Self {
            stop,
            join: Some(join),
        }
    }

    pub(crate) fn finish(mut self) -> Vec<(Instant, u64, Usage)> {
        self.stop.store(true, Ordering::Relaxed);
        self.join
            .take()
            .expect("sampler")
            .join()
            .expect("sampler panicked")
    }
}
