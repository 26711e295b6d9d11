//! Workload resolution end to end: real clients in cgroups named exactly like real
//! runtimes' layouts, and a real podman container (runc, busybox image) whose process
//! connects to a socket we serve.

use crate::support::{CGROUP_ENV, Client, listener, role_command};
use callerid::workload::{Kind, Qos, Runtime};
use callerid::{Identifier, Identity, Provenance};
use callerid_testkit::{TestCgroup, need_root, podman, skip};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

/// 64 hex digits that differ per run, so parallel runs never share a cgroup.
fn hex64(salt: u64) -> String {
    let seed = std::process::id() as u64 ^ (salt << 32);
    (0..4)
        .map(|i| {
            format!(
                "{:016x}",
                seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(i * 13)
            )
        })
        .collect()
}

/// Puts a real client process into `<cgroup2>/<rel>` and identifies its connection.
fn identify_in(rel: &str) -> (Identity, TestCgroup) {
    let cg = TestCgroup::at_root(rel).expect("create runtime-shaped cgroup");
    let l = listener();
    let mut cmd = role_command("client");
    cmd.env(CGROUP_ENV, cg.dir());
    let mut c = Client::spawn(&l, cmd);
    let id = Identifier::new()
        .expect("identifier")
        .identify(&c.conn)
        .expect("identify");
    c.exit_and_reap();
    (id, cg)
}

fn check_path(id: &Identity, rel: &str) {
    let cg = id.cgroup().expect("cgroup");
    assert_eq!(cg.path.as_deref(), Some(rel), "host cgroup path");
    assert_eq!(id.provenance().workload, Some(Provenance::CgroupPath));
}

#[test]
fn synthetic_docker_systemd_scope() {
    if need_root("synthetic_docker_systemd_scope") {
        return;
    }
    let cid = hex64(1);
    let rel = format!("/system.slice/docker-{cid}.scope");
    let (id, _cg) = identify_in(&rel);
    check_path(&id, &rel);
    let w = id.workload().expect("workload");
    let c = w.container.as_ref().expect("a container");
    assert_eq!(c.runtime, Runtime::Docker);
    assert_eq!(c.id, cid);
    assert_eq!(
        w.unit.as_deref(),
        Some(format!("docker-{cid}.scope").as_str())
    );
    assert_eq!(w.slice.as_deref(), Some("system.slice"));
    assert!(w.pod.is_none());
}

#[test]
fn synthetic_kubepods_systemd_cri_containerd() {
    if need_root("synthetic_kubepods_systemd_cri_containerd") {
        return;
    }
    let cid = hex64(2);
    let uid = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9";
    let uid_ = uid.replace('-', "_");
    let rel = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{cid}.scope"
    );
    let (id, _cg) = identify_in(&rel);
    check_path(&id, &rel);
    let w = id.workload().expect("workload");
    let c = w.container.as_ref().expect("a container");
    assert_eq!(c.runtime, Runtime::Containerd);
    assert_eq!(c.id, cid);
    let pod = w.pod.as_ref().expect("a pod");
    assert_eq!(pod.uid, uid, "pod uid is reported dashed");
    assert_eq!(pod.qos, Qos::Burstable);
    assert!(w.chain.iter().any(|e| e.kind == Kind::Pod && e.id == uid));
    assert_eq!(w.chain.last().map(|e| e.kind), Some(Kind::Container));
}

#[test]
fn synthetic_lxc_payload() {
    if need_root("synthetic_lxc_payload") {
        return;
    }
    let name = format!("callerid{}", std::process::id());
    let rel = format!("/lxc.payload.{name}");
    let (id, _cg) = identify_in(&rel);
    check_path(&id, &rel);
    let w = id.workload().expect("workload");
    let last = w.chain.last().expect("a chain element");
    assert_eq!(last.runtime, Runtime::Lxc);
    assert_eq!(last.id, name);
}

