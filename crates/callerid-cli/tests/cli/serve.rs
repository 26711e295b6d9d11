//! `callerid serve` as a process: startup message, sd_notify, SIGHUP, SIGTERM,
//! socket activation.

use crate::daemon_support::*;
use rustix::process::Signal;
use serde_json::Value;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

#[test]
fn says_where_it_listens_and_answers() {
    let dir = tempdir();
    let sock = path_in(&dir, "s/callerid.sock");
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--listen"])
        .arg(&sock)
        .args(["--audit", "-"]);
    let mut d = Daemon::spawn(cmd);
    let line = d.wait_for("listening on");
    assert!(line.contains(sock.to_str().unwrap()), "{line}");
    let hint = d.wait_for("try it");
    assert!(
        hint.contains(&format!("callerid whoami --socket {}", sock.display())),
        "{hint}"
    );
    let v: Value = serde_json::from_str(&ask(&sock)).unwrap();
    assert_eq!(v["decision"]["allow"], true);
    assert_eq!(v["identity"]["peer"]["pid"], std::process::id());
    d.signal(Signal::TERM);
    let (ok, stdout) = d.wait();
    assert!(ok, "clean exit on SIGTERM");
    let audit: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(audit["listener"], "serve");
    assert_eq!(audit["peer"]["pid"], std::process::id());
    assert!(!sock.exists(), "its socket file is removed at exit");
}

#[test]
fn notifies_systemd_and_reloads_on_sighup() {
    let dir = tempdir();
    let sock = path_in(&dir, "callerid.sock");
    let policy = path_in(&dir, "policy.toml");
    std::fs::write(&policy, "version = 1\ndefault = \"allow\"\n").unwrap();
    let notify = UnixDatagram::bind(path_in(&dir, "notify.sock")).unwrap();
    notify.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--listen"])
        .arg(&sock)
        .arg("--policy")
        .arg(&policy)
        .env("NOTIFY_SOCKET", path_in(&dir, "notify.sock"));
    let mut d = Daemon::spawn(cmd);
    let recv = || {
        let mut b = [0u8; 512];
        let n = notify.recv(&mut b).expect("a notification");
        String::from_utf8_lossy(&b[..n]).into_owned()
    };
    assert_eq!(recv().trim(), "READY=1");
    let v: Value = serde_json::from_str(&ask(&sock)).unwrap();
    assert_eq!(v["decision"]["allow"], true);

    // A valid new policy takes effect...
    std::fs::write(&policy, "version = 1\ndefault = \"deny\"\n").unwrap();
    d.signal(Signal::HUP);
    let reloading = recv();
    assert!(
        reloading.contains("RELOADING=1") && reloading.contains("MONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(recv().trim(), "READY=1");
    let v: Value = serde_json::from_str(&ask(&sock)).unwrap();
    assert_eq!(v["decision"]["allow"], false);

    // ...an invalid one is refused with a clear line and the last good one stays.
    std::fs::write(&policy, "version = 1\ndefault = \"perhaps\"\n").unwrap();
    d.signal(Signal::HUP);
    assert!(recv().contains("RELOADING=1"));
    assert_eq!(recv().trim(), "READY=1");
    let line = d.wait_for("keeping the current policy");
    assert!(line.contains("policy.toml"), "{line}");
    let v: Value = serde_json::from_str(&ask(&sock)).unwrap();
    assert_eq!(v["decision"]["allow"], false, "still the last valid policy");

    d.signal(Signal::TERM);
    assert_eq!(recv().trim(), "STOPPING=1");
    assert!(d.wait().0);
}

#[test]
fn socket_activation_takes_the_passed_socket() {
    if !have("systemd-socket-activate") {
        callerid_testkit::skip(
            "serve::socket_activation_takes_the_passed_socket",
            "needs systemd-socket-activate (package systemd)",
        );
        return;
    }
    let dir = tempdir();
    let sock = path_in(&dir, "activated.sock");
    let unused = path_in(&dir, "not-bound.sock");
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.arg("-l")
        .arg(&sock)
        .arg("--fdname=callerid")
        .arg(bin())
        .args(["serve", "--listen"])
        .arg(&unused);
    let mut d = Daemon::spawn(cmd);
    wait_listening(&sock);
    // The first connection makes systemd-socket-activate exec the daemon with
    // LISTEN_FDS=1; it answers on the passed socket.
    let v: Value = serde_json::from_str(&ask(&sock)).unwrap();
    assert_eq!(v["decision"]["allow"], true, "{v}");
    assert_eq!(v["identity"]["peer"]["pid"], std::process::id());
    let line = d.wait_for("listening on");
    assert!(line.contains("socket-activated"), "{line}");
    assert!(
        !unused.exists(),
        "--listen is not bound when a socket is passed"
    );
    d.signal(Signal::TERM);
    assert!(d.wait().0);
    assert!(sock.exists(), "the manager's socket is not ours to remove");
}

#[test]
fn refuses_a_non_loopback_metrics_address() {
    let dir = tempdir();
    let out = Command::new(bin())
        .args(["serve", "--listen"])
        .arg(path_in(&dir, "s.sock"))
        .args(["--metrics", "0.0.0.0:9999"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn metrics_on_loopback_tcp() {
    use std::io::{Read, Write};
    let dir = tempdir();
    let sock = path_in(&dir, "s.sock");
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--listen"])
        .arg(&sock)
        .args(["--metrics", "127.0.0.1:0"]);
    let mut d = Daemon::spawn(cmd);
    let line = d.wait_for("metrics: http://");
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics")
        .to_string();
    ask(&sock);
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("callerid_connections_accepted_total{listener=\"serve\"} 1"),
        "{text}"
    );
}

#[test]
fn mode_and_owner_are_applied() {
    if callerid_testkit::need_root("serve::mode_and_owner_are_applied") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let dir = tempdir();
    let sock = path_in(&dir, "owned.sock");
    let mut cmd = Command::new(bin());
    cmd.args([
        "serve",
        "--mode",
        "0660",
        "--owner",
        "4242:4243",
        "--listen",
    ])
    .arg(&sock);
    let mut d = Daemon::spawn(cmd);
    d.wait_for("listening on");
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o660);
    assert_eq!((meta.uid(), meta.gid()), (4242, 4243));
}
