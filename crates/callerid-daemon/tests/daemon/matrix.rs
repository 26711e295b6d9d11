//! Allow/deny matrix through a real gate: real client processes, as other users and
//! inside cgroups named like containers (the classifier names them, no runtime needed).

use crate::support::*;
use callerid_testkit::TestCgroup;

struct Peer {
    name: &'static str,
    uid: u32,
    cgroup: TestCgroup,
}

#[test]
fn allow_deny_matrix() {
    if callerid_testkit::need_root("matrix::allow_deny_matrix") {
        return;
    }
    if !have("socat") || !have("setpriv") {
        callerid_testkit::skip("matrix::allow_deny_matrix", "needs socat and setpriv");
        return;
    }
    let id_a = "a1".repeat(32);
    let id_b = "3f2a9c41d0e1".to_string() + &"b2".repeat(26);
    let peers = [
        Peer {
            name: "A",
            uid: 4242,
            cgroup: TestCgroup::new(&format!("system.slice/docker-{id_a}.scope")).unwrap(),
        },
        Peer {
            name: "B",
            uid: 0,
            cgroup: TestCgroup::new(&format!("machine.slice/libpod-{id_b}.scope")).unwrap(),
        },
        Peer {
            name: "C",
            uid: 4243,
            cgroup: TestCgroup::new("plain.slice/plain.service").unwrap(),
        },
    ];
    let listeners = ["uid", "cgroup", "container", "prefix", "runtime", "expect"];
    let mut config = String::from("version = 1\ndefault = \"deny\"\n\n");
    for l in listeners {
        config += &format!(
            "[[listener]]\nname = \"{l}\"\npath = \"{{dir}}/{l}.sock\"\nbackend = \"{{dir}}/{l}.backend\"\nmode = \"0666\"\n"
        );
        if l == "expect" {
            config += "expect = { uid = [4243] }\n";
        }
        config += "\n";
    }
    let prefix = &id_b[..12];
    for (l, m) in [
        ("uid", "uid = [4242]".to_string()),
        (
            "cgroup",
            "cgroup = \"/callerid-test-*/machine.slice/*\"".to_string(),
        ),
        ("container", format!("container = \"{id_a}\"")),
        ("prefix", format!("container = \"{prefix}\"")),
        ("runtime", "runtime = \"podman\"".to_string()),
        ("expect", "uid = [0, 4242, 4243]".to_string()),
    ] {
        config += &format!(
            "[[rule]]\nname = \"{l}-rule\"\naction = \"allow\"\nlistener = \"{l}\"\n[rule.match]\n{m}\n\n"
        );
    }
    let d = TestDaemon::gate(&config);
    let _backends: Vec<_> = listeners
        .iter()
        .map(|l| echo_backend(&d.path(&format!("{l}.backend"))))
        .collect();

    let expected = [
        //            A      B      C
        ("uid", [true, false, false]),
        ("cgroup", [false, true, false]),
        ("container", [true, false, false]),
        ("prefix", [false, true, false]),
        ("runtime", [false, true, false]),
        ("expect", [false, false, true]),
    ];
    let mut failures = Vec::new();
    for (l, want) in expected {
        for (peer, want) in peers.iter().zip(want) {
            let uid = format!("--reuid={}", peer.uid);
            let gid = format!("--regid={}", peer.uid);
            let client = Client::spawn(
                &["setpriv", &uid, &gid, "--clear-groups"],
                &d.path(&format!("{l}.sock")),
            );
            peer.cgroup.add_pid(client.pid()).unwrap();
            let allowed = client.run("x\n") == "x\n";
            if allowed != want {
                failures.push(format!(
                    "listener {l}, peer {}: allowed={allowed}, expected {want}",
                    peer.name
                ));
            }
        }
    }
    let audit = d.audit_lines(18);
    assert!(failures.is_empty(), "{failures:#?}\naudit: {audit:#?}");
    let expect_denials: Vec<_> = audit
        .iter()
        .filter(|l| l["listener"] == "expect" && l["allow"] == false)
        .collect();
    assert_eq!(expect_denials.len(), 2);
    for l in expect_denials {
        assert!(
            l["reasons"].to_string().contains("expect"),
            "expect mismatch is named as the reason: {l}"
        );
    }
}

#[test]
fn a_podman_container_passes_expect_the_host_does_not() {
    if let Some(why) = callerid_testkit::podman::unavailable() {
        callerid_testkit::skip("matrix::a_podman_container_passes_expect", &why);
        return;
    }
    if !have("socat") {
        callerid_testkit::skip("matrix::a_podman_container_passes_expect", "needs socat");
        return;
    }
    callerid_testkit::podman::image().unwrap();
    let d = TestDaemon::gate(
        r#"
version = 1
default = "deny"

[[listener]]
name = "containers-only"
path = "{dir}/gate.sock"
backend = "{dir}/backend.sock"
mode = "0666"
expect = { runtime = "podman", kind = "container" }

[[rule]]
name = "anyone here"
action = "allow"
listener = "containers-only"
[rule.match]
uid = [0]
"#,
    );
    let _b = echo_backend(&d.path("backend.sock"));
    // From the host: the rule would allow uid 0, but `expect` is not met.
    let mut host = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    assert!(refused(&mut host));
    // From a real container (socat from the host's read-only /usr).
    let (mut cmd, cidfile) = callerid_testkit::podman::Run::new()
        .unwrap()
        .volume(d.dir.path(), "/x")
        .command([
            "sh",
            "-c",
            "echo through-the-gate | /usr/bin/socat -t 10 - UNIX-CONNECT:/x/gate.sock",
        ]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "podman: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through-the-gate\n");
    let cid = std::fs::read_to_string(cidfile).unwrap().trim().to_string();
    let audit = d.audit_lines(2);
    assert_eq!(audit[0]["allow"], false);
    assert!(
        audit[0]["reasons"].to_string().contains("expect"),
        "{}",
        audit[0]
    );
    assert_eq!(audit[1]["allow"], true);
    assert_eq!(
        audit[1]["container"]["id"],
        serde_json::Value::String(cid),
        "{}",
        audit[1]
    );
    assert_eq!(audit[1]["container"]["runtime"], "podman");
}
