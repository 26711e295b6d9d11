//! Fallback paths, forced with the builder's feature switches so they run on this
//! kernel too: they must agree with the kernel-first path and say how they got there.

use crate::support::{CGROUP_ENV, Client, listener, role_command};
use callerid::{Feature, Identifier, PidfdSource, ProcessState, Provenance, WarningCode};
use callerid_testkit::{TestCgroup, need_root};

fn mode(disabled: &[Feature]) -> Identifier {
    let mut b = Identifier::builder();
    for &f in disabled {
        b = b.disable(f);
    }
    let ident = b.build().expect("identifier");
    let f = ident.features();
    for d in disabled {
        let st = match d {
            Feature::SoPeerpidfd => &f.so_peerpidfd,
            Feature::PidfdGetInfo => &f.pidfd_get_info,
            Feature::OpenByHandleAt => &f.open_by_handle_at,
            Feature::PidfdNamespaceIoctls => &f.pidfd_namespace_ioctls,
            _ => unreachable!(),
        };
        assert!(
            st.disabled && !st.in_use() && st.fallback.is_some(),
            "{d:?}: {st:?}"
        );
    }
    ident
}

#[test]
fn every_fallback_agrees_with_the_kernel_path() {
    if need_root("every_fallback_agrees_with_the_kernel_path") {
        return;
    }
    let cg = TestCgroup::new("fallback.slice/fb.service").expect("cgroup");
    let l = listener();
    let mut cmd = role_command("client");
    cmd.env(CGROUP_ENV, cg.dir());
    let mut c = Client::spawn(&l, cmd);
    let reference = Identifier::new()
        .expect("identifier")
        .identify(&c.conn)
        .expect("identify");
    assert_eq!(reference.cgroup().map(|g| g.id.get()), Some(cg.id()));

    use Feature::*;
    let all = [
        SoPeerpidfd,
        PidfdGetInfo,
        OpenByHandleAt,
        PidfdNamespaceIoctls,
    ];
    let mut combos: Vec<Vec<Feature>> = all.iter().map(|f| vec![*f]).collect();
    combos.push(vec![PidfdGetInfo, OpenByHandleAt]);
    combos.push(all.to_vec());
    for disabled in combos {
        let ident = mode(&disabled);
        // Fresh identifier, cold caches: the fallback really runs.
        let who = ident
            .identify(&c.conn)
            .unwrap_or_else(|e| panic!("{disabled:?}: {e:#}"));
        let ctx = format!("{disabled:?}: {who:#?}");
        assert_eq!(who.peer(), reference.peer(), "{ctx}");
        let (p, r) = (
            who.process().expect("process"),
            reference.process().expect("process"),
        );
        assert_eq!(
            (p.pid, p.ppid, p.uid, p.euid, p.gid, p.egid),
            (r.pid, r.ppid, r.uid, r.euid, r.gid, r.egid),
            "{ctx}"
        );
        assert_eq!(
            (&p.comm, &p.exe, p.state, p.pidfs_id),
            (&r.comm, &r.exe, r.state, r.pidfs_id),
            "{ctx}"
        );
        assert_eq!(who.cgroup(), reference.cgroup(), "{ctx}");
        assert_eq!(who.namespaces(), reference.namespaces(), "{ctx}");
        assert_eq!(who.user_namespace(), reference.user_namespace(), "{ctx}");
        assert_eq!(who.workload(), reference.workload(), "{ctx}");

        let prov = who.provenance();
        let no_info = disabled.contains(&PidfdGetInfo);
        assert_eq!(
            prov.process,
            Some(if no_info {
                Provenance::ProcVerified
            } else {
                Provenance::KernelNow
            }),
            "{ctx}"
        );
        assert_eq!(
            prov.cgroup,
            Some(if no_info {
                Provenance::ProcVerified
            } else {
                Provenance::KernelNow
            }),
            "{ctx}"
        );
        // Every part is collected, so /proc/<pid> is open anyway: the namespaces are
        // read through it (one readlink each) whether or not the ioctls are usable.
        let ns_prov = Provenance::ProcVerified;
        assert_eq!(prov.namespaces, Some(ns_prov), "{ctx}");
        if disabled.contains(&SoPeerpidfd) {
            assert_eq!(prov.pidfd, Some(PidfdSource::PidfdOpen), "{ctx}");
            assert!(
                who.warnings()
                    .iter()
                    .any(|w| w.code == WarningCode::PidReusePossible),
                "{ctx}"
            );
        } else {
            assert_eq!(prov.pidfd, Some(PidfdSource::SoPeerpidfd), "{ctx}");
            assert!(who.warnings().is_empty(), "{ctx}");
        }
    }
    c.exit_and_reap();
}

#[test]
fn fallback_for_reaped_peer_reports_nothing_current() {
    let l = listener();
    let mut c = Client::spawn(&l, role_command("client"));
    c.exit_and_reap();
    for disabled in [
        vec![Feature::PidfdGetInfo],
        vec![Feature::PidfdGetInfo, Feature::PidfdNamespaceIoctls],
    ] {
        let who = mode(&disabled).identify(&c.conn).expect("identify");
        let p = who.process().expect("process");
        assert_eq!(p.state, ProcessState::Exited, "{who:#?}");
        assert!(p.pid.is_none() && p.comm.is_none() && p.exe.is_none() && p.euid.is_none());
        assert!(
            who.cgroup().is_none(),
            "no exit-time cgroup without PIDFD_GET_INFO"
        );
        assert!(who.namespaces().is_none() && who.user_namespace().is_none());
        assert!(
            who.warnings()
                .iter()
                .any(|w| w.code == WarningCode::PeerExited)
        );
    }
    // Without SO_PEERPIDFD a reaped peer's pid has nobody behind it here (nothing reused
    // it): pidfd_open fails and the process part is absent, with a warning.
    let who = mode(&[Feature::SoPeerpidfd])
        .identify(&c.conn)
        .expect("identify");
    let codes: Vec<WarningCode> = who.warnings().iter().map(|w| w.code).collect();
    match who.process() {
        None => assert!(codes.contains(&WarningCode::PeerExited), "{codes:?}"),
        // Another process took the pid meanwhile: that must be flagged.
        Some(_) => assert!(codes.contains(&WarningCode::PidReusePossible), "{codes:?}"),
    }
}

#[test]
fn identify_pid_without_pidfd_get_info() {
    let l = listener();
    let mut c = Client::spawn(&l, role_command("client"));
    let who = mode(&[Feature::PidfdGetInfo])
        .identify_pid(c.pid())
        .expect("identify_pid");
    assert_eq!(who.provenance().peer, Some(Provenance::ProcVerified));
    assert_eq!(who.provenance().pidfd, Some(PidfdSource::PidfdOpen));
    assert_eq!(who.peer().uid.get(), rustix::process::geteuid().as_raw());
    assert_eq!(who.peer().pid.map(|p| p.get()), Some(c.pid()));
    assert_eq!(who.process().map(|p| p.state), Some(ProcessState::Alive));
    c.exit_and_reap();
}
