//! Helpers: spawning this binary in a role, listeners in temp dirs, small waits.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const ROLE_ENV: &str = "CALLERID_TEST_ROLE";
pub(crate) const SOCK_ENV: &str = "CALLERID_TEST_SOCK";
/// A cgroup directory the client role moves itself into before connecting.
pub(crate) const CGROUP_ENV: &str = "CALLERID_TEST_CGROUP";

/// Moves this process into the cgroup named by `$CALLERID_TEST_CGROUP`, if set.
fn enter_cgroup_from_env() {
    if let Ok(dir) = std::env::var(CGROUP_ENV) {
        std::fs::write(
            format!("{dir}/cgroup.procs"),
            std::process::id().to_string(),
        )
        .expect("enter cgroup");
    }
}

/// A command that runs this test binary in `role`.
pub(crate) fn role_command(role: &str) -> Command {
    wrapped_role_command(&[], role)
}

/// The same, wrapped in another program (e.g. `unshare -U --map-user=1000`).
pub(crate) fn wrapped_role_command(wrapper: &[&str], role: &str) -> Command {
    let mut c = callerid_testkit::reexec::wrapped(wrapper, "role_entry").expect("current_exe");
    c.env(ROLE_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

/// Dispatches to the role named in the environment, then exits the process.
pub(crate) fn role_entry() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let code = match role.as_str() {
        "client" => client_role(),
        "connect_exit" => connect_exit_role(),
        "pidns_server" => crate::namespaces::pidns_server_role(),
        "adversary" => crate::adversary::adversary_role(),
        other => {
            eprintln!("unknown role {other}");
            3
        }
    };
    std::process::exit(code);
}

/// Connects to `$CALLERID_TEST_SOCK`, answers `ping` with `pong <pid>`, obeys `exit`,
/// exits when the server closes.
fn client_role() -> i32 {
    let path = std::env::var(SOCK_ENV).expect("socket path");
    enter_cgroup_from_env();
    let s = UnixStream::connect(path).expect("connect");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut w = s;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return 0;
        }
        match line.trim() {
            "ping" => {
                let _ = writeln!(w, "pong {}", std::process::id());
            }
            "exit" => return 0,
            "exec_unshare" => {
                // Same process (same pidfs id), new net and uts namespaces, a new
                // exe and comm; its own pid namespace stays (only children would get a
                // new one), keeping the connection open across execve.
                use std::os::unix::process::CommandExt;
                rustix::io::fcntl_setfd(&w, rustix::io::FdFlags::empty()).expect("keep fd");
                let err = Command::new("unshare")
                    .args(["--net", "--uts", "--pid", "sleep", "30"])
                    .exec();
                eprintln!("exec unshare: {err}");
                return 5;
            }
            "exec_setpriv" => {
                // Become uid/gid 4242 running `sleep`, keeping the connection open
                // across execve.
                use std::os::unix::process::CommandExt;
                rustix::io::fcntl_setfd(&w, rustix::io::FdFlags::empty()).expect("keep fd");
                let err = Command::new("setpriv")
                    .args([
                        "--reuid=4242",
                        "--regid=4242",
                        "--clear-groups",
                        "sleep",
                        "30",
                    ])
                    .exec();
                eprintln!("exec setpriv: {err}");
                return 5;
            }
            _ => return 4,
        }
    }
}

/// Connects and exits at once, keeping nothing open.
fn connect_exit_role() -> i32 {
    let path = std::env::var(SOCK_ENV).expect("socket path");
    enter_cgroup_from_env();
    let s = UnixStream::connect(path).expect("connect");
    drop(s);
    0
}

/// A listener in a fresh temp dir.
pub(crate) struct Listener {
    /// Keeps the directory (and the socket in it) alive.
    _dir: tempfile::TempDir,
    pub(crate) path: PathBuf,
    pub(crate) listener: UnixListener,
}

pub(crate) fn listener() -> Listener {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    Listener {
        _dir: dir,
        path,
        listener,
    }
}

/// A client process (role `client`) connected to `l`, and our accepted end.
pub(crate) struct Client {
    pub(crate) child: Child,
    pub(crate) conn: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    pub(crate) fn spawn(l: &Listener, cmd: Command) -> Client {
        let mut cmd = cmd;
        cmd.env(SOCK_ENV, &l.path);
        let child = cmd.spawn().expect("spawn client");
        let (conn, _) = l.listener.accept().expect("accept");
        let reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut c = Client {
            child,
            conn,
            reader,
        };
        c.ping();
        c
    }

    /// Round trip: the client is running and connected. Returns its pid as it sees it.
    pub(crate) fn ping(&mut self) -> u32 {
        writeln!(self.conn, "ping").expect("write ping");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read pong");
        line.trim()
            .strip_prefix("pong ")
            .and_then(|p| p.parse().ok())
            .expect("pong")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Tells the client to exit and reaps it.
    pub(crate) fn exit_and_reap(&mut self) {
        let _ = writeln!(self.conn, "exit");
        let st = self.child.wait().expect("wait");
        assert!(st.success(), "client exited with {st}");
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` until true (a state change we cannot be told about directly).
pub(crate) fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The `Groups:` of a process from its status (for comparing with SO_PEERGROUPS).
pub(crate) fn status_groups(pid: u32) -> Vec<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    text.lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .map(|x| x.parse().expect("gid"))
                .collect()
        })
        .unwrap_or_default()
}

/// `true` when `path` exists (tools in tests).
pub(crate) fn have(path: &str) -> bool {
    Path::new(path).exists()
}

/// The inode of a pidfd the test opens itself.
pub(crate) fn pidfs_inode_of(pid: u32) -> u64 {
    let p = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    let fd =
        rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).expect("pidfd_open");
    rustix::fs::fstat(&fd).expect("fstat").st_ino
}
