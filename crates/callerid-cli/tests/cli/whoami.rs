//! `callerid whoami`: the client of `serve`, on the host and inside a container.

use crate::daemon_support::*;
use serde_json::Value;
use std::process::Command;

fn serve(dir: &tempfile::TempDir) -> (Daemon, std::path::PathBuf) {
    let sock = path_in(dir, "callerid.sock");
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--mode", "0666", "--listen"]).arg(&sock);
    let mut d = Daemon::spawn(cmd);
    d.wait_for("listening on");
    (d, sock)
}

#[test]
fn human_and_json() {
    let dir = tempdir();
    let (_d, sock) = serve(&dir);
    let out = Command::new(bin())
        .args(["whoami", "--socket"])
        .arg(&sock)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("decision   allow"), "{text}");
    assert!(text.contains("peer       pid "), "{text}");
    assert!(text.contains("cgroup     /"), "{text}");

    let out = Command::new(bin())
        .args(["whoami", "--json", "--socket"])
        .arg(&sock)
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    assert_eq!(line.matches('\n').count(), 1);
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["decision"]["allow"], true);
    assert!(v["identity"]["peer"]["pid"].as_u64().is_some());
}

#[test]
fn denied_exits_1() {
    let dir = tempdir();
    let policy = path_in(&dir, "deny.toml");
    std::fs::write(&policy, "version = 1\ndefault = \"deny\"\n").unwrap();
    let sock = path_in(&dir, "callerid.sock");
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--policy"])
        .arg(&policy)
        .arg("--listen")
        .arg(&sock);
    let mut d = Daemon::spawn(cmd);
    d.wait_for("listening on");
    let out = Command::new(bin())
        .args(["whoami", "--socket"])
        .arg(&sock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("decision   deny"));
}

#[test]
fn from_inside_a_podman_container() {
    if let Some(why) = callerid_testkit::podman::unavailable() {
        callerid_testkit::skip("whoami::from_inside_a_podman_container", &why);
        return;
    }
    let image = callerid_testkit::podman::image().unwrap();
    assert!(!image.is_empty());
    let dir = tempdir();
    let (_d, _sock) = serve(&dir);
    let (mut cmd, cidfile) = callerid_testkit::podman::Run::new()
        .unwrap()
        .volume(dir.path(), "/x")
        .args(["-v", &format!("{}:/callerid:ro", bin())])
        .command([
            "/callerid",
            "whoami",
            "--json",
            "--socket",
            "/x/callerid.sock",
        ]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "podman: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cid = std::fs::read_to_string(&cidfile)
        .unwrap()
        .trim()
        .to_string();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = &v["identity"];
    assert_eq!(v["decision"]["allow"], true, "{v}");
    assert_eq!(id["workload"]["container"]["runtime"], "podman", "{id}");
    assert_eq!(
        id["workload"]["container"]["id"],
        Value::String(cid.clone()),
        "{id}"
    );
    assert!(
        id["cgroup"]["path"].as_str().unwrap().contains(&cid),
        "{id}"
    );
    assert!(
        id["peer"]["pid"].as_u64().is_some(),
        "the host sees the container process's host pid"
    );

    // The human form names the container too.
    let (mut cmd, _) = callerid_testkit::podman::Run::new()
        .unwrap()
        .volume(dir.path(), "/x")
        .args(["-v", &format!("{}:/callerid:ro", bin())])
        .command(["/callerid", "whoami", "--socket", "/x/callerid.sock"]);
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("container  podman "), "{text}");
}
