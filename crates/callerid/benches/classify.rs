//! Throughput of the workload classifier over the public corpus.
//!
//! - `paths`: every distinct path of the corpus (the path part of each line), one
//!   `classify` call each: the per-cgroup cost the identifier pays on a cache miss.
//! - `files`: every corpus input whole (multi-line `/proc/<pid>/cgroup` texts).
//! - `baseline_split`: splitting the same paths into components and looking for a
//!   64-hex component, the least any classifier must do; the ratio to it says how much
//!   the runtime families cost on top.
//!
//! Run: `cargo bench -p callerid --bench classify`.

use callerid::workload::classify;
use divan::Bencher;
use divan::counter::ItemsCount;

fn main() {
    divan::main();
}

fn corpus_inputs() -> Vec<String> {
    let dir = std::env::var("CALLERID_SHARED_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").to_owned());
    let text =
        std::fs::read_to_string(format!("{dir}/corpus/cgroup-cases.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["cgroup"].as_str().map(str::to_owned))
        .collect()
}

fn corpus_paths() -> Vec<String> {
    callerid_testkit::corpus::cgroup_paths(corpus_inputs().iter().map(String::as_str))
}

#[divan::bench]
fn paths(bencher: Bencher) {
    let paths = corpus_paths();
    bencher.counter(ItemsCount::new(paths.len())).bench(|| {
        for p in &paths {
            divan::black_box(classify(divan::black_box(p)));
        }
    });
}

#[divan::bench]
fn files(bencher: Bencher) {
    let inputs = corpus_inputs();
    bencher.counter(ItemsCount::new(inputs.len())).bench(|| {
        for t in &inputs {
            divan::black_box(classify(divan::black_box(t)));
        }
    });
}

#[divan::bench]
fn baseline_split(bencher: Bencher) {
    let paths = corpus_paths();
    bencher.counter(ItemsCount::new(paths.len())).bench(|| {
        let mut found = 0usize;
        for p in &paths {
            for c in divan::black_box(p).split('/') {
                if c.len() >= 64 && c.as_bytes()[..64].iter().all(u8::is_ascii_hexdigit) {
                    found += 1;
                }
            }
        }
        divan::black_box(found)
    });
}
