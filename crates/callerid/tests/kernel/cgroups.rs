//! cgroup id and path; moving between cgroups; connect-time source and drift.

use crate::support::{CGROUP_ENV, Client, listener, role_command};
use callerid::{CgroupAt, CgroupId, ConnectCgroupSource, DriftKind, Identifier, Provenance};
use callerid_testkit::{TestCgroup, need_root};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::{Arc, Mutex};

#[test]
fn client_in_test_cgroup_then_moved() {
    if need_root("client_in_test_cgroup_then_moved") {
        return;
    }
    let a = TestCgroup::new("system.slice/callerid-a.service").expect("cgroup a");
    let b = TestCgroup::new("other").expect("cgroup b");
    let ident = Identifier::new().expect("identifier");
    let l = listener();
    let mut cmd = role_command("client");
    cmd.env(CGROUP_ENV, a.dir());
    let mut c = Client::spawn(&l, cmd);

    let first = ident.identify(&c.conn).expect("identify");
    let cg = first.cgroup().expect("cgroup");
    assert_eq!(cg.id.get(), a.id(), "cgroup id is the directory's inode");
    assert_eq!(cg.path.as_deref(), Some(a.rel_path().as_str()));
    assert_eq!(cg.at, CgroupAt::Now);
    assert_eq!(first.provenance().cgroup, Some(Provenance::KernelNow));
    let w = first.workload().expect("workload");
    assert_eq!(first.provenance().workload, Some(Provenance::CgroupPath));
    // Whatever the classifier says, it was asked about this path (cached per id).
    assert_eq!(w, &callerid::workload::classify(&a.rel_path()).into_owned());

    b.add_pid(c.pid()).expect("move to b");
    c.ping();
    let second = ident.identify(&c.conn).expect("identify");
    let cg2 = second.cgroup().expect("cgroup");
    assert_eq!(cg2.id.get(), b.id(), "current view follows the move");
    assert_eq!(cg2.path.as_deref(), Some(b.rel_path().as_str()));
    assert_eq!(
        second.peer(),
        first.peer(),
        "the connect-time snapshot does not move"
    );
    assert_eq!(second.provenance().peer, Some(Provenance::KernelConnect));
    assert_eq!(second.provenance().cgroup, Some(Provenance::KernelNow));
    c.exit_and_reap();
}

/// A connect-time source backed by what the test itself arranged: the client put
/// itself into cgroup A before `connect()`, so A *is* its connect-time cgroup. Stands in
/// for the BPF source (another crate) to exercise the `connect` and `drift` logic.
#[derive(Debug)]
struct Arranged {
    by_fd: Mutex<Vec<(i32, u64)>>,
}

impl ConnectCgroupSource for Arranged {
    fn connect_cgroup(&self, sock: BorrowedFd<'_>) -> std::io::Result<Option<CgroupId>> {
        let fd = sock.as_raw_fd();
        let map = self.by_fd.lock().expect("lock");
        Ok(map
            .iter()
            .find(|(f, _)| *f == fd)
            .map(|(_, id)| CgroupId::new(*id)))
    }
    fn describe(&self) -> String {
        "test: cgroup arranged before connect()".to_owned()
    }
}

