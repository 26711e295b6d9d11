//! `callerid gate` as a process: SIGTERM drain, named socket activation.

use crate::daemon_support::*;
use rustix::process::Signal;
use std::os::unix::net::UnixStream;
use std::process::Command;

fn config(dir: &tempfile::TempDir, listeners: &[&str]) -> std::path::PathBuf {
    let mut text = String::from("version = 1\ndefault = \"allow\"\n\n");
    for l in listeners {
        text += &format!(
            "[[listener]]\nname = \"{l}\"\npath = \"{}\"\nbackend = \"{}\"\n\n",
            path_in(dir, &format!("{l}.sock")).display(),
            path_in(dir, &format!("{l}.backend")).display()
        );
        echo_backend(&path_in(dir, &format!("{l}.backend")));
    }
    let p = path_in(dir, "gate.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn sigterm_stops_accepting_and_drains() {
    let dir = tempdir();
    let cfg = config(&dir, &["a"]);
    let sock = path_in(&dir, "a.sock");
    let mut cmd = Command::new(bin());
    cmd.args(["gate", "--config"])
        .arg(&cfg)
        .args(["--drain-timeout", "20"]);
    let mut d = Daemon::spawn(cmd);
    d.wait_for("ready");
    let mut open = UnixStream::connect(&sock).unwrap();
    assert!(roundtrip(&mut open, "before\n"));
    d.signal(Signal::TERM);
    d.wait_for("draining open connections");
    assert!(
        UnixStream::connect(&sock).is_err(),
        "no new connections after SIGTERM"
    );
    assert!(
        roundtrip(&mut open, "during the drain\n"),
        "the open connection is still served"
    );
    drop(open);
    assert!(d.wait().0, "exits cleanly once drained");
}

#[test]
fn socket_activation_maps_names_to_listeners() {
    if !have("systemd-socket-activate") {
        callerid_testkit::skip(
            "gate::socket_activation_maps_names_to_listeners",
            "needs systemd-socket-activate (package systemd)",
        );
        return;
    }
    let dir = tempdir();
    let cfg = config(&dir, &["one", "two"]);
    // Passed in the opposite order of the config: names, not positions, decide.
    let two = path_in(&dir, "passed-two.sock");
    let one = path_in(&dir, "passed-one.sock");
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.arg("-l")
        .arg(&two)
        .arg("-l")
        .arg(&one)
        .arg("--fdname=two:one");
    cmd.arg(bin()).args(["gate", "--config"]).arg(&cfg);
    let mut d = Daemon::spawn(cmd);
    wait_listening(&one);
    let mut s1 = UnixStream::connect(&one).unwrap();
    assert!(roundtrip(&mut s1, "via one\n"));
    let l1 = d.wait_for("listener \"one\"");
    assert!(l1.contains("socket-activated fd \"one\""), "{l1}");
    let l2 = d.wait_for("listener \"two\"");
    assert!(l2.contains("socket-activated fd \"two\""), "{l2}");
    let mut s2 = UnixStream::connect(&two).unwrap();
    assert!(roundtrip(&mut s2, "via two\n"));
    assert!(
        !path_in(&dir, "one.sock").exists() && !path_in(&dir, "two.sock").exists(),
        "config paths unused"
    );
}
