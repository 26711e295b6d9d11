//! `callerid peers` through the built binary, against a server in another process.

use crate::run::{callerid, text};
use callerid_testkit::unix_server::{Fixture, role_from_env};
use callerid_testkit::{TestCgroup, need_root};
use serde_json::Value;
use std::process::{Command, Output, Stdio};

/// Entry of the helper processes of this module (does nothing in a normal run).
#[test]
fn peers_role() {
    if let Some(code) = role_from_env() {
        std::process::exit(code);
    }
}

fn exe_cmd() -> Command {
    callerid_testkit::reexec::command("peers::peers_role").expect("current_exe")
}

fn callerid_as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_callerid"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv callerid")
}

fn json(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}\n{}",
        out.status,
        text(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v.as_array().expect("one JSON array").clone()
}

/// `(peer pid, uid, cgroup path)` of each entry, sorted.
fn peers(entries: &[Value]) -> Vec<(u64, u64, String)> {
    let mut v: Vec<_> = entries
        .iter()
        .map(|e| {
            let id = &e["identity"];
            (
                id["peer"]["pid"].as_u64().expect("peer pid"),
                id["peer"]["uid"].as_u64().expect("uid"),
                id["cgroup"]["path"]
                    .as_str()
                    .expect("cgroup path")
                    .to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The WHERE column the table must show: the container (runtime and short id), else the
/// unit, else the cgroup path.
fn where_of(id: &Value, cgroup: &str) -> String {
    let w = &id["workload"];
    if let (Some(rt), Some(cid)) = (
        w["container"]["runtime"].as_str(),
        w["container"]["id"].as_str(),
    ) {
        return format!("{rt} {}", cid.chars().take(12).collect::<String>());
    }
    w["user_unit"]
        .as_str()
        .or(w["unit"].as_str())
        .unwrap_or(cgroup)
        .to_owned()
}

#[test]
fn peers_of_socket_and_pid() {
    if need_root("peers_of_socket_and_pid") {
        return;
    }
    let cg_a = TestCgroup::new("peers-cli-a").expect("cgroup a");
    let cg_b = TestCgroup::new("peers-cli-b").expect("cgroup b");
    let mut fx = Fixture::start(exe_cmd).expect("server");
    let a = fx.connect_client(&cg_a, None).expect("client a");
    let b = fx.connect_client(&cg_b, Some(65534)).expect("client b");
    let server = fx.server_pid();
    let path = fx.path().to_str().expect("utf-8 path").to_owned();

    // JSON, by socket.
    let by_socket = json(&callerid(&["peers", "--socket", &path, "--json"]));
    let entries = &by_socket;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    let mut want = vec![
        (u64::from(a), 0, cg_a.rel_path()),
        (u64::from(b), 65534, cg_b.rel_path()),
    ];
    want.sort();
    assert_eq!(peers(entries), want);
    for e in entries {
        let obj = e.as_object().expect("object");
        assert_eq!(
            obj.keys().collect::<Vec<_>>(),
            ["identity", "server"],
            "no error key when identified"
        );
        let s = &e["server"];
        assert_eq!(s["pid"].as_u64(), Some(u64::from(server)));
        assert!(s["fd"].as_u64().is_some_and(|fd| fd > 2), "{s}");
        assert!(s["inode"].as_u64().is_some_and(|i| i > 0), "{s}");
        assert_eq!(s["path"].as_str(), Some(path.as_str()));
        assert_eq!(s["role"].as_str(), Some("accepted"));
        let id = &e["identity"];
        for key in callerid_testkit::IDENTITY_JSON_KEYS {
            assert!(id.get(key).is_some(), "identity lacks {key}: {id}");
        }
        assert_eq!(id["provenance"]["peer"].as_str(), Some("kernel_connect"));
    }

    // JSON, by server pid: the same two plus its connection out.
    let entries = json(&callerid(&[
        "peers",
        "--pid",
        &server.to_string(),
        "--json",
    ]));
    assert_eq!(entries.len(), 3, "{entries:#?}");
    let accepted: Vec<Value> = entries
        .iter()
        .filter(|e| e["server"]["role"] == "accepted")
        .cloned()
        .collect();
    assert_eq!(peers(&accepted), want);
    let connected: Vec<&Value> = entries
        .iter()
        .filter(|e| e["server"]["role"] == "connected")
        .collect();
    assert_eq!(connected.len(), 1, "{entries:#?}");
    assert_eq!(
        connected[0]["server"]["path"].as_str(),
        fx.upstream_path().to_str()
    );
    assert_eq!(
        connected[0]["identity"]["peer"]["pid"].as_u64(),
        Some(u64::from(std::process::id()))
    );

    // Human table: a header and one aligned line per connection.
    let out = callerid(&["peers", "--socket", &path]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}{}", text(&out.stderr));
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 3, "{s}");
    for col in ["SERVER", "ROLE", "SOCKET", "PEER", "UID", "WHERE"] {
        assert!(lines[0].contains(col), "{s}");
    }
    let col = lines[0].find("PEER").expect("PEER column");
    for (pid, uid, cg) in &want {
        let id = by_socket
            .iter()
            .map(|e| &e["identity"])
            .find(|id| id["peer"]["pid"].as_u64() == Some(*pid))
            .expect("identity of peer");
        let place = where_of(id, cg);
        let line = lines[1..]
            .iter()
            .find(|l| l[col..].starts_with(&format!("{pid} ")))
            .unwrap_or_else(|| panic!("no line for peer {pid} in\n{s}"));
        assert!(line.starts_with(&format!("{server}/")), "{line}");
        assert!(line.contains(" accepted "), "{line}");
        assert!(line.contains(&path), "{line}");
        assert!(line.contains(&format!(" {uid} ")), "{line}");
        assert!(line.ends_with(&place), "want {place:?} last: {line}");
    }

    // A closed connection disappears.
    fx.close_client(a).expect("close a");
    let entries = json(&callerid(&["peers", "--socket", &path, "--json"]));
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(
        entries[0]["identity"]["peer"]["pid"].as_u64(),
        Some(u64::from(b))
    );

    // Unprivileged: a clear refusal, not a panic and not an empty success.
    for args in [
        vec!["peers", "--pid", &server.to_string()],
        vec!["peers", "--socket", &path],
    ] {
        let args: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
        let out = callerid_as_nobody(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("not permitted"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    }
}

#[test]
fn peers_bad_input() {
    let out = callerid(&["peers", "--pid", "4000000000"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no such process"));
    let out = callerid(&["peers"]);
    assert_eq!(out.status.code(), Some(2));
    let out = callerid(&["peers", "--pid", "1", "--socket", "/x"]);
    assert_eq!(out.status.code(), Some(2));
    // A path nothing listens on: an empty list, not an error.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("nothing.sock");
    let out = callerid(&["peers", "--socket", p.to_str().expect("utf-8"), "--json"]);
    if callerid_testkit::is_root() {
        assert_eq!(json(&out), Vec::<Value>::new());
    }
}

/// A busy server: more connections than the inspecting process may hold descriptors.
/// Each copy is closed before the next is made, so a low descriptor limit is no bar.
#[test]
fn peers_of_a_busy_server_under_a_low_fd_limit() {
    if need_root("peers_of_a_busy_server_under_a_low_fd_limit") {
        return;
    }
    let mut fx = Fixture::start(exe_cmd).expect("server");
    let n = 200;
    let conns: Vec<_> = (0..n)
        .map(|_| std::os::unix::net::UnixStream::connect(fx.path()).expect("connect"))
        .collect();
    fx.wait_accepted(n).expect("accepted");
    let path = fx.path().to_str().expect("utf-8 path").to_owned();
    let out = Command::new("prlimit")
        .args(["--nofile=32:32", "--"])
        .arg(env!("CARGO_BIN_EXE_callerid"))
        .args(["peers", "--socket", &path, "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("run prlimit callerid");
    let entries = json(&out);
    assert_eq!(entries.len(), n);
    assert!(
        entries
            .iter()
            .all(|e| e["identity"]["peer"]["pid"].as_u64() == Some(u64::from(std::process::id())))
    );
    drop(conns);
}
