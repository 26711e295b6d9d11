//! Connect-time cgroup capture against the real kernel: real cgroups, real client
//! processes (this test binary re-executed in a role, see [`role_entry`]), real BPF.
//!
//! Needs root on Linux >= 6.7 with the cgroup2 root visible; otherwise each test skips
//! (and fails under `CALLERID_REQUIRE_PRIVILEGED=1`).

use callerid::CgroupId;
use callerid_bpf::{CaptureError, ConnectCapture, Unavailable, attached_programs};
use callerid_testkit::{TestCgroup, need_root, skip};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "CALLERID_BPF_TEST_ROLE";
const SOCK: &str = "CALLERID_BPF_TEST_SOCK";
const TYPE: &str = "CALLERID_BPF_TEST_TYPE";

// ---------------------------------------------------------------------------------------
// Roles: this binary re-executed as a client, a daemon, or a capability-less prober.
// ---------------------------------------------------------------------------------------

/// Entry point of the re-executed roles; does nothing in a normal test run.
#[test]
fn role_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    match role.as_str() {
        "client" => client_role(),
        "daemon" => daemon_role(),
        "probe" => probe_role(),
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("flush");
}

/// The socket type the orchestrating test chose for this client role.
fn socket_type() -> SocketType {
    socket_type_named(&std::env::var(TYPE).unwrap_or_default())
}

fn socket_type_named(ty: &str) -> SocketType {
    match ty {
        "seqpacket" => SocketType::SEQPACKET,
        _ => SocketType::STREAM,
    }
}

/// Connects when told, then holds, closes, or exits when told.
fn client_role() {
    let path = PathBuf::from(std::env::var_os(SOCK).expect("socket path"));
    let mut lines = std::io::stdin().lock().lines();
    say("READY");
    // "socket" first creates the socket and waits for "connect"; "connect" does both.
    let mut command = lines.next().and_then(Result::ok);
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        socket_type(),
        SocketFlags::CLOEXEC,
        None,
    )
    .expect("socket");
    if command.as_deref() == Some("socket") {
        say("SOCKET");
        command = lines.next().and_then(Result::ok);
    }
    if command.as_deref() != Some("connect") {
        return;
    }
    rustix::net::connect(&sock, &SocketAddrUnix::new(&path).expect("addr")).expect("connect");
    say("CONNECTED");
    // No further command (stdin closed) means: just finish.
    match lines.next().and_then(Result::ok).as_deref() {
        Some("exit") => std::process::exit(0),
        Some("close") => {
            drop(sock);
            say("CLOSED");
        }
        _ => {}
    }
    for _ in lines {}
}

/// A daemon: loads its own capture, listens, accepts and looks up when told, and peeks at
/// another daemon's socket (through `pidfd_getfd`) with its own map.
fn daemon_role() {
    let path = PathBuf::from(std::env::var_os(SOCK).expect("socket path"));
    let capture = match ConnectCapture::load() {
        Ok(c) => c,
        Err(e) => {
            say(&format!("ERROR {e}"));
            return;
        }
    };
    say(&format!(
        "LOADED {}",
        capture.program_id().expect("program id")
    ));
    let listener = listen(&path, SocketType::STREAM);
    say("LISTENING");
    let mut keep = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["accept"] => {
                let conn = accept(&listener);
                let own = capture.lookup(conn.as_fd()).expect("lookup");
                say(&format!("OWN {} FD {}", show(own), conn.as_raw_fd()));
                keep.push(conn);
            }
            ["peek", pid, fd] => {
                let pid = rustix::process::Pid::from_raw(pid.parse().expect("pid")).expect("pid");
                let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                    .expect("pidfd_open");
                let theirs = rustix::process::pidfd_getfd(
                    &pidfd,
                    fd.parse().expect("fd"),
                    rustix::process::PidfdGetfdFlags::empty(),
                )
                .expect("pidfd_getfd");
                // What our map holds for their socket, without our own getsockname().
                let other = capture.recorded(theirs.as_fd()).expect("recorded");
                say(&format!("OTHER {}", show(other)));
            }
            _ => panic!("unknown command {line}"),
        }
    }
}

