//! Pure figures: classifier paths/s over the corpus, policy decisions/s by rule count.

use crate::measure::{Case, Effort, Figure, interleaved};
use crate::table::{Section, ns, per_sec};
use anyhow::{Context as _, Result};
use callerid::Identity;
use callerid_policy::{Context, Policy};
use callerid_testkit::policy_bench::{container_id, podman_identity_json};
use std::cell::Cell;

fn shared_dir() -> String {
    std::env::var("CALLERID_SHARED_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").to_owned())
}

/// Every distinct cgroup path of the corpus (the path part of each input line).
pub fn corpus_paths() -> Result<Vec<String>> {
    let file = format!("{}/corpus/cgroup-cases.jsonl", shared_dir());
    let text = std::fs::read_to_string(&file).with_context(|| format!("read {file}"))?;
    let inputs: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["cgroup"].as_str().map(str::to_owned))
        .collect();
    Ok(callerid_testkit::corpus::cgroup_paths(
        inputs.iter().map(String::as_str),
    ))
}

fn rate_section(title: &str, command: &str, intro: &str) -> Section {
    let mut s = Section::times(title, command, intro);
    s.header = [
        "case",
        "median per item",
        "rate",
        "baseline",
        "baseline rate",
        "time ratio",
    ]
    .map(str::to_owned)
    .to_vec();
    s
}

fn push_rates(s: &mut Section, figs: &[Figure], base: &Figure) {
    for f in figs {
        s.rows.push(vec![
            f.name.clone(),
            ns(f.median_ns),
            per_sec(f.median_ns),
            base.name.clone(),
            per_sec(base.median_ns),
            format!("{:.2}×", f.median_ns / base.median_ns),
        ]);
    }
}

/// `classify` over every corpus path, against the naive 64-hex regex over the same paths.
pub fn classify_section(effort: Effort) -> Result<Section> {
    let paths = corpus_paths()?;
    let n = paths.len();
    let re = regex_lite::Regex::new(r"[0-9a-f]{64}")?;
    let i = Cell::new(0usize);
    let next = || {
        let k = i.get();
        i.set((k + 1) % n);
        &paths[k]
    };
    let mut cases = vec![
        Case::new("naive: regex-lite [0-9a-f]{64} over the path", || {
            std::hint::black_box(re.find(next()));
        }),
        Case::new("callerid::workload::classify(path)", || {
            std::hint::black_box(callerid::workload::classify(next()));
        }),
        Case::new(
            "classify(path).into_owned() (what the cache stores)",
            || {
                std::hint::black_box(callerid::workload::classify(next()).into_owned());
            },
        ),
    ];
    let figs = interleaved(effort.iters(1), &mut cases);
    let mut s = rate_section(
        "classify: paths/s over the corpus",
        "cargo run --release -p callerid-bench -- report classify",
        &format!(
            "{n} distinct paths from shared/corpus/cgroup-cases.jsonl, cycled; one item = one \
             path. The classifier runs once per new cgroup id (then cached), never per \
             connection on a warm cache."
        ),
    );
    push_rates(&mut s, &figs, &figs[0]);
    Ok(s)
}

/// A policy of `n` rules of mixed kinds (containers, uid+exe globs, units, pods, cgroup
/// ids and globs, a coarse runtime rule every 100).
pub fn policy_text(n: usize) -> String {
    policy_text_mix(n, true)
}

/// [`policy_text`], with or without the coarse `runtime` rule every 100 rules.
pub fn policy_text_mix(n: usize, coarse: bool) -> String {
    callerid_testkit::policy_bench::policy_text(n, coarse)
}

fn identity(container: &str) -> Result<Identity> {
    Ok(serde_json::from_str(&podman_identity_json(
        container, 1000,
    ))?)
}

/// Decisions/s at 10, 1 000 and 10 000 rules (baseline: 10 rules), and the linear
/// reference evaluator at each size.
pub fn policy_section(effort: Effort) -> Result<Section> {
    let sizes = [10usize, 1_000, 10_000];
    let mut built = Vec::new();
    for n in sizes {
        let policy = Policy::parse(&policy_text(n))?;
        let last = (0..n)
            .rev()
            .find(|i| i % 20 <= 8 && i % 100 != 99)
            .unwrap_or(0);
        built.push((
            n,
            policy,
            identity(&container_id(last))?,
            identity(&"f".repeat(64))?,
        ));
    }
    // Only indexed keys (no coarse rule): what "flat" means for the index itself.
    let mut fine = Vec::new();
    for n in sizes {
        let policy = Policy::parse(&policy_text_mix(n, false))?;
        let last = (0..n).rev().find(|i| i % 20 <= 8).unwrap_or(0);
        fine.push((n, policy, identity(&container_id(last))?));
    }
    let ctx = Context::default();
    let mut cases = Vec::new();
    for (n, p, last, _) in &built {
        let ctx = &ctx;
        cases.push(Case::new(
            format!("decide, {n} rules, peer matches the last container rule"),
            move || {
                std::hint::black_box(p.decide(std::hint::black_box(last), ctx));
            },
        ));
    }
    for (n, p, _, none) in &built {
        let ctx = &ctx;
        cases.push(Case::new(
            format!("decide, {n} rules, peer matches nothing (default deny)"),
            move || {
                std::hint::black_box(p.decide(std::hint::black_box(none), ctx));
            },
        ));
    }
    for (n, p, last) in &fine {
        let ctx = &ctx;
        cases.push(Case::new(
            format!("decide, {n} rules without coarse rules, matches the last container rule"),
            move || {
                std::hint::black_box(p.decide(std::hint::black_box(last), ctx));
            },
        ));
    }
    let figs = interleaved(effort.iters(1), &mut cases);
    drop(cases);
    // The linear reference evaluator (the baseline for what the indexes save) is far
    // slower at 10 000 rules: fewer operations per round.
    let mut cases = Vec::new();
    for (n, p, last, _) in &built {
        let ctx = &ctx;
        cases.push(Case::new(
            format!("linear reference evaluator, {n} rules, matches the last"),
            move || {
                std::hint::black_box(p.evaluate_linear(std::hint::black_box(last), ctx));
            },
        ));
    }
    let linear = interleaved(
        Effort {
            rounds: effort.rounds.min(7),
            iters: (effort.iters / 1000).max(5),
        },
        &mut cases,
    );
    let mut s = rate_section(
        "policy: decisions/s by rule count",
        "cargo run --release -p callerid-bench -- report policy",
        "Rule mix per 20 rules: 9 container-id prefixes, 4 uid + exe glob, 3 units, 2 pod \
         uids, 1 cgroup id, 1 cgroup glob; 1 in 100 a coarse `runtime = \"podman\"` rule. \
         The baseline of every row is the same kind of decision at 10 rules: the ratio is \
         the scale cost. The coarse `runtime = \"podman\"` rules (100 of them at 10 000 \
         rules) are candidates for every podman peer, so the first two groups grow with \
         them; the last group has only indexed keys.",
    );
    for chunk in figs.chunks(sizes.len()) {
        push_rates(&mut s, chunk, &chunk[0]);
    }
    push_rates(&mut s, &linear, &linear[0]);
    Ok(s)
}