#[test]
fn synthetic_nspawn_machine_scope() {
    if need_root("synthetic_nspawn_machine_scope") {
        return;
    }
    let rel = format!(
        "/machine.slice/machine-callerid\\x2dbox{}.scope",
        std::process::id()
    );
    let (id, _cg) = identify_in(&rel);
    check_path(&id, &rel);
    let w = id.workload().expect("workload");
    let last = w.chain.last().expect("a chain element");
    assert_eq!(last.runtime, Runtime::SystemdNspawn);
    assert_eq!(
        last.id,
        format!("callerid-box{}", std::process::id()),
        "\\x2d is unescaped"
    );
    assert_eq!(w.slice.as_deref(), Some("machine.slice"));
}

/// A socket directory a container (possibly in a user namespace) can reach.
fn shared_listener() -> (tempfile::TempDir, std::os::unix::net::UnixListener) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let path = dir.path().join("s.sock");
    let l = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    (dir, l)
}

/// Runs this test binary inside a podman container in the `client` role, connected to
/// a socket we serve; identifies the connection; returns the identity and the id podman
/// reported.
fn podman_client(userns: Option<u32>) -> Option<(Identity, String)> {
    if let Some(why) = podman::unavailable() {
        skip("podman end-to-end", &why);
        return None;
    }
    podman::image().expect("busybox image");
    let (dir, l) = shared_listener();
    let exe = std::env::current_exe().expect("current_exe");
    let mut run = podman::Run::new()
        .expect("podman run")
        .volume(dir.path(), "/s")
        .args(["-v", &format!("{}:/t:ro", exe.display())])
        .args([
            "-e",
            "CALLERID_TEST_ROLE=client",
            "-e",
            "CALLERID_TEST_SOCK=/s/s.sock",
        ]);
    if let Some(base) = userns {
        run = run.userns(base);
    }
    let (mut cmd, cidfile) = run.command([
        "/t",
        "--exact",
        "role_entry",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ]);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("podman");
    let (conn, _) = l.accept().expect("accept from the container");
    // Round trip: the client is running and connected.
    let mut w = conn.try_clone().expect("clone");
    writeln!(w, "ping").expect("ping");
    let mut line = String::new();
    BufReader::new(conn.try_clone().expect("clone"))
        .read_line(&mut line)
        .expect("pong");
    assert!(line.starts_with("pong "), "client answered {line:?}");
    let identity = Identifier::new()
        .expect("identifier")
        .identify(&conn)
        .expect("identify");
    let cid = podman::read_cid(&cidfile).expect("container id");
    writeln!(w, "exit").expect("exit");
    let st = child.wait().expect("wait podman");
    assert!(st.success(), "podman run exited with {st}");
    Some((identity, cid))
}

#[test]
fn podman_container_is_identified() {
    let Some((id, cid)) = podman_client(None) else {
        return;
    };
    let w = id.workload().expect("workload");
    let c = w.container.as_ref().expect("a container");
    assert_eq!(c.runtime, Runtime::Podman);
    assert_eq!(c.id, cid, "the id podman reported");
    // cgroupfs manager on this machine: /libpod_parent/libpod-<id>.
    let path = id
        .cgroup()
        .and_then(|c| c.path.clone())
        .expect("cgroup path");
    assert!(
        path.ends_with(&format!("libpod-{cid}")),
        "host cgroup path {path}"
    );
    assert!(!path.starts_with("/.."), "path is the host's view: {path}");
    let ns = id.user_namespace().expect("user namespace");
    assert!(ns.initial, "no --uidmap: initial user namespace");
}

#[test]
fn podman_container_in_user_namespace() {
    let Some((id, cid)) = podman_client(Some(200_000)) else {
        return;
    };
    let w = id.workload().expect("workload");
    assert_eq!(
        w.container.as_ref().map(|c| c.id.as_ref()),
        Some(cid.as_str())
    );
    assert_eq!(id.peer().uid.get(), 200_000, "host view of container root");
    let ns = id.user_namespace().expect("user namespace");
    assert!(!ns.initial);
    assert_eq!(ns.uid_map, vec![[0, 200_000, 65536]]);
    assert_eq!(ns.gid_map, vec![[0, 200_000, 65536]]);
    assert_eq!(
        ns.uid.map(|u| u.get()),
        Some(0),
        "root inside its own namespace"
    );
    assert_eq!(ns.gid.map(|g| g.get()), Some(0));
}
