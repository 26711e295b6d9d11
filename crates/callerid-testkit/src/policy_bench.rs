//! The synthetic policies and peers that `cargo bench -p callerid-policy` and the
//! BENCHMARKS.md report (`callerid-bench`) both measure, defined once so the two
//! measure the same thing.

use std::fmt::Write as _;

/// A 64-hex container id, distinct for each `i` and spread over the id space (so 12-hex
/// prefixes differ too).
pub fn container_id(i: usize) -> String {
    format!(
        "{:016x}{:048x}",
        (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        i
    )
}

/// A policy of `n` rules, default deny. Per 20 rules: 9 per-container allows (12-hex
/// prefix of [`container_id`]), 4 uid + exe-glob rules, 3 exact units, 2 pod uids, 1
/// cgroup id, 1 cgroup-path glob; every 7th rule denies. With `coarse`, 1 rule in 100
/// is `runtime = "podman"` + `userns_initial` instead, which only the coarse runtime
/// index files, so it is a candidate for every podman peer.
pub fn policy_text(n: usize, coarse: bool) -> String {
    let mut s = String::from("version = 1\ndefault = \"deny\"\n");
    for i in 0..n {
        let _ = write!(
            s,
            "[[rule]]\nname = \"r{i}\"\naction = \"{}\"\n[rule.match]\n",
            if i % 7 == 0 { "deny" } else { "allow" }
        );
        if coarse && i % 100 == 99 {
            let _ = writeln!(s, "runtime = \"podman\"\nuserns_initial = true");
            continue;
        }
        let _ = match i % 20 {
            0..=8 => writeln!(s, "container = \"{}\"", &container_id(i)[..12]),
            9..=12 => writeln!(s, "uid = {}\nexe = \"/opt/app{i}/bin/*\"", 10_000 + i),
            13..=15 => writeln!(s, "unit = \"svc{i}.service\"\nruntime = \"podman\""),
            16..=17 => writeln!(s, "pod_uid = \"{i:08}-aaaa-bbbb-cccc-dddddddddddd\""),
            18 => writeln!(s, "cgroup_id = {}", 100_000 + i),
            _ => writeln!(s, "cgroup = \"/kubepods.slice/kubepods-pod{i}.slice/**\""),
        };
    }
    s
}

/// The identity JSON (DESIGN.md §2) of a process with `uid` in podman container
/// `container`, as `serve` would answer it.
pub fn podman_identity_json(container: &str, uid: u32) -> String {
    format!(
        r#"{{
  "version": 1,
  "peer": {{"pid": 4242, "uid": {uid}, "gid": 1000, "groups": [1000], "security_label": null}},
  "process": {{"pidfs_id": 1957, "pid": 4242, "ppid": 1, "uid": {uid}, "euid": {uid}, "gid": 1000,
              "egid": 1000, "comm": "sh", "exe": "/usr/bin/busybox", "state": "alive"}},
  "cgroup": {{"id": 519, "path": "/machine.slice/libpod-{container}.scope", "at": "now"}},
  "namespaces": null, "user_namespace": null,
  "workload": {{"container": {{"runtime": "podman", "id": "{container}"}}, "pod": null,
               "chain": [{{"kind": "container", "runtime": "podman", "id": "{container}"}}],
               "unit": "libpod-{container}.scope", "user_unit": null, "slice": "machine.slice"}},
  "drift": null,
  "provenance": {{"peer": "kernel_connect", "process": "kernel_now", "cgroup": "kernel_now",
                 "namespaces": null, "user_namespace": null, "workload": "cgroup_path"}},
  "warnings": []
}}"#
    )
}
