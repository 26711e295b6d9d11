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
use callerid_testkit::policy_bench::{container_id, podman_identity_json};
use divan::{Bencher, black_box};

fn main() {
    divan::main();
}

const SIZES: &[usize] = &[10, 1_000, 10_000];

fn policy_text(n: usize) -> String {
    callerid_testkit::policy_bench::policy_text(n, true)
}

fn identity(container: &str, uid: u32) -> Identity {
    serde_json::from_str(&podman_identity_json(container, uid)).unwrap()
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
    let last = identity(&container_id(last_container), 1000);
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
