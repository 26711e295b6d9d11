//! Decisions per second at 10, 1 000 and 10 000 rules, indexed against the linear
//! reference evaluator (the baseline) in the same run.
//!
//! Rule mix (per 20 rules): 9 per-container allows (12-hex prefix), 4 uid + exe-glob
//! rules, 3 exact units, 2 pod uids, 1 cgroup id, 1 cgroup-path glob (indexed by its
//! literal prefix); and 1 rule in 100 is `runtime = "podman"` + `userns_initial`, which
//! only the coarse runtime index files, so it is a candidate for every (podman) peer. Peers: one that matches the last
//! container rule of the file, one that matches nothing (default deny: every candidate
//! evaluated).
#![allow(clippy::unwrap_used)]

use callerid::Identity;
use callerid_policy::{Context, Policy};
use divan::{Bencher, black_box};
use std::fmt::Write as _;

fn main() {
    divan::main();
}

const SIZES: &[usize] = &[10, 1_000, 10_000];

fn hex(i: usize) -> String {
    format!(
        "{:016x}{:048x}",
        (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        i
    )
}

fn policy_text(n: usize) -> String {
    let mut s = String::from("version = 1\ndefault = \"deny\"\n");
    for i in 0..n {
        let _ = write!(
            s,
            "[[rule]]\nname = \"r{i}\"\naction = \"{}\"\n[rule.match]\n",
            if i % 7 == 0 { "deny" } else { "allow" }
        );
        if i % 100 == 99 {
            let _ = writeln!(s, "runtime = \"podman\"\nuserns_initial = true");
            continue;
        }
        let _ = match i % 20 {
            0..=8 => writeln!(s, "container = \"{}\"", &hex(i)[..12]),
            9..=12 => writeln!(s, "uid = {}\nexe = \"/opt/app{i}/bin/*\"", 10_000 + i),
            13..=15 => writeln!(s, "unit = \"svc{i}.service\"\nruntime = \"podman\""),
            16..=17 => writeln!(s, "pod_uid = \"{i:08}-aaaa-bbbb-cccc-dddddddddddd\""),
            18 => writeln!(s, "cgroup_id = {}", 100_000 + i),
            _ => writeln!(s, "cgroup = \"/kubepods.slice/kubepods-pod{i}.slice/**\""),
        };
    }
    s
}

fn identity(container: &str, uid: usize) -> Identity {
    let v = serde_json::json!({
        "version": 1,
        "peer": {"pid": 4242, "uid": uid, "gid": 1000, "groups": [1000], "security_label": null},
        "process": {"pidfs_id": 1957, "pid": 4242, "ppid": 1, "uid": uid, "euid": uid, "gid": 1000,
                    "egid": 1000, "comm": "sh", "exe": "/usr/bin/busybox", "state": "alive"},
        "cgroup": {"id": 519, "path": format!("/machine.slice/libpod-{container}.scope"), "at": "now"},
        "namespaces": null, "user_namespace": null,
        "workload": {"container": {"runtime": "podman", "id": container}, "pod": null,
                     "chain": [{"kind": "container", "runtime": "podman", "id": container}],
                     "unit": format!("libpod-{container}.scope"), "user_unit": null, "slice": "machine.slice"},
        "drift": null,
        "provenance": {"peer": "kernel_connect", "process": "kernel_now", "cgroup": "kernel_now",
                       "namespaces": null, "user_namespace": null, "workload": "cgroup_path"},
        "warnings": []
    });
    serde_json::from_value(v).unwrap()
}

struct Case {
    policy: Policy,
    last: Identity,
    none: Identity,
}

fn case(n: usize) -> Case {
    let policy = Policy::parse(&policy_text(n)).unwrap();
    // The last container rule of the file.
    let last_container = (0..n)
        .rev()
        .find(|i| i % 20 <= 8 && i % 100 != 99)
        .unwrap_or(0);
    let last = identity(&hex(last_container), 1000);
    let none = identity(&"f".repeat(64), 1000);
    let ctx = Context::default();
    assert_eq!(
        policy.evaluate(&last, &ctx),
        policy.evaluate_linear(&last, &ctx)
    );
    assert!(policy.evaluate(&last, &ctx).allow || last_container % 7 == 0);
    assert!(!policy.evaluate(&none, &ctx).allow);
    Case { policy, last, none }
}

#[divan::bench(args = SIZES)]
fn indexed_match_last(b: Bencher, n: usize) {
    let c = case(n);
    b.bench(|| c.policy.evaluate(black_box(&c.last), &Context::default()));
}

#[divan::bench(args = SIZES)]
fn linear_match_last(b: Bencher, n: usize) {
    let c = case(n);
    b.bench(|| {
        c.policy
            .evaluate_linear(black_box(&c.last), &Context::default())
    });
}

#[divan::bench(args = SIZES)]
fn indexed_no_match(b: Bencher, n: usize) {
    let c = case(n);
    b.bench(|| c.policy.evaluate(black_box(&c.none), &Context::default()));
}

#[divan::bench(args = SIZES)]
fn linear_no_match(b: Bencher, n: usize) {
    let c = case(n);
    b.bench(|| {
        c.policy
            .evaluate_linear(black_box(&c.none), &Context::default())
    });
}

/// `decide` = `evaluate` plus the `Decision` (rule name and reasons) the daemon writes.
#[divan::bench(args = SIZES)]
fn decide_match_last(b: Bencher, n: usize) {
    let c = case(n);
    b.bench(|| c.policy.decide(black_box(&c.last), &Context::default()));
}

/// Compile time, for reload: parse + validate + index.
#[divan::bench(args = SIZES, sample_count = 10)]
fn parse(b: Bencher, n: usize) {
    let text = policy_text(n);
    b.bench(|| Policy::parse(black_box(&text)).unwrap());
}