/// Tries to load and prints the outcome; then identifies a connection the way a daemon
/// falls back (no connect-time source) and prints where the cgroup came from.
fn probe_role() {
    match ConnectCapture::load() {
        Ok(_) => say("LOADED"),
        Err(CaptureError::Unavailable(why)) => say(&format!("UNAVAILABLE {why:?} | {why}")),
        Err(e) => say(&format!("FAILED {e}")),
    }
    let dir = tempdir();
    let path = dir.path().join("s");
    let listener = listen(&path, SocketType::STREAM);
    let _client = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    let conn = accept(&listener);
    let who = match callerid::Identifier::new().and_then(|i| i.identify(&conn)) {
        Ok(who) => who,
        Err(e) => return say(&format!("FALLBACK failed: {e}")),
    };
    let json = serde_json::to_value(&who).expect("json");
    say(&format!(
        "FALLBACK at={} provenance={}",
        json["cgroup"]["at"], json["provenance"]["cgroup"]
    ));
}

fn show(id: Option<CgroupId>) -> String {
    id.map_or_else(|| "none".to_owned(), |id| id.to_string())
}

// ---------------------------------------------------------------------------------------
// Helpers for the orchestrating tests.
// ---------------------------------------------------------------------------------------

/// A re-executed role, driven line by line over its stdin and stdout.
struct Role {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
}

impl Role {
    fn spawn(role: &str, envs: &[(&str, &Path)], wrapper: &[&str]) -> Self {
        let mut cmd =
            callerid_testkit::reexec::wrapped(wrapper, "role_entry").expect("current_exe");
        cmd.env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn role");
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Self { child, stdin, out }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The rest of the first line that starts with `prefix` (libtest prints its own lines).
    fn expect(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).expect("read role output");
            assert!(n > 0, "role exited before printing {prefix}");
            // libtest may print its own text on the same line first.
            if let Some(at) = line.find(prefix) {
                return line[at + prefix.len()..].trim().to_owned();
            }
            assert!(!line.contains("ERROR"), "role failed: {line}");
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to role");
        stdin.flush().expect("flush");
    }

