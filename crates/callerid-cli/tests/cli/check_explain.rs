//! `callerid check` and `callerid explain`, run as the real binary on real files.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output, Stdio};

fn callerid(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callerid"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        pipe.write_all(s.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const HEX: &str = "3f2a9c41d0e1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b";

const GATE: &str = r#"version = 1
default = "deny"

[[listener]]
name = "docker-api"
path = "/run/callerid/docker.sock"
backend = "/run/docker.sock"
mode = "0660"
owner = "root:docker"
tenant = "web"
expect = { runtime = "podman" }
idle_timeout = "30s"

[[rule]]
name = "ci-runner may call"
action = "allow"
listener = "docker-api"
[rule.match]
uid = [1000, 1001]
cgroup = "/machine.slice/*"
container = "3f2a9c41d0e1"
runtime = "podman"

[[rule]]
name = "root"
action = "allow"
match.uid = 0
"#;

fn identity_json(uid: u32, runtime: &str) -> String {
    serde_json::json!({
        "version": 1,
        "peer": {"pid": 4242, "uid": uid, "gid": uid, "groups": [uid], "security_label": null},
        "process": {"pidfs_id": 1957, "pid": 4242, "ppid": 1, "uid": uid, "euid": uid, "gid": uid,
                    "egid": uid, "comm": "sh", "exe": "/usr/bin/busybox", "state": "alive"},
        "cgroup": {"id": 519, "path": format!("/machine.slice/libpod-{HEX}.scope"), "at": "now"},
        "namespaces": null, "user_namespace": null,
        "workload": {"container": {"runtime": runtime, "id": HEX}, "pod": null,
                     "chain": [{"kind": "container", "runtime": runtime, "id": HEX}],
                     "unit": format!("libpod-{HEX}.scope"), "user_unit": null, "slice": "machine.slice"},
        "drift": null,
        "provenance": {"peer": "kernel_connect", "process": "kernel_now", "cgroup": "kernel_now",
                       "namespaces": null, "user_namespace": null, "workload": "cgroup_path"},
        "warnings": []
    })
    .to_string()
}

#[test]
fn check_prints_a_compiled_summary() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file(&dir, "gate.toml", GATE);
    let o = callerid(&["check", "--config", &cfg], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("default deny, 2 rule(s) (2 allow, 0 deny)"),
        "{s}"
    );
    assert!(
        s.contains("index: container 1, uid 1; checked for every peer: 0"),
        "{s}"
    );
    assert!(s.contains("[indexed by container]"), "{s}");
    assert!(s.contains("\"docker-api\" (line 5): /run/callerid/docker.sock -> /run/docker.sock, mode 0660, owner root:docker"), "{s}");
    assert!(
        s.contains("identity parts used: peer, cgroup, workload"),
        "{s}"
    );

    let o = callerid(&["check", "--config", &cfg, "--json"], None);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["rules"][0]["indexed_by"], "container");
    assert_eq!(v["listeners"][0]["mode"], "0660");
    assert_eq!(v["listeners"][0]["idle_timeout_ms"], 30000);
}

