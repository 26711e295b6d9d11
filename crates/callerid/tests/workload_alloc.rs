//! "No allocation for a path that names no workload", checked with a counting global
//! allocator. This binary holds a single test so no other test thread allocates while
//! it measures.

use callerid::workload::classify;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocations(input: &str) -> (usize, bool) {
    let region = Region::new(GLOBAL);
    let w = classify(input);
    let names = !w.chain.is_empty();
    drop(w);
    (region.change().allocations, names)
}

#[test]
fn no_allocation_without_a_workload() {
    let host = [
        "",
        "/",
        "0::/init.scope",
        "/system.slice/sshd.service",
        "/system.slice/docker.service",
        "/system.slice/system-getty.slice/getty@tty1.service",
        "/user.slice/user-1000.slice/session-2.scope",
        "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-Alacritty-3266.scope",
        "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-6fec48c4-1f82-4313-a1c2-29e205a96958.scope",
        "12:hugetlb:/\n11:devices:/user.slice\n10:pids:/user.slice/user-1000.slice/user@1000.service\n1:name=systemd:/user.slice/user-1000.slice/user@1000.service/gnome-terminal-server.service\n0::/user.slice/user-1000.slice/user@1000.service/gnome-terminal-server.service\n",
        "/machine.slice/libpod-conmon-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
        "/docker/not-an-id",
        "This is not valid",
        "\u{feff}0::/../../system.slice/foo.service (deleted)\r\n",
    ];
    for input in host {
        let (n, names) = allocations(input);
        assert!(!names, "{input:?} names a workload");
        assert_eq!(n, 0, "{input:?} allocated {n} times");
    }

    // The whole public corpus: every case that names no workload allocates nothing.
    let dir = std::env::var("CALLERID_SHARED_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").to_owned());
    let text = std::fs::read_to_string(format!("{dir}/corpus/cgroup-cases.jsonl")).expect("corpus");
    let inputs: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["cgroup"].as_str().expect("cgroup").to_owned()
        })
        .collect();
    let mut none = 0;
    for input in &inputs {
        let (n, names) = allocations(input);
        if !names {
            none += 1;
            assert_eq!(n, 0, "{input:?} names no workload but allocated {n} times");
        }
    }
    assert!(none > 40, "only {none} corpus cases without a workload");

    // With a workload, a lowercase id in a borrowed shape costs only the chain vector.
    let (n, names) = allocations(
        "0::/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
    );
    assert!(names);
    assert_eq!(n, 1, "a docker scope allocated {n} times");
}
