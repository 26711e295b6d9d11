//! `callerid::peers`: connections of a server in another process, identified through
//! copies of the server's own descriptors.

use callerid::peers::{PeersError, SocketName, SocketRole, peers_of_pid, peers_of_socket};
use callerid::{Identifier, Identity};
use callerid_testkit::unix_server::{Fixture, role_from_env};
use callerid_testkit::{TestCgroup, need_root};
use std::process::{Command, Stdio};

const UNPRIV_ENV: &str = "CALLERID_PEERS_UNPRIV";

/// Entry of the helper processes of this module (does nothing in a normal run).
#[test]
fn peers_role() {
    if let Ok(target) = std::env::var(UNPRIV_ENV) {
        std::process::exit(unprivileged_role(&target));
    }
    if let Some(code) = role_from_env() {
        std::process::exit(code);
    }
}

fn exe_cmd() -> Command {
    callerid_testkit::reexec::command("peers::peers_role").expect("current_exe")
}

/// Run as an unprivileged user against a root server: both calls must refuse
/// clearly. `target` is `<pid> <socket path>`.
fn unprivileged_role(target: &str) -> i32 {
    let (pid, path) = target.split_once(' ').expect("pid and path");
    let pid: u32 = pid.parse().expect("pid");
    let ident = Identifier::new().expect("identifier");
    match peers_of_pid(&ident, pid) {
        Err(PeersError::NotPermitted { syscall, path, .. }) => {
            eprintln!("refused as expected: {syscall} {path}");
        }
        other => {
            eprintln!("expected NotPermitted, got {other:?}");
            return 1;
        }
    }
    let scan = peers_of_socket(&ident, &SocketName::Path(path.into())).expect("scan");
    if !scan.connections.is_empty() || scan.not_permitted.is_empty() {
        eprintln!(
            "expected nothing listed and refusals, got {} connections and {} refusals",
            scan.connections.len(),
            scan.not_permitted.len()
        );
        return 2;
    }
    0
}

fn who(c: &callerid::peers::Connection) -> &Identity {
    c.identity.as_ref().expect("identified")
}

/// The inode `/proc/<pid>/fd/<fd>` names, read independently of the library.
fn inode_of(pid: u32, fd: i32) -> u64 {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).expect("readlink");
    let s = link.to_string_lossy().into_owned();
    s.strip_prefix("socket:[")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a socket link: {s}"))
}

