//! Peers that are gone before we ask: zombie, reaped; never wrong data.

use crate::support::{CGROUP_ENV, Client, listener, role_command, wait_until};
use callerid::{CgroupAt, Identifier, ProcessState, Provenance, WarningCode};
use callerid_testkit::{TestCgroup, need_root};
use rustix::event::{PollFd, PollFlags, poll};

fn pidfd_readable(pid: u32) -> impl FnMut() -> bool {
    let p = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).expect("pidfd");
    move || {
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        poll(
            &mut fds,
            Some(&rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }),
        )
        .expect("poll")
            > 0
    }
}

#[test]
fn zombie_then_reaped() {
    if need_root("zombie_then_reaped") {
        return;
    }
    let a = TestCgroup::new("exit-a").expect("cgroup");
    let ident = Identifier::new().expect("identifier");
    let l = listener();
    let mut cmd = role_command("client");
    cmd.env(CGROUP_ENV, a.dir());
    let mut c = Client::spawn(&l, cmd);
    let pid = c.pid();
    let mut exited = pidfd_readable(pid);
    use std::io::Write;
    writeln!(c.conn, "exit").expect("exit");
    wait_until("client exit", &mut exited);

    // Zombie: exited, not reaped.
    let z = ident.identify(&c.conn).expect("identify zombie");
    let p = z.process().expect("process");
    assert_eq!(p.state, ProcessState::Zombie);
    assert_eq!(p.pid.map(|p| p.get()), Some(pid));
    assert!(p.euid.is_some(), "creds are still there for a zombie");
    let cg = z.cgroup().expect("cgroup");
    assert_eq!((cg.id.get(), cg.at), (a.id(), CgroupAt::Now));
    assert!(z.namespaces().is_none());

    // Reaped.
    let st = c.child.wait().expect("wait");
    assert!(st.success());
    let r = ident.identify(&c.conn).expect("identify reaped");
    assert_eq!(
        r.peer().pid.map(|p| p.get()),
        Some(pid),
        "connect-time pid stays"
    );
    let p = r.process().expect("process");
    assert_eq!(p.state, ProcessState::Exited);
    assert_eq!(
        (p.pid, p.comm.as_deref(), p.exe.as_deref(), p.euid),
        (None, None, None, None)
    );
    assert!(p.pidfs_id.is_some());
    let cg = r.cgroup().expect("exit-time cgroup");
    assert_eq!((cg.id.get(), cg.at), (a.id(), CgroupAt::Exit));
    assert_eq!(cg.path.as_deref(), Some(a.rel_path().as_str()));
    assert_eq!(r.provenance().cgroup, Some(Provenance::KernelExit));
    assert_eq!(r.provenance().process, Some(Provenance::KernelExit));
    assert!(r.namespaces().is_none() && r.user_namespace().is_none());
    assert!(
        r.warnings()
            .iter()
            .any(|w| w.code == WarningCode::PeerExited),
        "{:?}",
        r.warnings()
    );
}

#[test]
fn exited_before_accept() {
    let ident = Identifier::new().expect("identifier");
    let l = listener();
    let mut cmd = role_command("connect_exit");
    cmd.env(crate::support::SOCK_ENV, &l.path);
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id();
    assert!(child.wait().expect("wait").success());
    let (conn, _) = l.listener.accept().expect("accept");
    let who = ident.identify(&conn).expect("identify");
    assert_eq!(who.peer().pid.map(|p| p.get()), Some(pid));
    let p = who.process().expect("process");
    assert_eq!(p.state, ProcessState::Exited);
    assert!(p.comm.is_none() && p.exe.is_none() && p.pid.is_none());
    assert_eq!(who.cgroup().map(|c| c.at), Some(CgroupAt::Exit));
}

#[test]
fn exit_time_cgroup_removed_afterwards() {
    if need_root("exit_time_cgroup_removed_afterwards") {
        return;
    }
    let l = listener();
    let cg = TestCgroup::new("removed-later").expect("cgroup");
    let id = cg.id();
    let mut cmd = role_command("client");
    cmd.env(CGROUP_ENV, cg.dir());
    let mut c = Client::spawn(&l, cmd);
    c.exit_and_reap();
    drop(cg);
    // A fresh identifier: nothing cached about this cgroup.
    let who = Identifier::new()
        .expect("identifier")
        .identify(&c.conn)
        .expect("identify");
    let g = who.cgroup().expect("exit-time cgroup id survives");
    assert_eq!(
        (g.id.get(), g.at, g.path.as_deref()),
        (id, CgroupAt::Exit, None)
    );
    assert!(
        who.warnings()
            .iter()
            .any(|w| w.code == WarningCode::CgroupRemoved),
        "{:?}",
        who.warnings()
    );
    assert!(who.workload().is_none());
}
