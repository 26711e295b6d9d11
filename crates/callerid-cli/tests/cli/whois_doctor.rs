//! `callerid whois` and `callerid doctor` through the built binary.

use crate::run::{callerid, text};
use std::process::{Command, Stdio};

#[test]
fn doctor_human() {
    let out = callerid(&["doctor"]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}{}", text(&out.stderr));
    for needle in [
        "kernel ",
        "cgroup2 ",
        "SO_PEERPIDFD",
        "SO_PEERGROUPS",
        "SO_PEERSEC",
        "PIDFD_GET_INFO",
        "open_by_handle_at",
        "pidfd after reap",
        "connect-time cgroup",
    ] {
        assert!(s.contains(needle), "missing {needle:?} in\n{s}");
    }
    assert!(s.lines().count() < 40, "readable at a glance:\n{s}");
}

#[test]
fn doctor_json() {
    let out = callerid(&["doctor", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for key in [
        "kernel",
        "so_peerpidfd",
        "pidfd_get_info",
        "pidfd_info_mask",
        "open_by_handle_at",
        "cgroup2_mount",
        "privileges",
        "connect_cgroup",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert!(v["so_peerpidfd"]["available"].is_boolean());
}

#[test]
fn whois_json_and_human() {
    let mut child = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .expect("sleep");
    let pid = child.id().to_string();
    // spawn() returns after fork, possibly before the child has exec'd `sleep`.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() != "sleep") {
        assert!(std::time::Instant::now() < deadline, "sleep never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }

    let out = callerid(&["whois", "--pid", &pid, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let who: callerid::Identity = serde_json::from_slice(&out.stdout).expect("identity json");
    assert_eq!(
        who.peer().pid.map(|p| p.get().to_string()),
        Some(pid.clone())
    );
    assert_eq!(
        who.provenance().pidfd,
        Some(callerid::PidfdSource::PidfdOpen)
    );
    assert_eq!(
        who.provenance().peer,
        Some(callerid::Provenance::KernelNow),
        "not connect-time"
    );
    assert_eq!(who.process().and_then(|p| p.comm.as_deref()), Some("sleep"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for key in callerid_testkit::IDENTITY_JSON_KEYS {
        assert!(v.get(key).is_some(), "missing {key}");
    }

    let out = callerid(&["whois", "--pid", &pid]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for label in [
        "who",
        "process",
        "cgroup",
        "workload",
        "userns",
        "namespaces",
    ] {
        assert!(
            s.lines().any(|l| l.starts_with(label)),
            "no {label} line in\n{s}"
        );
    }
    assert!(
        s.contains(&format!("pid {pid}")) && s.contains("sleep"),
        "{s}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn whois_missing_pid_exits_1() {
    // pid_max is at most 2^22.
    let out = callerid(&["whois", "--pid", "8388608"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("pidfd_open"),
        "{}",
        text(&out.stderr)
    );
}

/// Connect-time capture: active as root (CI must exercise it), and without the
/// capabilities doctor names exactly what is missing and what falls back.
#[test]
fn doctor_reports_connect_time_capture() {
    if callerid_testkit::need_root("doctor_reports_connect_time_capture") {
        return;
    }
    let out = callerid(&["doctor", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("doctor --json");
    let cc = &v["connect_cgroup"];
    assert_eq!(
        cc["available"], true,
        "capture must work as root here: {cc}"
    );
    assert!(cc["detail"].as_str().unwrap().contains("self-test"), "{cc}");

    let out = Command::new("setpriv")
        .args(["--inh-caps=-all", "--bounding-set=-all", "--"])
        .arg(env!("CARGO_BIN_EXE_callerid"))
        .args(["doctor"])
        .output()
        .expect("run doctor without capabilities");
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}");
    let line = s
        .lines()
        .skip_while(|l| !l.contains("connect-time cgroup"))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(line.contains("no "), "{line}");
    assert!(
        line.contains("CAP_BPF") && line.contains("CAP_NET_ADMIN"),
        "{line}"
    );
    assert!(line.contains("kernel_now"), "the fallback is named: {line}");
}
