//! A daemon running in-process, clients and backends for it.

use callerid_daemon::{AuditSink, Daemon, DaemonConfig, Handle, MetricsAddr, PolicySource};
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for waiting on something asynchronous (not a timing assertion: a test
/// only fails when it is exceeded by far).
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

pub(crate) struct TestDaemon {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) handle: Handle,
    rt: Option<tokio::runtime::Runtime>,
    join: Option<tokio::task::JoinHandle<Result<(), callerid_daemon::Error>>>,
    pub(crate) socket: PathBuf,
}

impl TestDaemon {
    fn start(dir: tempfile::TempDir, cfg: DaemonConfig) -> Self {
        Self::start_tuned(dir, cfg, |_, _| {})
    }

    fn start_tuned(
        dir: tempfile::TempDir,
        mut cfg: DaemonConfig,
        tune: impl FnOnce(&mut DaemonConfig, &Path),
    ) -> Self {
        cfg.audit = Some(AuditSink::File(dir.path().join("audit.log")));
        cfg.metrics = Some(MetricsAddr::Unix(dir.path().join("metrics.sock")));
        cfg.handle_signals = false;
        cfg.notify = false;
        cfg.socket_activation = false;
        cfg.drain_timeout = Duration::from_secs(2);
        tune(&mut cfg, dir.path());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let daemon = rt.block_on(async { Daemon::start(cfg) }).unwrap();
        let socket = daemon.listener_info()[0].path.clone().unwrap();
        let handle = daemon.handle();
        let join = rt.spawn(daemon.run());
        Self {
            dir,
            handle,
            rt: Some(rt),
            join: Some(join),
            socket,
        }
    }

    /// `serve` on `<dir>/serve.sock`, with an optional policy file text.
    pub(crate) fn serve(policy: Option<&str>) -> Self {
        Self::serve_tuned(policy, |_, _| {})
    }

    /// [`TestDaemon::serve`] with the daemon config adjusted before start (given the
    /// test directory).
    pub(crate) fn serve_tuned(
        policy: Option<&str>,
        tune: impl FnOnce(&mut DaemonConfig, &Path),
    ) -> Self {
        let dir = tempdir();
        let source = match policy {
            Some(text) => {
                let p = dir.path().join("policy.toml");
                std::fs::write(&p, text).unwrap();
                PolicySource::PolicyFile(p)
            }
            None => PolicySource::Embedded,
        };
        let mut cfg = DaemonConfig::serve(Some(dir.path().join("serve.sock")), source);
        cfg.listeners[0].mode = Some(0o666);
        Self::start_tuned(dir, cfg, tune)
    }

    /// `gate` from a config text in which `{dir}` stands for the test directory.
    /// Returns the daemon; its first listener's socket is `socket`.
    pub(crate) fn gate(config: &str) -> Self {
        Self::gate_tuned(config, |_| {})
    }

    /// [`TestDaemon::gate`] with the daemon config adjusted before start.
    pub(crate) fn gate_tuned(config: &str, tune: impl FnOnce(&mut DaemonConfig)) -> Self {
        let dir = tempdir();
        let p = dir.path().join("gate.toml");
        std::fs::write(&p, config.replace("{dir}", dir.path().to_str().unwrap())).unwrap();
        let mut cfg = DaemonConfig::gate(p).unwrap();
        tune(&mut cfg);
        Self::start(dir, cfg)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Rewrites the config/policy file and reloads.
    pub(crate) fn rewrite_and_reload(
        &self,
        file: &str,
        text: &str,
    ) -> Result<(), callerid_daemon::ReloadError> {
        std::fs::write(
            self.path(file),
            text.replace("{dir}", self.dir.path().to_str().unwrap()),
        )
        .unwrap();
        self.handle.reload()
    }

    /// Waits for at least `n` audit lines and returns them all, parsed.
    pub(crate) fn audit_lines(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = std::fs::read_to_string(self.path("audit.log")).unwrap_or_default();
            let complete: Vec<&str> = text
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .collect();
            if complete.len() >= n || Instant::now() > deadline {
                return complete
                    .iter()
                    .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Scrapes the metrics endpoint over its Unix socket.
    pub(crate) fn scrape(&self) -> String {
        let mut s = UnixStream::connect(self.path("metrics.sock")).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_string()
    }

    /// Stops accepting, then runs `during` while the daemon drains, then waits for it.
    pub(crate) fn stop_while(mut self, during: impl FnOnce(&Path)) {
        self.handle.shutdown();
        let rt = self.rt.take().unwrap();
        let join = self.join.take().unwrap();
        during(self.dir.path());
        rt.block_on(async { tokio::time::timeout(PATIENCE, join).await })
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let (Some(rt), Some(join)) = (self.rt.take(), self.join.take()) {
            let _ = rt.block_on(async { tokio::time::timeout(PATIENCE, join).await });
        }
    }
}

pub(crate) fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("callerid-daemon-test")
        .tempdir()
        .unwrap()
}

/// Connects and reads everything the daemon sends until it closes.
pub(crate) fn ask(socket: &Path) -> String {
    callerid_testkit::echo::ask(socket, PATIENCE)
        .unwrap_or_else(|e| panic!("ask {}: {e}", socket.display()))
}

/// `true` when the gate closed this connection without forwarding (EOF or reset
/// before any byte comes back for our probe).
pub(crate) fn refused(s: &mut UnixStream) -> bool {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = s.write_all(b"ping\n");
    let mut b = [0u8; 16];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => {
            e.kind() == std::io::ErrorKind::ConnectionReset
                || e.kind() == std::io::ErrorKind::BrokenPipe
        }
    }
}

/// An echo backend: every connection gets back what it sends, until EOF.
pub(crate) fn echo_backend(path: &Path) -> std::thread::JoinHandle<()> {
    callerid_testkit::echo::echo_backend(path)
        .unwrap_or_else(|e| panic!("bind {}: {e}", path.display()))
}

/// Sends one line through an established connection and expects it back.
pub(crate) fn roundtrip(s: &mut UnixStream, msg: &str) -> bool {
    callerid_testkit::echo::roundtrip(s, msg, PATIENCE).expect("set_read_timeout")
}

/// A client process that connects to `socket` once told to, so the test can first
/// move it into a cgroup or run it as another user. `prefix` is prepended to the
/// command (e.g. `setpriv --reuid=1000 ...`).
pub(crate) struct Client {
    child: Child,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Client {
    pub(crate) fn spawn(prefix: &[&str], socket: &Path) -> Self {
        let script = format!(
            "read go; exec socat -t 30 - UNIX-CONNECT:{}",
            socket.display()
        );
        let mut argv: Vec<&str> = prefix.to_vec();
        argv.extend(["sh", "-c", &script]);
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { child }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Connects and sends `input`, keeping the connection open (stdin stays open).
    pub(crate) fn hold(&mut self, input: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Reads one line of what came back on a held connection.
    pub(crate) fn read_line(&mut self) -> String {
        use std::io::BufRead;
        let out = self.child.stdout.take().unwrap();
        let mut r = std::io::BufReader::new(out);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        self.child.stdout = Some(r.into_inner());
        line
    }

    /// Connects, sends `input` then EOF, returns what came back.
    pub(crate) fn run(mut self, input: &str) -> String {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let _ = self.child.wait();
        out
    }
}

pub(crate) use callerid_testkit::have;

/// Value of a sample in Prometheus text: `name{labels}` exactly as written.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == series).then(|| v.parse().ok()).flatten()
    })
}
