//! Limits: per listener, per identity, idle timeout, the decision timeout.

use crate::support::*;
use serde_json::Value;
use std::os::unix::net::UnixStream;

fn gate_with(extra: &str) -> TestDaemon {
    TestDaemon::gate(&format!(
        r#"
version = 1
default = "allow"

[[listener]]
name = "lim"
path = "{{dir}}/gate.sock"
backend = "{{dir}}/backend.sock"
mode = "0666"
{extra}
"#
    ))
}

fn reasons(line: &Value) -> String {
    line["reasons"].to_string()
}

#[test]
fn max_connections_per_listener() {
    let d = gate_with("max_connections = 2");
    let _b = echo_backend(&d.path("backend.sock"));
    let mut a = UnixStream::connect(&d.socket).unwrap();
    let mut b = UnixStream::connect(&d.socket).unwrap();
    assert!(roundtrip(&mut a, "a\n") && roundtrip(&mut b, "b\n"));
    let mut c = UnixStream::connect(&d.socket).unwrap();
    assert!(
        refused(&mut c),
        "a third connection is over max_connections"
    );
    drop(a);
    // The slot comes back once the first relay has ended.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let mut e = UnixStream::connect(&d.socket).unwrap();
        if roundtrip(&mut e, "e\n") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slot never returned");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let lines = d.audit_lines(4);
    assert!(
        lines
            .iter()
            .any(|l| l["allow"] == false && reasons(l).contains("max_connections")),
        "{lines:?}"
    );
    assert!(
        d.scrape().contains(
            r#"callerid_limit_rejections_total{listener="lim",reason="max_connections"}"#
        )
    );
}

#[test]
fn max_per_identity_cuts_off_a_slowloris_but_not_others() {
    if callerid_testkit::need_root("limits::max_per_identity_cuts_off_a_slowloris_but_not_others") {
        return;
    }
    if !have("socat") || !have("setpriv") {
        callerid_testkit::skip("limits::max_per_identity", "needs socat and setpriv");
        return;
    }
    let d = gate_with("max_per_identity = 2\nidle_timeout = 30");
    let _b = echo_backend(&d.path("backend.sock"));
    // We (uid 0) hold two idle connections: the slowloris.
    let held: Vec<UnixStream> = (0..2)
        .map(|_| UnixStream::connect(&d.socket).unwrap())
        .collect();
    let mut third = UnixStream::connect(&d.socket).unwrap();
    assert!(
        refused(&mut third),
        "third connection of the same identity is refused"
    );
    // Another identity is still served.
    let other = Client::spawn(
        &["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups"],
        &d.socket,
    );
    assert_eq!(other.run("still served\n"), "still served\n");
    drop(held);
    let lines = d.audit_lines(4);
    assert!(
        lines
            .iter()
            .any(|l| l["allow"] == false && reasons(l).contains("max_per_identity")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["allow"] == true && l["peer"]["uid"] == 4242),
        "{lines:?}"
    );
}

#[test]
fn idle_connections_are_closed() {
    let d = gate_with(r#"idle_timeout = "300ms""#);
    let _b = echo_backend(&d.path("backend.sock"));
    let mut a = UnixStream::connect(&d.socket).unwrap();
    assert!(roundtrip(&mut a, "hi\n"));
    // Say nothing: the gate closes both sides after the idle timeout.
    a.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 8];
    use std::io::Read;
    assert_eq!(
        a.read(&mut buf).unwrap(),
        0,
        "idle connection closed by the gate"
    );
}

#[test]
fn decision_timeout_bounds_a_stuck_backend() {
    // A backend that never accepts, with its backlog full: connect() keeps failing with
    // EAGAIN and the gate retries until the decision timeout, then refuses.
    let d = gate_with(r#"decision_timeout = "300ms""#);
    let backend = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        None,
    )
    .unwrap();
    let addr = rustix::net::SocketAddrUnix::new(d.path("backend.sock")).unwrap();
    rustix::net::bind(&backend, &addr).unwrap();
    rustix::net::listen(&backend, 0).unwrap();
    let mut fillers = Vec::new();
    loop {
        let s = rustix::net::socket_with(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        if rustix::net::connect(&s, &addr).is_err() {
            break;
        }
        fillers.push(s);
        assert!(fillers.len() < 64, "backlog never filled");
    }
    let mut c = UnixStream::connect(&d.socket).unwrap();
    assert!(refused(&mut c));
    let lines = d.audit_lines(1);
    assert_eq!(lines[0]["allow"], false);
    assert!(
        reasons(&lines[0]).contains("decision_timeout"),
        "{}",
        lines[0]
    );
    assert!(d.scrape().contains(
        r#"callerid_limit_rejections_total{listener="lim",reason="decision_timeout"} 1"#
    ));
}

#[test]
fn max_per_identity_counts_containers_not_uids() {
    if callerid_testkit::need_root("limits::max_per_identity_counts_containers_not_uids") {
        return;
    }
    if !have("socat") {
        callerid_testkit::skip("limits::max_per_identity_counts_containers", "needs socat");
        return;
    }
    // Every client is uid 0; two are in container X, one in container Y.
    let x = callerid_testkit::TestCgroup::new(&format!(
        "system.slice/docker-{}.scope",
        "c1".repeat(32)
    ))
    .unwrap();
    let y = callerid_testkit::TestCgroup::new(&format!(
        "system.slice/docker-{}.scope",
        "d2".repeat(32)
    ))
    .unwrap();
    let d = gate_with("max_per_identity = 1\nidle_timeout = 60");
    let _b = echo_backend(&d.path("backend.sock"));
    let mut x1 = Client::spawn(&[], &d.socket);
    x.add_pid(x1.pid()).unwrap();
    x1.hold("held\n");
    assert_eq!(
        x1.read_line(),
        "held\n",
        "first connection of container X is forwarded"
    );
    let x2 = Client::spawn(&[], &d.socket);
    x.add_pid(x2.pid()).unwrap();
    assert_eq!(
        x2.run("second\n"),
        "",
        "second connection of container X is over its limit"
    );
    let y1 = Client::spawn(&[], &d.socket);
    y.add_pid(y1.pid()).unwrap();
    assert_eq!(
        y1.run("other container\n"),
        "other container\n",
        "container Y has its own quota"
    );
    let lines = d.audit_lines(3);
    let refused: Vec<_> = lines.iter().filter(|l| l["allow"] == false).collect();
    assert_eq!(refused.len(), 1, "{lines:#?}");
    assert_eq!(
        refused[0]["container"]["id"],
        Value::String("c1".repeat(32))
    );
    assert!(reasons(refused[0]).contains("max_per_identity"));
    drop(x1);
}
