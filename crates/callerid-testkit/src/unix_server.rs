//! Helper processes for tests that inspect a server from outside (`callerid peers`):
//! a server that accepts and holds connections, and a client that holds one open.
//!
//! Both are meant to run in a re-executed test binary (a *role*); they report on stdout
//! with lines starting with [`MARK`] so a test can follow them past the test harness's
//! own output.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// The prefix of every line these roles print.
pub const MARK: &str = "UNIXSRV ";

fn say(what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{MARK}{what}");
    let _ = out.flush();
}

/// Binds `path` (mode 0666, so other users may connect), optionally connects out to
/// `upstream` and holds that connection, then accepts forever. Prints `listening`,
/// then `accepted` for each connection and `closed` when its peer closed and the
/// server closed its end too. Never returns normally.
pub fn serve(path: &Path, upstream: Option<&Path>) -> i32 {
    let listener = match UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind {}: {e}", path.display());
            return 10;
        }
    };
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)) {
        eprintln!("chmod {}: {e}", path.display());
        return 11;
    }
    let _up = match upstream.map(UnixStream::connect).transpose() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("connect upstream: {e}");
            return 12;
        }
    };
    say("listening");
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else {
            return 13;
        };
        say("accepted");
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            drop(conn);
            say("closed");
        });
    }
    0
}

/// Connects to `path` and holds the connection until the server closes it.
pub fn hold(path: &Path) -> i32 {
    let mut s = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("connect {}: {e}", path.display());
            return 20;
        }
    };
    say("connected");
    let mut buf = [0u8; 256];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    0
}

/// Reads `reader` line by line until a [`MARK`] line equal to `want`; `false` at EOF.
pub fn wait_for(reader: &mut impl std::io::BufRead, want: &str) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {
                if line.trim_end().strip_prefix(MARK) == Some(want) {
                    return true;
                }
            }
        }
    }
}

/// The environment variable naming the role ([`role_from_env`]).
pub const ROLE_ENV: &str = "CALLERID_UNIXSRV_ROLE";
/// The environment variable naming the socket path of both roles.
pub const PATH_ENV: &str = "CALLERID_UNIXSRV_PATH";
/// The environment variable naming the listener the server connects out to.
pub const UPSTREAM_ENV: &str = "CALLERID_UNIXSRV_UPSTREAM";

/// Runs the role named in the environment (`server` or `hold`), if any, and returns
/// its exit code. A test binary calls this from its role-entry test and exits with it.
pub fn role_from_env() -> Option<i32> {
    let role = std::env::var(ROLE_ENV).ok()?;
    let path = std::env::var_os(PATH_ENV).map(std::path::PathBuf::from);
    let upstream = std::env::var_os(UPSTREAM_ENV).map(std::path::PathBuf::from);
    Some(match (role.as_str(), path) {
        ("server", Some(p)) => serve(&p, upstream.as_deref()),
        ("hold", Some(p)) => hold(&p),
        _ => {
            eprintln!("unknown role {role} (or no {PATH_ENV})");
            3
        }
    })
}

/// A server process (role `server`) on a socket in a fresh directory, connected out to a
/// listener this test process holds (`upstream`), and the clients the test connects
/// to it. Every child is killed and reaped on drop, and the directory removed.
#[derive(Debug)]
pub struct Fixture {
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
    upstream_path: std::path::PathBuf,
    _upstream: UnixListener,
    _upstream_conn: UnixStream,
    server: std::process::Child,
    server_out: std::io::BufReader<std::process::ChildStdout>,
    clients: Vec<std::process::Child>,
    exe_cmd: fn() -> std::process::Command,
}

impl Fixture {
    /// Starts the server. `exe_cmd` must return a command that re-executes the calling
    /// test binary so that it calls [`role_from_env`] (the fixture adds the
    /// environment).
    pub fn start(exe_cmd: fn() -> std::process::Command) -> std::io::Result<Self> {
        use std::process::Stdio;
        let dir = tempfile::Builder::new()
            .prefix("callerid-peers")
            .tempdir()?;
        // Other users (the unprivileged client) must reach the socket.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let path = dir.path().join("server.sock");
        let upstream_path = dir.path().join("upstream.sock");
        let upstream = UnixListener::bind(&upstream_path)?;
        let mut cmd = exe_cmd();
        cmd.env(ROLE_ENV, "server")
            .env(PATH_ENV, &path)
            .env(UPSTREAM_ENV, &upstream_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut server = cmd.spawn()?;
        let out = server
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no server stdout"))?;
        let mut server_out = std::io::BufReader::new(out);
        if !wait_for(&mut server_out, "listening") {
            let _ = server.kill();
            let _ = server.wait();
            return Err(std::io::Error::other("server did not start"));
        }
        let (upstream_conn, _) = upstream.accept()?;
        Ok(Self {
            dir,
            path,
            upstream_path,
            _upstream: upstream,
            _upstream_conn: upstream_conn,
            server,
            server_out,
            clients: Vec::new(),
            exe_cmd,
        })
    }

    /// The server's socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of the listener (held by this process) the server connected to.
    pub fn upstream_path(&self) -> &Path {
        &self.upstream_path
    }

    /// The directory holding both sockets.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's pid.
    pub fn server_pid(&self) -> u32 {
        self.server.id()
    }

    /// Connects a new client process that first moves itself into `cgroup` and then, if
    /// `uid` is given, drops to that uid/gid (via `setpriv`); returns its pid once the
    /// server has accepted the connection.
    pub fn connect_client(
        &mut self,
        cgroup: &crate::TestCgroup,
        uid: Option<u32>,
    ) -> std::io::Result<u32> {
        use std::process::Stdio;
        let inner = (self.exe_cmd)();
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(r#"echo $$ > "$1/cgroup.procs" && shift && exec "$@""#)
            .arg("sh")
            .arg(cgroup.dir());
        if let Some(uid) = uid {
            cmd.args([
                "setpriv".to_owned(),
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".to_owned(),
            ]);
        }
        cmd.arg(inner.get_program())
            .args(inner.get_args())
            .env(ROLE_ENV, "hold")
            .env(PATH_ENV, &self.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let out = child.stdout.take();
        self.clients.push(child);
        let connected = out.is_some_and(|o| wait_for(&mut std::io::BufReader::new(o), "connected"));
        if !connected || !wait_for(&mut self.server_out, "accepted") {
            return Err(std::io::Error::other("client did not connect"));
        }
        Ok(pid)
    }

    /// Waits until the server has accepted `n` more connections (made by the caller
    /// itself, e.g. with `UnixStream::connect(fx.path())`).
    pub fn wait_accepted(&mut self, n: usize) -> std::io::Result<()> {
        for _ in 0..n {
            if !wait_for(&mut self.server_out, "accepted") {
                return Err(std::io::Error::other("server stopped accepting"));
            }
        }
        Ok(())
    }

    /// Kills the client `pid` and waits until the server has closed its end.
    pub fn close_client(&mut self, pid: u32) -> std::io::Result<()> {
        let i = self
            .clients
            .iter()
            .position(|c| c.id() == pid)
            .ok_or_else(|| std::io::Error::other("no such client"))?;
        let mut c = self.clients.remove(i);
        let killed = c.kill();
        c.wait()?;
        killed?;
        if wait_for(&mut self.server_out, "closed") {
            Ok(())
        } else {
            Err(std::io::Error::other("server did not close"))
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for c in self
            .clients
            .iter_mut()
            .chain(std::iter::once(&mut self.server))
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
