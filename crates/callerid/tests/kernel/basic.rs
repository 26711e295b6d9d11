//! The common path: socketpair and filesystem sockets, peer vs process.

use crate::support::{Client, listener, pidfs_inode_of, role_command, status_groups};
use callerid::{CgroupAt, Identifier, PidfdSource, ProcessState, Provenance};
use std::os::unix::net::UnixStream;

#[test]
fn socketpair_peer_is_us() {
    let ident = Identifier::new().expect("identifier");
    let (a, b) = UnixStream::pair().expect("socketpair");
    for end in [&a, &b] {
        let who = ident.identify(end).expect("identify");
        let me = std::process::id();
        assert_eq!(who.peer().pid.map(|p| p.get()), Some(me));
        assert_eq!(who.peer().uid.get(), rustix::process::geteuid().as_raw());
        assert_eq!(who.peer().gid.get(), rustix::process::getegid().as_raw());
        let p = who.process().expect("process");
        assert_eq!(p.pid.map(|p| p.get()), Some(me));
        assert_eq!(p.state, ProcessState::Alive);
        assert_eq!(p.pidfs_id.map(|i| i.get()), Some(pidfs_inode_of(me)));
        assert_eq!(who.provenance().peer, Some(Provenance::KernelConnect));
        assert_eq!(who.provenance().process, Some(Provenance::KernelNow));
        assert_eq!(who.provenance().pidfd, Some(PidfdSource::SoPeerpidfd));
        assert!(who.drift().is_none(), "no connect-time capture ran");
    }
}

#[test]
fn filesystem_socket_peer_matches_client() {
    let ident = Identifier::new().expect("identifier");
    let l = listener();
    let mut c = Client::spawn(&l, role_command("client"));
    let pid = c.pid();
    assert_eq!(c.ping(), pid);
    let who = ident.identify(&c.conn).expect("identify");

    let peer = who.peer();
    assert_eq!(peer.pid.map(|p| p.get()), Some(pid));
    assert_eq!(peer.uid.get(), rustix::process::geteuid().as_raw());
    assert_eq!(peer.gid.get(), rustix::process::getegid().as_raw());
    let groups: Vec<u32> = peer
        .groups
        .as_ref()
        .expect("groups")
        .iter()
        .map(|g| g.get())
        .collect();
    assert_eq!(groups, status_groups(pid));
    assert_eq!(
        peer.security_label, None,
        "no LSM labels sockets on this machine kind"
    );

    let p = who.process().expect("process");
    assert_eq!(p.pid.map(|p| p.get()), Some(pid));
    assert_eq!(p.ppid.map(|p| p.get()), Some(std::process::id()));
    assert_eq!(p.pidfs_id.map(|i| i.get()), Some(pidfs_inode_of(pid)));
    assert_eq!(p.state, ProcessState::Alive);
    let exe = std::env::current_exe().expect("exe");
    assert_eq!(p.exe.as_deref(), Some(exe.to_str().expect("utf8")));
    assert!(p.comm.as_deref().is_some_and(|c| !c.is_empty()));

    let cg = who.cgroup().expect("cgroup");
    assert_eq!(cg.at, CgroupAt::Now);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup file");
    let v2 = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("v2 line");
    assert_eq!(cg.path.as_deref(), Some(v2));
    assert_eq!(who.provenance().cgroup, Some(Provenance::KernelNow));

    let ns = who.namespaces().expect("namespaces");
    for (name, got) in [
        ("user", ns.user),
        ("pid", ns.pid),
        ("net", ns.net),
        ("mnt", ns.mnt),
    ] {
        let link = std::fs::read_link(format!("/proc/{pid}/ns/{name}")).expect("ns link");
        let link = link.to_string_lossy();
        let want: u64 = link
            .split(":[")
            .nth(1)
            .and_then(|s| s.strip_suffix(']'))
            .expect("ino")
            .parse()
            .expect("num");
        assert_eq!(got.map(|n| n.get()), Some(want), "{name} namespace");
    }
    let u = who.user_namespace().expect("user namespace");
    assert!(u.initial);
    assert_eq!(u.uid.map(|x| x.get()), Some(peer.uid.get()));
    assert!(who.workload().is_some());
    assert_eq!(who.provenance().workload, Some(Provenance::CgroupPath));
    assert!(who.warnings().is_empty(), "{:?}", who.warnings());

    // The JSON form has every top-level name of DESIGN.md §2, nulls included.
    let v = serde_json::to_value(&who).expect("json");
    for key in callerid_testkit::IDENTITY_JSON_KEYS {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let back: callerid::Identity = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, who);
    c.exit_and_reap();
}

#[test]
fn seqpacket_works_like_stream() {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};
    let ident = Identifier::new().expect("identifier");
    let (a, _b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .expect("socketpair");
    let who = ident.identify(&a).expect("identify");
    assert_eq!(who.peer().pid.map(|p| p.get()), Some(std::process::id()));
}

#[test]
fn parts_not_collected_are_null() {
    let ident = Identifier::builder()
        .parts(callerid::Parts::MINIMAL)
        .build()
        .expect("identifier");
    let (a, _b) = UnixStream::pair().expect("socketpair");
    let who = ident.identify(&a).expect("identify");
    assert!(who.process().is_none());
    assert!(who.namespaces().is_none());
    assert!(who.user_namespace().is_none());
    assert!(who.workload().is_none());
    assert!(who.cgroup().is_some(), "cgroup is always collected");
    let p = who.provenance();
    for prov in [p.process, p.namespaces, p.user_namespace, p.workload] {
        assert_eq!(prov, Some(Provenance::NotCollected));
    }
    let k = Identifier::builder()
        .parts(callerid::Parts::KERNEL_ONLY)
        .build()
        .expect("identifier");
    let who = k.identify(&a).expect("identify");
    let pr = who.process().expect("process");
    assert!(pr.comm.is_none() && pr.exe.is_none() && pr.euid.is_some());
}

#[test]
fn identify_pid_is_not_connect_time() {
    let ident = Identifier::new().expect("identifier");
    let l = listener();
    let mut c = Client::spawn(&l, role_command("client"));
    let who = ident.identify_pid(c.pid()).expect("identify_pid");
    assert_eq!(who.peer().pid.map(|p| p.get()), Some(c.pid()));
    assert_eq!(who.provenance().peer, Some(Provenance::KernelNow));
    assert_eq!(who.provenance().pidfd, Some(PidfdSource::PidfdOpen));
    let groups: Vec<u32> = who
        .peer()
        .groups
        .as_ref()
        .expect("groups from status")
        .iter()
        .map(|g| g.get())
        .collect();
    assert_eq!(groups, status_groups(c.pid()));
    assert!(who.drift().is_none());
    // Same facts as through the socket, apart from how they were obtained.
    let via_socket = ident.identify(&c.conn).expect("identify");
    assert_eq!(who.cgroup(), via_socket.cgroup());
    assert_eq!(who.namespaces(), via_socket.namespaces());
    assert_eq!(
        who.process().map(|p| p.pidfs_id),
        via_socket.process().map(|p| p.pidfs_id)
    );
    c.exit_and_reap();
}