    /// Closes stdin (the role's cue to finish) and reaps it.
    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.child.wait().expect("wait")
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn accept(listener: &OwnedFd) -> OwnedFd {
    rustix::net::accept_with(listener, SocketFlags::CLOEXEC).expect("accept")
}

fn listen(path: &Path, ty: SocketType) -> OwnedFd {
    // CLOEXEC: the roles this binary spawns must not inherit other tests' sockets.
    let fd = rustix::net::socket_with(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None)
        .expect("socket");
    rustix::net::bind(&fd, &SocketAddrUnix::new(path).expect("addr")).expect("bind");
    rustix::net::listen(&fd, 16).expect("listen");
    fd
}

/// `true` (after reporting the skip) when this machine cannot run capture tests.
fn cannot_capture(test: &str) -> bool {
    if need_root(test) {
        return true;
    }
    match callerid_bpf::probe() {
        Ok(_) => false,
        Err(why) => {
            skip(test, &why.to_string());
            true
        }
    }
}

/// An identifier whose connect-time cgroups come from a freshly loaded capture.
fn identifier_with_capture() -> callerid::Identifier {
    let capture = std::sync::Arc::new(ConnectCapture::load().expect("load capture"));
    callerid::Identifier::builder()
        .connect_cgroup_source(capture)
        .build()
        .expect("identifier")
}

fn cgroup(name: &str) -> TestCgroup {
    TestCgroup::new(name).expect("create test cgroup")
}

/// A client role moved into `cg` before it connects, so `cg` is its connect-time cgroup.
fn client_connected_from(cg: &TestCgroup, envs: &[(&str, &Path)]) -> Role {
    let mut client = Role::spawn("client", envs, &[]);
    client.expect("READY");
    cg.add_pid(client.pid())
        .expect("move client to its connect-time cgroup");
    client.send("connect");
    client.expect("CONNECTED");
    client
}

fn current_cgroup_path(pid: u32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read cgroup");
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("unified line")
        .to_owned()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// What the client does after connecting and being moved to cgroup B, before accept().
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    Stay,
    CloseSocket,
    ExitAndBeReaped,
}

/// Client connects from A, moves to B, then does `then`; the server accepts last. The
/// capture must say A.
fn connect_in_a_accept_after(test: &str, ty: &str, then: Then) {
    if cannot_capture(test) {
        return;
    }
    let capture = ConnectCapture::load().expect("load capture");
    let (a, b) = (cgroup("a"), cgroup("b"));
    let dir = tempdir();
    let path = dir.path().join("s");
    let listener = listen(&path, socket_type_named(ty));
    let mut client = Some(client_connected_from(
        &a,
        &[(SOCK, &path), (TYPE, Path::new(ty))],
    ));
    let c = client.as_mut().expect("client");
    b.add_pid(c.pid()).expect("move client to b");
    match then {
        Then::Stay => assert_eq!(current_cgroup_path(c.pid()), b.rel_path()),
        Then::CloseSocket => {
            c.send("close");
            c.expect("CLOSED");
        }
        Then::ExitAndBeReaped => {
            c.send("exit");
            let status = client.take().expect("client").finish();
            assert!(status.success());
        }
    }
    let conn = accept(&listener);
    let got = capture.lookup(conn.as_fd()).expect("lookup");
    assert_eq!(
        got,
        Some(CgroupId::new(a.id())),
        "connect-time cgroup must be a ({})",
        a.rel_path()
    );
    assert_ne!(a.id(), b.id());
    // A second lookup answers the same (the record belongs to the socket).
    assert_eq!(capture.lookup(conn.as_fd()).expect("lookup"), got);
    drop(client);
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

#[test]
fn moved_after_connect_stream() {
    connect_in_a_accept_after("moved_after_connect_stream", "stream", Then::Stay);
}

#[test]
fn client_closed_before_accept_stream() {
    connect_in_a_accept_after(
        "client_closed_before_accept_stream",
        "stream",
        Then::CloseSocket,
    );
}

#[test]
fn client_exited_and_reaped_before_accept_stream() {
    connect_in_a_accept_after(
        "client_exited_and_reaped_before_accept_stream",
        "stream",
        Then::ExitAndBeReaped,
    );
}

#[test]
fn moved_after_connect_seqpacket() {
    connect_in_a_accept_after("moved_after_connect_seqpacket", "seqpacket", Then::Stay);
}

#[test]
fn client_closed_before_accept_seqpacket() {
    connect_in_a_accept_after(
        "client_closed_before_accept_seqpacket",
        "seqpacket",
        Then::CloseSocket,
    );
}

#[test]
fn client_exited_and_reaped_before_accept_seqpacket() {
    connect_in_a_accept_after(
        "client_exited_and_reaped_before_accept_seqpacket",
        "seqpacket",
        Then::ExitAndBeReaped,
    );
}

/// Sockets the hook never runs for have no record: both ends of a `socketpair()` are
/// unnamed, and a connected-but-unbound client end has no address either.
#[test]
fn unnamed_sockets_have_no_record() {
    if cannot_capture("unnamed_sockets_have_no_record") {
        return;
    }
    let capture = ConnectCapture::load().expect("load capture");
    let (x, y) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    assert_eq!(capture.lookup(x.as_fd()).expect("lookup"), None);
    assert_eq!(capture.lookup(y.as_fd()).expect("lookup"), None);
    let dir = tempdir();
    let path = dir.path().join("s");
    let _listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let client = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    assert_eq!(capture.lookup(client.as_fd()).expect("lookup"), None);
    // Not a socket at all: an error, not a guess.
    let file = std::fs::File::open("/proc/self/status").expect("open");
    assert!(capture.lookup(file.as_fd()).is_err());
}

/// Two daemons in two processes, each with its own program and map: each sees its own
/// peer's connect-time cgroup, and its map has nothing for the other daemon's socket.
#[test]
fn two_daemons_do_not_see_each_other() {
    if cannot_capture("two_daemons_do_not_see_each_other") {
        return;
    }
    let (a, b) = (cgroup("a"), cgroup("b"));
    let dir = tempdir();
    let (px, py) = (dir.path().join("x"), dir.path().join("y"));
    let mut x = Role::spawn("daemon", &[(SOCK, &px)], &[]);
    let mut y = Role::spawn("daemon", &[(SOCK, &py)], &[]);
    let (prog_x, prog_y) = (x.expect("LOADED"), y.expect("LOADED"));
    assert_ne!(prog_x, prog_y, "each daemon loads its own program");
    x.expect("LISTENING");
    y.expect("LISTENING");

    let mut c1 = Role::spawn("client", &[(SOCK, &px)], &[]);
    let mut c2 = Role::spawn("client", &[(SOCK, &py)], &[]);
    c1.expect("READY");
    c2.expect("READY");
    a.add_pid(c1.pid()).expect("c1 to a");
    b.add_pid(c2.pid()).expect("c2 to b");
    c1.send("connect");
    c2.send("connect");
    c1.expect("CONNECTED");
    c2.expect("CONNECTED");

    x.send("accept");
    y.send("accept");
    let own_x = x.expect("OWN");
    let own_y = y.expect("OWN");
    let (id_x, fd_x) = own_x.split_once(" FD ").expect("OWN line");
    let (id_y, fd_y) = own_y.split_once(" FD ").expect("OWN line");
    assert_eq!(id_x, a.id().to_string());
    assert_eq!(id_y, b.id().to_string());

    x.send(&format!("peek {} {fd_y}", y.pid()));
    y.send(&format!("peek {} {fd_x}", x.pid()));
    assert_eq!(
        x.expect("OTHER"),
        "none",
        "x's map must have nothing for y's socket"
    );
    assert_eq!(
        y.expect("OTHER"),
        "none",
        "y's map must have nothing for x's socket"
    );
    drop((c1, c2));
    assert!(x.finish().success());
    assert!(y.finish().success());
}

fn cgroup2_root() -> PathBuf {
    callerid_bpf::probe().expect("probe").cgroup2_root
}

/// Waits (bounded) until program `id` is no longer attached to the cgroup2 root.
fn detached(id: u32) -> bool {
    let root = cgroup2_root();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ids = attached_programs(&root).expect("BPF_PROG_QUERY");
        if !ids.contains(&id) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn daemon_leaves_nothing(test: &str, kill: bool) {
    if cannot_capture(test) {
        return;
    }
    let dir = tempdir();
    let path = dir.path().join("s");
    let mut d = Role::spawn("daemon", &[(SOCK, &path)], &[]);
    let id: u32 = d.expect("LOADED").parse().expect("program id");
    d.expect("LISTENING");
    assert!(
        attached_programs(&cgroup2_root())
            .expect("query")
            .contains(&id)
    );
    if kill {
        d.child.kill().expect("SIGKILL");
        let status = d.child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    } else {
        assert!(d.finish().success());
    }
    assert!(
        detached(id),
        "program {id} still attached to the cgroup2 root"
    );
}

#[test]
fn nothing_left_attached_after_normal_exit() {
    daemon_leaves_nothing("nothing_left_attached_after_normal_exit", false);
}

#[test]
fn nothing_left_attached_after_sigkill() {
    daemon_leaves_nothing("nothing_left_attached_after_sigkill", true);
}

#[test]
fn dropping_the_capture_detaches_it() {
    if cannot_capture("dropping_the_capture_detaches_it") {
        return;
    }
    let capture = ConnectCapture::load().expect("load capture");
    let id = capture.program_id().expect("program id");
    assert!(
        attached_programs(capture.cgroup2_root())
            .expect("query")
            .contains(&id)
    );
    drop(capture);
    assert!(detached(id));
}

/// The probe role's `UNAVAILABLE` line when run under `setpriv` with `caps` (after
/// checking the probe exited cleanly); `None` after reporting a skip.
fn unavailable_under_setpriv(test: &str, caps: &[&str]) -> Option<String> {
    if need_root(test) {
        return None;
    }
    if !Path::new("/usr/bin/setpriv").exists() {
        skip(test, "setpriv (util-linux) not installed");
        return None;
    }
    let wrapper: Vec<&str> = std::iter::once("/usr/bin/setpriv")
        .chain(caps.iter().copied())
        .collect();
    let mut p = Role::spawn("probe", &[], &wrapper);
    let line = p.expect("UNAVAILABLE");
    assert!(p.finish().success());
    Some(line)
}

/// Without capabilities, loading fails cleanly with the reason (no panic, nothing attached).
#[test]
fn without_capabilities_the_reason_is_given() {
    let Some(line) = unavailable_under_setpriv(
        "without_capabilities_the_reason_is_given",
        &[
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
        ],
    ) else {
        return;
    };
    assert!(line.contains("MissingCapabilities"), "{line}");
    assert!(
        line.contains("missing capabilities: CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN"),
        "{line}"
    );
}

/// Capability reasons are exact: only the missing one is named.
#[test]
fn only_the_missing_capability_is_named() {
    let Some(line) = unavailable_under_setpriv(
        "only_the_missing_capability_is_named",
        &["--inh-caps=-all", "--bounding-set=-sys_admin,-net_admin"],
    ) else {
        return;
    };
    assert!(
        line.ends_with("missing capabilities: CAP_NET_ADMIN"),
        "{line}"
    );
}

#[test]
fn unavailable_reasons_read_well() {
    let old = Unavailable::KernelTooOld {
        release: "6.6.1".into(),
    };
    assert_eq!(
        old.to_string(),
        "kernel 6.6.1 is older than 6.7 (no cgroup/getsockname_unix hook)"
    );
    let err = CaptureError::from(old);
    assert!(
        err.to_string()
            .starts_with("connect-time capture unavailable: kernel 6.6.1")
    );
    assert_eq!(err.errno(), None);
}

/// Through an `Identifier` with this crate as its connect-time source: `cgroup` is the
/// connect-time one (`at = "connect"`, provenance `kernel_connect`) and `drift` shows
/// where the peer is now.
#[test]
fn identifier_reports_connect_time_cgroup_and_drift() {
    let test = "identifier_reports_connect_time_cgroup_and_drift";
    if cannot_capture(test) {
        return;
    }
    let ident = identifier_with_capture();
    let (a, b) = (cgroup("a"), cgroup("b"));
    let dir = tempdir();
    let path = dir.path().join("s");
    let listener = listen(&path, SocketType::STREAM);
    let client = client_connected_from(&a, &[(SOCK, &path)]);
    b.add_pid(client.pid()).expect("move client to b");
    let conn = accept(&listener);
    let who = ident.identify(&conn).expect("identify");

    let cg = who.cgroup().expect("cgroup");
    assert_eq!(cg.id, CgroupId::new(a.id()));
    assert_eq!(cg.at, callerid::CgroupAt::Connect);
    assert_eq!(cg.path.as_deref(), Some(a.rel_path().as_str()));
    assert_eq!(
        who.provenance().cgroup,
        Some(callerid::Provenance::KernelConnect)
    );
    let drift = who.drift().expect("drift");
    assert_eq!(
        drift.cgroup.as_ref().map(|c| c.id),
        Some(CgroupId::new(b.id()))
    );
    assert!(
        drift.changed.contains(&callerid::DriftKind::Cgroup),
        "{drift:?}"
    );

    let json = serde_json::to_value(&who).expect("json");
    assert_eq!(json["cgroup"]["at"], "connect");
    assert_eq!(json["provenance"]["cgroup"], "kernel_connect");
    assert_eq!(json["drift"]["cgroup"]["id"], b.id());
    assert!(
        ident
            .features()
            .connect_cgroup
            .detail
            .contains("getsockname_unix")
    );
    drop(client);
}

/// A peer that did not move: connect-time cgroup, and no cgroup drift.
#[test]
fn identifier_without_drift_when_the_peer_stays() {
    let test = "identifier_without_drift_when_the_peer_stays";
    if cannot_capture(test) {
        return;
    }
    let ident = identifier_with_capture();
    let a = cgroup("a");
    let dir = tempdir();
    let path = dir.path().join("s");
    let listener = listen(&path, SocketType::STREAM);
    let client = client_connected_from(&a, &[(SOCK, &path)]);
    let conn = accept(&listener);
    let who = ident.identify(&conn).expect("identify");
    let cg = who.cgroup().expect("cgroup");
    assert_eq!(
        (cg.id, cg.at),
        (CgroupId::new(a.id()), callerid::CgroupAt::Connect)
    );
    assert!(
        who.drift()
            .is_none_or(|d| !d.changed.contains(&callerid::DriftKind::Cgroup)),
        "{:?}",
        who.drift()
    );
    drop(client);
}

/// The self-test a daemon runs at start finds this process's own cgroup.
#[test]
fn self_test_sees_our_own_cgroup() {
    if cannot_capture("self_test_sees_our_own_cgroup") {
        return;
    }
    let capture = ConnectCapture::load().expect("load capture");
    let id = capture.self_test().expect("self-test");
    assert_ne!(id.get(), 0);
}

/// The cgroup recorded is the one at `connect()`, not at `socket()`: the socket the
/// server accepts is allocated inside `connect()`.
#[test]
fn cgroup_is_taken_at_connect_not_at_socket() {
    if cannot_capture("cgroup_is_taken_at_connect_not_at_socket") {
        return;
    }
    let capture = ConnectCapture::load().expect("load capture");
    let (a, b) = (cgroup("a"), cgroup("b"));
    let dir = tempdir();
    let path = dir.path().join("s");
    let listener = listen(&path, SocketType::STREAM);
    let mut client = Role::spawn("client", &[(SOCK, &path)], &[]);
    client.expect("READY");
    a.add_pid(client.pid()).expect("move client to a");
    client.send("socket");
    client.expect("SOCKET");
    b.add_pid(client.pid()).expect("move client to b");
    client.send("connect");
    client.expect("CONNECTED");
    let conn = accept(&listener);
    assert_eq!(
        capture.lookup(conn.as_fd()).expect("lookup"),
        Some(CgroupId::new(b.id()))
    );
    drop(client);
}

fn unavailable_under(test: &str, wrapper: &[&str], expected: &str) {
    if need_root(test) {
        return;
    }
    let mut p = Role::spawn("probe", &[], wrapper);
    let line = p.expect("UNAVAILABLE");
    assert!(line.starts_with(expected), "{line}");
    drop(p);
}

#[test]
fn in_a_user_namespace_the_reason_is_given() {
    unavailable_under(
        "in_a_user_namespace_the_reason_is_given",
        &["unshare", "--user"],
        "NotInitialUserNamespace",
    );
}

#[test]
fn in_a_pid_namespace_the_reason_is_given() {
    unavailable_under(
        "in_a_pid_namespace_the_reason_is_given",
        &["unshare", "--pid", "--fork", "--mount-proc"],
        "NotInitialPidNamespace",
    );
}

/// In a cgroup namespace whose own cgroup2 mount shows only a sub-tree, the program
/// could not see other cgroups' sockets: refused, and the reason names the mount.
#[test]
fn in_a_cgroup_namespace_the_reason_is_given() {
    let test = "in_a_cgroup_namespace_the_reason_is_given";
    if need_root(test) {
        return;
    }
    let Some(mount) = callerid_testkit::cgroup2_mount() else {
        return skip(test, "no cgroup2 mount");
    };
    let a = cgroup("a");
    // Enter cgroup a, then a new cgroup and mount namespace where the host's cgroup2
    // mount is replaced by a fresh one: its root is a, not the hierarchy root. (With the
    // host's mount still visible, capture would work: the real root is reachable.)
    let script = r#"cg=$1; mnt=$2; shift 2
echo $$ > "$cg/cgroup.procs" || exit 1
exec unshare --cgroup --mount --propagation private sh -c 'umount -l "$0" && mount -t cgroup2 cgroup2 "$0" && exec "$@"' "$mnt" "$@""#;
    let dir = a.dir().to_str().expect("utf-8 path").to_owned();
    let mnt = mount.to_str().expect("utf-8 path").to_owned();
    let mut p = Role::spawn("probe", &[], &["sh", "-c", script, "sh", &dir, &mnt]);
    let line = p.expect("UNAVAILABLE");
    assert!(line.starts_with("NotCgroup2Root"), "{line}");
    assert!(line.contains(&format!("id: {}", a.id())), "{line}");
    drop(p);
}

/// Drift as a policy input, end to end: a peer that connected from cgroup A and then
/// left it is denied by a rule on `drift_cgroup`; one that stayed is allowed.
#[test]
fn policy_denies_a_peer_that_left_its_connect_time_cgroup() {
    let test = "policy_denies_a_peer_that_left_its_connect_time_cgroup";
    if cannot_capture(test) {
        return;
    }
    let policy = callerid_policy::Policy::parse(
        r#"
version = 1
default = "allow"

[[rule]]
name = "left its connect-time cgroup"
action = "deny"
[rule.match]
drift_cgroup = true
"#,
    )
    .expect("policy");
    let ident = identifier_with_capture();
    let (a, b) = (cgroup("a"), cgroup("b"));
    let dir = tempdir();
    let path = dir.path().join("s");
    let listener = listen(&path, SocketType::STREAM);
    for moves in [true, false] {
        let client = client_connected_from(&a, &[(SOCK, &path)]);
        if moves {
            b.add_pid(client.pid()).expect("move client to b");
        }
        let conn = accept(&listener);
        let who = ident.identify(&conn).expect("identify");
        let d = policy.decide(&who, &callerid_policy::Context::default());
        if moves {
            assert!(!d.allow, "a peer that moved must be denied: {d:?}");
            assert_eq!(d.rule.as_deref(), Some("left its connect-time cgroup"));
        } else {
            assert!(d.allow, "a peer that stayed is allowed: {d:?}");
            assert_eq!(d.rule, None, "decided by the default");
        }
        drop(client);
    }
}
