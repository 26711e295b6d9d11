//! Running the daemon binary (`serve`, `gate`) as a child process: readiness, signals.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Upper bound for waiting on the daemon (not a timing assertion).
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_callerid")
}

/// A test directory other users and containers can reach.
pub(crate) fn tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::Builder::new()
        .prefix("callerid-cli-daemon")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A daemon child; its stderr lines arrive on a channel. Killed on drop.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    stderr: mpsc::Receiver<String>,
    pub(crate) seen: Vec<String>,
}

impl Daemon {
    pub(crate) fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stderr: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle`; returns it.
    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "daemon never printed {needle:?}; stderr so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    pub(crate) fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
    }

    /// Waits for exit; returns success and the stdout.
    pub(crate) fn wait(mut self) -> (bool, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut out = String::new();
                if let Some(mut o) = self.child.stdout.take() {
                    let _ = o.read_to_string(&mut out);
                }
                return (status.success(), out);
            }
            assert!(Instant::now() < deadline, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects and reads the whole answer.
pub(crate) fn ask(socket: &Path) -> String {
    callerid_testkit::echo::ask(socket, PATIENCE)
        .unwrap_or_else(|e| panic!("ask {}: {e}", socket.display()))
}

/// Waits until `path` accepts connections.
pub(crate) fn wait_listening(path: &Path) {
    let deadline = Instant::now() + PATIENCE;
    while UnixStream::connect(path).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} never accepted",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) use callerid_testkit::have;

/// An echo backend on `path` (one thread per connection).
pub(crate) fn echo_backend(path: &Path) {
    callerid_testkit::echo::echo_backend(path)
        .unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
}

/// Sends `msg` through an established connection and expects it back.
pub(crate) fn roundtrip(s: &mut UnixStream, msg: &str) -> bool {
    callerid_testkit::echo::roundtrip(s, msg, PATIENCE).expect("set_read_timeout")
}

pub(crate) fn path_in(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
