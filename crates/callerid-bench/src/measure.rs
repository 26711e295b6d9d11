//! Same-run comparisons on a noisy machine: every case of a table is measured in
//! interleaved rounds (A B C, B C A, C A B, …), each round timing a batch of
//! operations, and a figure is the median of its rounds. Ratios are taken between
//! medians of the same run.

use std::time::Instant;

/// One measured case.
pub struct Case<'a> {
    /// Row label.
    pub name: String,
    /// Runs one operation.
    pub op: Box<dyn FnMut() + 'a>,
}

impl std::fmt::Debug for Case<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish()
    }
}

impl<'a> Case<'a> {
    /// A case named `name` running `op`.
    pub fn new(name: impl Into<String>, op: impl FnMut() + 'a) -> Self {
        Self {
            name: name.into(),
            op: Box::new(op),
        }
    }
}

/// The result of one case: nanoseconds per operation.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Row label.
    pub name: String,
    /// Median over rounds of ns per operation.
    pub median_ns: f64,
    /// Fastest round.
    pub min_ns: f64,
}

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Effort {
    /// Rounds per case.
    pub rounds: usize,
    /// Operations per round.
    pub iters: usize,
}

impl Effort {
    /// Scales the operations per round (at least 1).
    pub fn iters(self, div: usize) -> Self {
        Self {
            rounds: self.rounds,
            iters: (self.iters / div.max(1)).max(1),
        }
    }
}

/// Measures every case in interleaved rounds. The first case is the baseline of the
/// table by convention.
pub fn interleaved(effort: Effort, cases: &mut [Case<'_>]) -> Vec<Figure> {
    let n = cases.len();
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(effort.rounds); n];
    // Warm-up: caches, page faults, lazily built state.
    for c in cases.iter_mut() {
        for _ in 0..(effort.iters / 10).max(2) {
            (c.op)();
        }
    }
    for round in 0..effort.rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let c = &mut cases[i];
            let t = Instant::now();
            for _ in 0..effort.iters {
                (c.op)();
            }
            samples[i].push(t.elapsed().as_nanos() as f64 / effort.iters as f64);
        }
    }
    cases
        .iter()
        .zip(samples)
        .map(|(c, mut s)| {
            s.sort_by(f64::total_cmp);
            Figure {
                name: c.name.clone(),
                median_ns: median(&s),
                min_ns: s.first().copied().unwrap_or(f64::NAN),
            }
        })
        .collect()
}

/// Median of sorted values.
pub fn median(sorted: &[f64]) -> f64 {
    percentile(sorted, 50.0)
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