#[test]
fn connect_time_cgroup_and_drift() {
    if need_root("connect_time_cgroup_and_drift") {
        return;
    }
    let a = TestCgroup::new("connect-a").expect("cgroup a");
    let b = TestCgroup::new("connect-b").expect("cgroup b");
    let src = Arc::new(Arranged {
        by_fd: Mutex::new(Vec::new()),
    });
    let ident = Identifier::builder()
        .connect_cgroup_source(src.clone())
        .build()
        .expect("identifier");
    assert!(ident.features().connect_cgroup.available);

    let l = listener();
    let mut cmd = role_command("client");
    cmd.env(CGROUP_ENV, a.dir());
    let mut c = Client::spawn(&l, cmd);
    src.by_fd
        .lock()
        .expect("lock")
        .push((c.conn.as_raw_fd(), a.id()));

    let same = ident.identify(&c.conn).expect("identify");
    let cg = same.cgroup().expect("cgroup");
    assert_eq!((cg.id.get(), cg.at), (a.id(), CgroupAt::Connect));
    assert_eq!(cg.path.as_deref(), Some(a.rel_path().as_str()));
    assert_eq!(same.provenance().cgroup, Some(Provenance::KernelConnect));
    let d = same
        .drift()
        .expect("drift is computed when connect-time capture ran");
    assert!(d.changed.is_empty() && d.cgroup.is_none(), "{d:?}");

    b.add_pid(c.pid()).expect("move");
    c.ping();
    let moved = ident.identify(&c.conn).expect("identify");
    let cg = moved.cgroup().expect("cgroup");
    assert_eq!(
        (cg.id.get(), cg.at),
        (a.id(), CgroupAt::Connect),
        "connect-time cgroup stays"
    );
    let d = moved.drift().expect("drift");
    assert_eq!(d.changed, vec![DriftKind::Cgroup]);
    let now = d.cgroup.as_ref().expect("current cgroup");
    assert_eq!(now.id.get(), b.id());
    assert_eq!(now.path.as_deref(), Some(b.rel_path().as_str()));

    // After exit and reap: still the connect-time cgroup; drift against the exit-time one.
    c.exit_and_reap();
    let gone = ident.identify(&c.conn).expect("identify");
    let cg = gone.cgroup().expect("cgroup");
    assert_eq!((cg.id.get(), cg.at), (a.id(), CgroupAt::Connect));
    let d = gone.drift().expect("drift");
    assert_eq!(
        d.changed,
        vec![DriftKind::Cgroup],
        "no creds for a reaped process: no euid drift"
    );
    assert_eq!(d.cgroup.as_ref().map(|c| c.id.get()), Some(b.id()));

    // A socket the source has no record of: cgroup now, no drift.
    let (x, _y) = std::os::unix::net::UnixStream::pair().expect("pair");
    let other = ident.identify(&x).expect("identify");
    assert_eq!(other.cgroup().expect("cgroup").at, CgroupAt::Now);
    assert!(other.drift().is_none());
}

#[test]
fn connect_time_creds_drift_after_execve() {
    if need_root("connect_time_creds_drift_after_execve") {
        return;
    }
    let src = Arc::new(Arranged {
        by_fd: Mutex::new(Vec::new()),
    });
    let ident = Identifier::builder()
        .connect_cgroup_source(src.clone())
        .build()
        .expect("identifier");
    let l = listener();
    let mut c = Client::spawn(&l, role_command("client"));
    let before = ident.identify(&c.conn).expect("identify");
    let cgroup_now = before.cgroup().expect("cgroup").id.get();
    src.by_fd
        .lock()
        .expect("lock")
        .push((c.conn.as_raw_fd(), cgroup_now));

    use std::io::Write;
    writeln!(c.conn, "exec_setpriv").expect("write");
    crate::support::wait_until("setpriv + exec", || {
        ident
            .identify(&c.conn)
            .ok()
            .and_then(|w| w.process().and_then(|p| p.exe.clone()))
            .is_some_and(|e| e.ends_with("/sleep"))
    });
    let after = ident.identify(&c.conn).expect("identify");
    assert_eq!(
        after.peer(),
        before.peer(),
        "connect-time snapshot unchanged"
    );
    let p = after.process().expect("process");
    assert_eq!(
        (p.euid.map(|u| u.get()), p.egid.map(|g| g.get())),
        (Some(4242), Some(4242))
    );
    assert_eq!(p.comm.as_deref(), Some("sleep"));
    let d = after.drift().expect("drift");
    assert!(
        d.changed.contains(&DriftKind::Euid) && d.changed.contains(&DriftKind::Egid),
        "{d:?}"
    );
    assert!(
        !d.changed.contains(&DriftKind::Exe),
        "exe drift is never claimed"
    );
    assert!(!d.changed.contains(&DriftKind::Cgroup));
}
