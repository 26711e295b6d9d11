//! `serve`: one JSON line per connection, the full identity record, fail closed.

use crate::support::*;
use serde_json::Value;

#[test]
fn answers_one_line_with_the_full_identity() {
    let d = TestDaemon::serve(None);
    let out = ask(&d.socket);
    assert!(
        out.ends_with('\n') && out.matches('\n').count() == 1,
        "one line: {out:?}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"]["allow"], true, "{v}");
    assert!(v["decision"]["reasons"].is_array());
    assert!(v["decision"].get("rule").is_some());
    let id = &v["identity"];
    for key in callerid_testkit::IDENTITY_JSON_KEYS {
        assert!(
            id.get(key).is_some(),
            "identity.{key} missing (null is fine, absent is not): {id}"
        );
    }
    assert_eq!(id["peer"]["pid"], std::process::id());
    assert_eq!(id["peer"]["uid"], rustix::process::geteuid().as_raw());
    // serve collects everything: nothing is left as not_collected.
    for (part, prov) in id["provenance"].as_object().unwrap() {
        assert_ne!(prov, "not_collected", "serve must collect {part}");
    }
    assert!(id["process"]["pidfs_id"].as_u64().is_some(), "{id}");
    assert!(id["cgroup"]["id"].as_u64().is_some(), "{id}");
}

#[test]
fn every_connection_is_answered_and_audited() {
    let d = TestDaemon::serve(None);
    for _ in 0..20 {
        let v: Value = serde_json::from_str(&ask(&d.socket)).unwrap();
        assert_eq!(v["decision"]["allow"], true);
    }
    assert_eq!(d.audit_lines(20).len(), 20);
}

#[test]
fn a_client_in_a_container_cgroup_is_named() {
    if callerid_testkit::need_root("serve::a_client_in_a_container_cgroup_is_named") {
        return;
    }
    let id = "3f2a9c41d0e1".to_string() + &"ab".repeat(26);
    let cg = callerid_testkit::TestCgroup::new(&format!("system.slice/docker-{id}.scope")).unwrap();
    let d = TestDaemon::serve(None);
    let client = Client::spawn(&[], &d.socket);
    cg.add_pid(client.pid()).unwrap();
    let out = client.run("");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let ident = &v["identity"];
    assert_eq!(
        ident["cgroup"]["path"],
        Value::String(cg.rel_path()),
        "{ident}"
    );
    assert_eq!(
        ident["workload"]["container"]["id"],
        Value::String(id.clone()),
        "{ident}"
    );
    assert_eq!(ident["workload"]["container"]["runtime"], "docker");
}

#[test]
fn a_denied_caller_gets_its_identity_and_the_decision() {
    let d = TestDaemon::serve(Some("version = 1\ndefault = \"deny\"\n"));
    let v: Value = serde_json::from_str(&ask(&d.socket)).unwrap();
    assert_eq!(v["decision"]["allow"], false, "{v}");
    assert_eq!(v["decision"]["rule"], Value::Null, "{v}");
    assert_eq!(
        v["identity"]["peer"]["pid"],
        std::process::id(),
        "the answer is the caller's identity, allowed or not: {v}"
    );
    let audit = d.audit_lines(1);
    assert_eq!(audit[0]["allow"], false);
    assert_eq!(
        audit[0]["peer"]["pid"],
        std::process::id(),
        "the audit still records who it was"
    );
}

#[test]
fn stale_socket_is_replaced_live_one_is_not() {
    let dir = tempdir();
    let path = dir.path().join("s.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a closed listener leaves its file behind");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cfg = callerid_daemon::DaemonConfig::serve(
            Some(path.clone()),
            callerid_daemon::PolicySource::Embedded,
        );
        cfg.socket_activation = false;
        let first = callerid_daemon::Daemon::start(cfg.clone()).expect("stale socket is replaced");
        match callerid_daemon::Daemon::start(cfg) {
            Err(callerid_daemon::Error::InUse { .. }) => {}
            other => panic!("a live socket must not be stolen: {other:?}"),
        }
        drop(first);
    });
    let not_socket = dir.path().join("file");
    std::fs::write(&not_socket, "x").unwrap();
    rt.block_on(async {
        let mut cfg = callerid_daemon::DaemonConfig::serve(
            Some(not_socket.clone()),
            callerid_daemon::PolicySource::Embedded,
        );
        cfg.socket_activation = false;
        assert!(matches!(
            callerid_daemon::Daemon::start(cfg),
            Err(callerid_daemon::Error::NotASocket { .. })
        ));
    });
    assert_eq!(std::fs::read_to_string(&not_socket).unwrap(), "x");
}

#[test]
fn socket_mode_is_applied_before_it_appears() {
    use std::os::unix::fs::PermissionsExt;
    let d = TestDaemon::serve(None);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o666);
}

#[test]
fn cgroup_is_captured_at_connect_when_bpf_is_available() {
    if let Err(why) = callerid_bpf::probe() {
        callerid_testkit::skip("serve::cgroup_is_captured_at_connect", &why.to_string());
        return;
    }
    let d = TestDaemon::serve(None);
    let v: Value = serde_json::from_str(&ask(&d.socket)).unwrap();
    let id = &v["identity"];
    assert_eq!(id["provenance"]["cgroup"], "kernel_connect", "{id}");
    assert_eq!(id["cgroup"]["at"], "connect", "{id}");
    let audit = d.audit_lines(1);
    assert_eq!(audit[0]["cgroup"]["provenance"], "kernel_connect");
}

#[test]
fn without_capture_the_provenance_says_so() {
    let dir = tempdir();
    let mut cfg = callerid_daemon::DaemonConfig::serve(
        Some(dir.path().join("s.sock")),
        callerid_daemon::PolicySource::Embedded,
    );
    cfg.connect_capture = callerid_daemon::ConnectCapture::Off;
    cfg.socket_activation = false;
    cfg.handle_signals = false;
    cfg.notify = false;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let daemon = rt
        .block_on(async { callerid_daemon::Daemon::start(cfg) })
        .unwrap();
    assert!(
        daemon.info().iter().any(|n| n.contains("capture: off")),
        "{:?}",
        daemon.info()
    );
    let handle = daemon.handle();
    let join = rt.spawn(daemon.run());
    let v: Value = serde_json::from_str(&ask(&dir.path().join("s.sock"))).unwrap();
    assert_ne!(
        v["identity"]["provenance"]["cgroup"], "kernel_connect",
        "{v}"
    );
    assert_ne!(v["identity"]["cgroup"]["at"], "connect", "{v}");
    handle.shutdown();
    rt.block_on(join).unwrap().unwrap();
}