#[test]
fn check_rejects_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file(
        &dir,
        "bad.toml",
        "version = 1\n[[rule]]\nname = \"r\"\naction = \"allow\"\n[rule.match]\n  comm = \"sshd\"\n",
    );
    let o = callerid(&["check", "--config", &cfg], None);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.starts_with(&format!("{cfg}:6:3: ")), "{e}");
    assert!(e.contains("forgeable"), "{e}");

    let cfg = file(
        &dir,
        "typo.toml",
        "version = 1\n[[rule]]\nname = \"r\"\nacton = \"allow\"\n",
    );
    let o = callerid(&["check", "--config", &cfg], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("{cfg}:4:1: ")),
        "{}",
        stderr(&o)
    );

    // Valid but suspicious: exit 0, warnings on stderr.
    let cfg = file(
        &dir,
        "warn.toml",
        "version = 1\n[[rule]]\nname = \"all\"\naction = \"allow\"\n[[rule]]\nname = \"late\"\naction = \"deny\"\nmatch.uid = 0\n",
    );
    let o = callerid(&["check", "--config", &cfg], None);
    assert!(o.status.success());
    assert!(
        stderr(&o).starts_with(&format!("{cfg}:6: warning: rule \"late\" is never reached")),
        "{}",
        stderr(&o)
    );

    let o = callerid(&["check", "--config", "/nonexistent/policy.toml"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/policy.toml"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn explain_a_saved_identity() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file(&dir, "gate.toml", GATE);
    let id = file(&dir, "id.json", &identity_json(1000, "podman"));

    // On the listener: the first rule decides.
    let o = callerid(
        &[
            "explain",
            "--config",
            &cfg,
            "--identity",
            &id,
            "--listener",
            "docker-api",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let s = stdout(&o);
    assert!(
        s.starts_with("decision: allow (rule \"ci-runner may call\")"),
        "{s}"
    );
    assert!(
        s.contains("rule #1 \"ci-runner may call\" (line 15, allow): DECISIVE"),
        "{s}"
    );
    assert!(s.contains("✓ container: 3f2a9c41d0e1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b matches [\"3f2a9c41d0e1\"]"), "{s}");
    assert!(
        s.contains("rule #2 \"root\" (line 25, allow): no match"),
        "{s}"
    );
    assert!(s.contains("✗ uid: 1000 does not match [0]"), "{s}");

    // Without the listener the listener-bound rule does not apply: default deny, exit 1.
    let o = callerid(
        &["explain", "--config", &cfg, "--identity", &id, "--json"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["decision"],
        serde_json::json!({"allow": false, "rule": null, "reasons": ["no rule matched; default is deny"]})
    );
    assert_eq!(v["rules"][0]["checks"][0]["key"], "listener");
    assert_eq!(v["rules"][0]["status"], "not_matched");

    // A docker peer fails the listener's expect whatever the rules say.
    let docker = file(&dir, "docker.json", &identity_json(1000, "docker"));
    let o = callerid(
        &[
            "explain",
            "--config",
            &cfg,
            "--identity",
            &docker,
            "--listener",
            "docker-api",
            "--json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["decision"]["reasons"][0],
        "listener \"docker-api\" expect not satisfied"
    );
    assert_eq!(v["expect"][0]["matched"], false);

    // A `serve` answer line on stdin works too.
    let line = format!(
        "{{\"identity\": {}, \"decision\": {{\"allow\": true, \"rule\": null, \"reasons\": []}}}}",
        identity_json(0, "podman")
    );
    let o = callerid(
        &["explain", "--config", &cfg, "--identity", "-"],
        Some(&line),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("decision: allow (rule \"root\")"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn explain_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file(&dir, "gate.toml", GATE);
    let id = file(&dir, "id.json", &identity_json(1000, "podman"));
    let o = callerid(
        &[
            "explain",
            "--config",
            &cfg,
            "--identity",
            &id,
            "--listener",
            "nope",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no listener \"nope\" (listeners: docker-api)"),
        "{}",
        stderr(&o)
    );
    let bad = file(&dir, "bad.json", "{\"peer\": 1}");
    let o = callerid(&["explain", "--config", &cfg, "--identity", &bad], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not a callerid identity"),
        "{}",
        stderr(&o)
    );
    let o = callerid(&["explain", "--config", &cfg], None);
    assert_eq!(
        o.status.code(),
        Some(2),
        "clap requires --pid or --identity"
    );
}

/// `--pid` identifies a live process. Until identification succeeds for a pid, the
/// error must come out as a deny (identification errors never allow).
#[test]
fn explain_a_pid() {
    let dir = tempfile::tempdir().unwrap();
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    let cfg = file(
        &dir,
        "p.toml",
        &format!("version = 1\n[[rule]]\nname = \"me\"\naction = \"allow\"\nmatch.uid = {me}\n"),
    );
    let pid = std::process::id().to_string();
    let o = callerid(
        &["explain", "--config", &cfg, "--pid", &pid, "--json"],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    match o.status.code() {
        Some(0) => assert_eq!(v["decision"]["rule"], "me"),
        Some(1) => {
            assert_eq!(v["decision"]["allow"], false);
            assert!(
                v["decision"]["reasons"][0]
                    .as_str()
                    .unwrap()
                    .starts_with("identification failed: "),
                "{v}"
            );
        }
        c => panic!("exit {c:?}: {}", stderr(&o)),
    }
}