#[test]
fn peers_of_a_server_in_another_process() {
    if need_root("peers_of_a_server_in_another_process") {
        return;
    }
    let cg_a = TestCgroup::new("peers-a").expect("cgroup a");
    let cg_b = TestCgroup::new("peers-b.slice/peers-b.service").expect("cgroup b");
    let mut fx = Fixture::start(exe_cmd).expect("server");
    let a = fx.connect_client(&cg_a, None).expect("client a");
    let b = fx.connect_client(&cg_b, Some(65534)).expect("client b");
    let server = fx.server_pid();
    let ident = Identifier::new().expect("identifier");

    // By socket path: exactly the two accepted connections.
    let scan = peers_of_socket(&ident, &SocketName::Path(fx.path().to_owned())).expect("scan");
    assert!(
        scan.not_permitted.is_empty(),
        "root inspects everything: {:?}",
        scan.not_permitted
    );
    assert_eq!(scan.connections.len(), 2, "{:#?}", scan.connections);
    let mut seen = Vec::new();
    for c in &scan.connections {
        assert_eq!(c.server.pid.get(), server);
        assert_eq!(c.server.role, SocketRole::Accepted);
        assert_eq!(c.server.path, Some(SocketName::Path(fx.path().to_owned())));
        assert_eq!(c.server.inode, inode_of(server, c.server.fd));
        assert!(!c.server.peer_closed);
        let w = who(c);
        let pid = w.peer().pid.expect("peer pid").get();
        let cgroup = w.cgroup().and_then(|g| g.path.clone());
        seen.push((pid, w.peer().uid.get(), cgroup));
    }
    seen.sort();
    let mut want = vec![
        (a, 0, Some(cg_a.rel_path())),
        (b, 65534, Some(cg_b.rel_path())),
    ];
    want.sort();
    assert_eq!(seen, want);
    for c in &scan.connections {
        let w = who(c);
        let path = w
            .cgroup()
            .and_then(|g| g.path.clone())
            .expect("cgroup path");
        assert_eq!(
            w.workload(),
            Some(&callerid::workload::classify(&path).into_owned()),
            "the workload is the classifier's reading of the peer's cgroup"
        );
    }

    // By server pid: the same two, plus the connection it made to us.
    let conns = peers_of_pid(&ident, server).expect("by pid");
    assert_eq!(conns.len(), 3, "{conns:#?}");
    let accepted: Vec<_> = conns
        .iter()
        .filter(|c| c.server.role == SocketRole::Accepted)
        .collect();
    assert_eq!(accepted.len(), 2);
    let mut pids: Vec<u32> = accepted
        .iter()
        .map(|c| who(c).peer().pid.expect("pid").get())
        .collect();
    pids.sort();
    let mut want_pids = vec![a, b];
    want_pids.sort();
    assert_eq!(pids, want_pids);
    let out: Vec<_> = conns
        .iter()
        .filter(|c| c.server.role == SocketRole::Connected)
        .collect();
    assert_eq!(out.len(), 1, "{conns:#?}");
    assert_eq!(
        out[0].server.path,
        Some(SocketName::Path(fx.upstream_path().to_owned()))
    );
    assert_eq!(
        who(out[0]).peer().pid.map(|p| p.get()),
        Some(std::process::id()),
        "the peer of the connected-out socket is the listener's owner: us"
    );

    // A closed connection disappears.
    fx.close_client(a).expect("close a");
    let scan = peers_of_socket(&ident, &SocketName::Path(fx.path().to_owned())).expect("scan");
    assert_eq!(scan.connections.len(), 1, "{:#?}", scan.connections);
    assert_eq!(
        who(&scan.connections[0]).peer().pid.map(|p| p.get()),
        Some(b)
    );

    // An unprivileged caller is refused, clearly.
    let inner = exe_cmd();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .env(UNPRIV_ENV, format!("{server} {}", fx.path().display()))
        .stdin(Stdio::null())
        .output()
        .expect("run unprivileged");
    assert!(
        out.status.success(),
        "unprivileged role: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_such_process_and_no_connections() {
    let ident = Identifier::new().expect("identifier");
    // Pids are below 2^22.
    match peers_of_pid(&ident, 4_000_000_000) {
        Err(PeersError::NoSuchProcess { .. }) => {}
        other => panic!("expected NoSuchProcess, got {other:?}"),
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let l = std::os::unix::net::UnixListener::bind(dir.path().join("idle.sock")).expect("bind");
    let scan =
        peers_of_socket(&ident, &SocketName::Path(dir.path().join("idle.sock"))).expect("scan");
    assert!(scan.connections.is_empty(), "{:#?}", scan.connections);
    drop(l);
}

#[test]
fn own_socketpair_and_abstract_socket() {
    let ident = Identifier::new().expect("identifier");
    let (x, _y) = std::os::unix::net::UnixStream::pair().expect("pair");
    let name = format!("callerid-peers-test-{}", std::process::id());
    let addr = rustix::net::SocketAddrUnix::new_abstract_name(name.as_bytes()).expect("name");
    let l = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .expect("socket");
    rustix::net::bind(&l, &addr).expect("bind");
    rustix::net::listen(&l, 8).expect("listen");
    let c = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .expect("socket");
    rustix::net::connect(&c, &addr).expect("connect");
    // CLOEXEC everywhere: children that other tests spawn meanwhile must not inherit
    // (and so hold open) these connections.
    let accepted = rustix::net::accept_with(&l, rustix::net::SocketFlags::CLOEXEC).expect("accept");

    let conns = peers_of_pid(&ident, std::process::id()).expect("own process");
    use std::os::fd::AsRawFd;
    let find = |fd: i32| {
        conns
            .iter()
            .find(|c| c.server.fd == fd)
            .unwrap_or_else(|| panic!("fd {fd} not listed: {conns:#?}"))
    };
    assert_eq!(find(x.as_raw_fd()).server.role, SocketRole::Socketpair);
    assert_eq!(find(x.as_raw_fd()).server.path, None);
    let acc = find(accepted.as_raw_fd());
    assert_eq!(acc.server.role, SocketRole::Accepted);
    assert_eq!(
        acc.server.path,
        Some(SocketName::Abstract(name.as_bytes().to_vec()))
    );
    assert_eq!(find(c.as_raw_fd()).server.role, SocketRole::Connected);

    let scan =
        peers_of_socket(&ident, &SocketName::parse(format!("@{name}").as_ref())).expect("scan");
    let mine: Vec<_> = scan
        .connections
        .iter()
        .filter(|c| c.server.pid.get() == std::process::id())
        .collect();
    assert_eq!(mine.len(), 1, "{:#?}", scan.connections);
    assert_eq!(mine[0].server.fd, accepted.as_raw_fd());

    // The peer has closed its end: still listed (the server has not closed), flagged.
    // Another test's host-wide scan may hold a copy of `c` for a moment (it is in this
    // process), keeping the connection open until it lets go: wait for that.
    drop(c);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let conns = peers_of_pid(&ident, std::process::id()).expect("own process");
        let acc = conns
            .iter()
            .find(|x| x.server.fd == accepted.as_raw_fd())
            .expect("still listed");
        if acc.server.peer_closed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "peer never seen closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The server role in private mount and network namespaces, where the fixture's directory is
/// bind-mounted at `/mnt/srv`: it binds and names its socket `/mnt/srv/server.sock`.
fn exe_cmd_private_mounts() -> Command {
    use callerid_testkit::unix_server::{PATH_ENV, UPSTREAM_ENV};
    let inner = exe_cmd();
    let script = format!(
        "d=$(dirname \"${PATH_ENV}\") && mount -t tmpfs callerid-peers /mnt && \
         mkdir /mnt/srv && mount --bind \"$d\" /mnt/srv && \
         {PATH_ENV}=/mnt/srv/server.sock {UPSTREAM_ENV}=/mnt/srv/upstream.sock exec \"$@\""
    );
    let mut c = Command::new("unshare");
    // -n as well: its sockets (and its clients') are then not in our /proc/net/unix, so
    // they are copied and checked rather than passed over by name.
    c.args([
        "-m",
        "-n",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
        "sh",
    ])
    .arg(inner.get_program())
    .args(inner.get_args());
    c
}

#[test]
fn server_that_names_its_socket_differently() {
    if need_root("server_that_names_its_socket_differently") {
        return;
    }
    let cg = TestCgroup::new("peers-mnt").expect("cgroup");
    let mut fx = Fixture::start(exe_cmd_private_mounts).expect("server");
    let client = fx.connect_client(&cg, None).expect("client");
    let ident = Identifier::new().expect("identifier");
    let scan = peers_of_socket(&ident, &SocketName::Path(fx.path().to_owned())).expect("scan");
    assert_eq!(scan.connections.len(), 1, "{:#?}", scan.connections);
    let c = &scan.connections[0];
    assert_eq!(c.server.pid.get(), fx.server_pid());
    assert_eq!(
        c.server.path,
        Some(SocketName::Path("/mnt/srv/server.sock".into())),
        "the server's own name for it"
    );
    assert_eq!(who(c).peer().pid.map(|p| p.get()), Some(client));
}

/// Kills and reaps a helper process on drop.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server in another mount namespace that bound the *same spelling* of a path, but
/// a different file (a tmpfs hides ours there), is not listed under our socket.
#[test]
fn same_path_spelling_in_another_mount_namespace_is_another_socket() {
    use callerid_testkit::unix_server::{PATH_ENV, ROLE_ENV, wait_for};
    use std::io::BufReader;
    if need_root("same_path_spelling_in_another_mount_namespace_is_another_socket") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.sock");
    // Ours: a listener and one connection to it, both in this process.
    let ours = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let _client = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    let (accepted, _) = ours.accept().expect("accept");

    // Theirs: the same path, inside a tmpfs over our directory in a private mount
    // namespace, with a client that joined that namespace.
    let inner = exe_cmd();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs callerid-peers "$0" && exec "$@""#)
        .arg(dir.path())
        .arg(inner.get_program())
        .args(inner.get_args())
        .env(ROLE_ENV, "server")
        .env(PATH_ENV, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut server = Reap(cmd.spawn().expect("spawn shadow server"));
    let mut server_out = BufReader::new(server.0.stdout.take().expect("stdout"));
    assert!(wait_for(&mut server_out, "listening"));
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &server.0.id().to_string(), "-m", "--"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .env(ROLE_ENV, "hold")
        .env(PATH_ENV, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let _their_client = Reap(cmd.spawn().expect("spawn shadow client"));
    assert!(wait_for(&mut server_out, "accepted"));

    let ident = Identifier::new().expect("identifier");
    let scan = peers_of_socket(&ident, &SocketName::Path(path.clone())).expect("scan");
    assert_eq!(scan.connections.len(), 1, "{:#?}", scan.connections);
    let c = &scan.connections[0];
    assert_eq!(c.server.pid.get(), std::process::id());
    use std::os::fd::AsRawFd;
    assert_eq!(c.server.fd, accepted.as_raw_fd());
    // Their connection is there all the same, under their pid.
    let theirs = peers_of_pid(&ident, server.0.id()).expect("by pid");
    assert_eq!(theirs.len(), 1, "{theirs:#?}");
    assert_eq!(theirs[0].server.path, Some(SocketName::Path(path)));
}
