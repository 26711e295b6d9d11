//! User and pid namespaces between client and server.

use crate::support::{Client, SOCK_ENV, listener, wait_until, wrapped_role_command};
use callerid::{Identifier, WarningCode};
use callerid_testkit::{need_root, skip};
use std::os::unix::net::UnixStream;
use std::process::Stdio;

#[test]
fn client_in_child_user_namespace() {
    if !crate::support::have("/usr/bin/unshare") {
        skip(
            "client_in_child_user_namespace",
            "needs unshare (util-linux)",
        );
        return;
    }
    let ident = Identifier::new().expect("identifier");
    let l = listener();
    // Our uid becomes 1000 inside a new user namespace.
    let cmd = wrapped_role_command(
        &["unshare", "--user", "--map-user=1000", "--map-group=1000"],
        "client",
    );
    let mut c = Client::spawn(&l, cmd);
    let who = ident.identify(&c.conn).expect("identify");
    let host_uid = rustix::process::geteuid().as_raw();
    let host_gid = rustix::process::getegid().as_raw();
    assert_eq!(
        who.peer().uid.get(),
        host_uid,
        "SO_PEERCRED is in our (host) view"
    );
    let u = who.user_namespace().expect("user namespace");
    assert!(!u.initial);
    assert_eq!(u.uid_map, vec![[1000, host_uid, 1]]);
    assert_eq!(u.gid_map, vec![[1000, host_gid, 1]]);
    assert_eq!(
        u.uid.map(|x| x.get()),
        Some(1000),
        "uid as seen inside its own namespace"
    );
    assert_eq!(u.gid.map(|x| x.get()), Some(1000));
    let ns = who.namespaces().expect("namespaces");
    let ours =
        std::fs::metadata("/proc/self/ns/user").map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    assert_ne!(
        ns.user.map(|n| n.get()),
        ours.ok(),
        "a different user namespace"
    );

    // Second identification: maps come from the cache (same record).
    let again = ident.identify(&c.conn).expect("identify");
    assert_eq!(again.user_namespace(), who.user_namespace());
    c.exit_and_reap();
}

/// Server role inside a new pid namespace: accepts one connection from a host
/// process (invisible here), identifies it, writes the JSON to `$CALLERID_TEST_OUT`.
pub(crate) fn pidns_server_role() -> i32 {
    let path = std::env::var(SOCK_ENV).expect("sock");
    let out = std::env::var("CALLERID_TEST_OUT").expect("out");
    let l = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let (conn, _) = l.accept().expect("accept");
    let ident = Identifier::new().expect("identifier");
    let text = match ident.identify(&conn) {
        Ok(who) => serde_json::to_string(&who).expect("json"),
        Err(e) => format!("ERROR {e:#?}"),
    };
    std::fs::write(out, text).expect("write out");
    0
}

#[test]
fn server_in_child_pid_namespace_cannot_see_client() {
    if need_root("server_in_child_pid_namespace_cannot_see_client") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let sock = dir.path().join("pidns.sock");
    let out = dir.path().join("out.json");
    let mut server = wrapped_role_command(
        &["unshare", "--pid", "--fork", "--mount-proc"],
        "pidns_server",
    );
    server
        .env(SOCK_ENV, &sock)
        .env("CALLERID_TEST_OUT", &out)
        .stderr(Stdio::inherit());
    let mut child = server.spawn().expect("spawn server");
    // The socket file appears at bind(), a moment before listen(): retry until it
    // accepts.
    let mut conn = None;
    wait_until("server listening", || {
        conn = UnixStream::connect(&sock).ok();
        conn.is_some()
    });
    assert!(child.wait().expect("wait").success());
    let text = std::fs::read_to_string(&out).expect("out");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
    assert!(v["peer"]["pid"].is_null(), "{v}");
    assert_eq!(v["peer"]["uid"], rustix::process::geteuid().as_raw());
    assert!(v["process"]["pid"].is_null(), "{v}");
    let codes: Vec<&str> = v["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert!(
        codes.contains(&WarningCode::ForeignPidNamespace.as_str()),
        "{codes:?}"
    );
    assert_eq!(v["provenance"]["pidfd"], "so_peerpidfd");
}

#[test]
fn client_in_child_pid_namespace_is_visible() {
    if need_root("client_in_child_pid_namespace_is_visible") {
        return;
    }
    let ident = Identifier::new().expect("identifier");
    let l = listener();
    let cmd = wrapped_role_command(&["unshare", "--pid", "--fork", "--kill-child"], "client");
    let mut c = Client::spawn(&l, cmd);
    // The client is pid 1 of its namespace; we see its host pid, and its pid namespace.
    let who = ident.identify(&c.conn).expect("identify");
    let pid = who
        .peer()
        .pid
        .expect("visible from the parent namespace")
        .get();
    assert_ne!(pid, c.ping(), "host pid differs from the pid inside");
    assert_eq!(
        who.process().and_then(|p| p.pid).map(|p| p.get()),
        Some(pid)
    );
    let ours =
        std::fs::metadata("/proc/self/ns/pid").map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    assert_ne!(
        who.namespaces().and_then(|n| n.pid).map(|n| n.get()),
        ours.ok()
    );
}

/// Warm caches must not hide a change: a process that enters new namespaces and
/// execs (same pidfs id) is reported with its new net/uts namespaces, exe and comm by
/// the same identifier, while its own pid namespace, which the identifier remembers per
/// pidfs id, really is unchanged.
#[test]
fn same_process_after_unshare_and_exec_is_not_stale() {
    if need_root("same_process_after_unshare_and_exec_is_not_stale") {
        return;
    }
    let ident = Identifier::new().expect("identifier");
    let l = listener();
    let mut c = Client::spawn(&l, crate::support::role_command("client"));
    let before = ident.identify(&c.conn).expect("identify");
    let again = ident.identify(&c.conn).expect("identify");
    assert_eq!(before.namespaces(), again.namespaces());
    let ns0 = before.namespaces().expect("namespaces").clone();
    let pid = c.pid();
    use std::io::Write;
    writeln!(c.conn, "exec_unshare").expect("write");
    let exe_is_unshare_or_sleep = || {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.ends_with("sleep"))
            .unwrap_or(false)
    };
    wait_until(
        "the client execs sleep in new namespaces",
        exe_is_unshare_or_sleep,
    );
    let after = ident.identify(&c.conn).expect("identify");
    let fresh = Identifier::new()
        .expect("identifier")
        .identify(&c.conn)
        .expect("identify");
    let ns1 = after.namespaces().expect("namespaces").clone();
    assert_eq!(after.namespaces(), fresh.namespaces(), "{after:#?}");
    assert_ne!(ns1.net, ns0.net, "{after:#?}");
    assert_ne!(ns1.uts, ns0.uts, "{after:#?}");
    assert_eq!(ns1.pid, ns0.pid, "{after:#?}");
    let link = std::fs::read_link(format!("/proc/{pid}/ns/pid")).expect("ns/pid");
    let want = format!("pid:[{}]", ns0.pid.expect("pid ns").get());
    assert_eq!(link.to_str(), Some(want.as_str()));
    let (p0, p1) = (
        before.process().expect("process"),
        after.process().expect("process"),
    );
    assert_eq!(p0.pidfs_id, p1.pidfs_id);
    assert_eq!(p1.comm.as_deref(), Some("sleep"), "{after:#?}");
    assert!(
        p1.exe.as_deref().is_some_and(|e| e.ends_with("/sleep")),
        "{after:#?}"
    );
    assert_ne!(p0.exe, p1.exe);
}
