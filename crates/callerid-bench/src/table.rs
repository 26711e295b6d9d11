//! Markdown tables: every figure next to its baseline and the ratio.

use crate::measure::Figure;
use std::fmt::Write as _;

/// A section of BENCHMARKS.md.
#[derive(Debug, Clone)]
pub struct Section {
    /// `## title`.
    pub title: String,
    /// The command that reproduces this table alone.
    pub command: String,
    /// Prose above the table.
    pub intro: String,
    /// Header row.
    pub header: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
    /// Prose below the table.
    pub notes: Vec<String>,
}

impl Section {
    /// A section with the usual time table header.
    pub fn times(title: &str, command: &str, intro: &str) -> Self {
        Self {
            title: title.to_owned(),
            command: command.to_owned(),
            intro: intro.to_owned(),
            header: [
                "case",
                "median",
                "fastest round",
                "baseline",
                "baseline median",
                "ratio",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds `figs[1..]` against `figs[0]` (the first is the baseline row, ratio 1.00).
    pub fn push_against_first(&mut self, figs: &[Figure]) {
        let Some(base) = figs.first() else { return };
        for f in figs {
            self.push_time(f, base);
        }
    }

    /// One row: `f` against `base`.
    pub fn push_time(&mut self, f: &Figure, base: &Figure) {
        self.rows.push(vec![
            f.name.clone(),
            ns(f.median_ns),
            ns(f.min_ns),
            base.name.clone(),
            ns(base.median_ns),
            format!("{:.2}×", f.median_ns / base.median_ns),
        ]);
    }

    /// Renders the section.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## {}\n", self.title);
        if !self.intro.is_empty() {
            let _ = writeln!(s, "{}\n", self.intro);
        }
        let _ = writeln!(s, "Reproduce: `{}`\n", self.command);
        let _ = writeln!(s, "| {} |", self.header.join(" | "));
        let _ = writeln!(
            s,
            "|{}|",
            self.header
                .iter()
                .map(|_| "---")
                .collect::<Vec<_>>()
                .join("|")
        );
        for r in &self.rows {
            let _ = writeln!(s, "| {} |", r.join(" | "));
        }
        for n in &self.notes {
            let _ = writeln!(s, "\n{n}");
        }
        s.push('\n');
        s
    }
}

/// A duration in ns, µs or ms.
pub fn ns(v: f64) -> String {
    if !v.is_finite() {
        "n/a".to_owned()
    } else if v < 1_000.0 {
        format!("{v:.0} ns")
    } else if v < 1_000_000.0 {
        format!("{:.2} µs", v / 1_000.0)
    } else {
        format!("{:.2} ms", v / 1_000_000.0)
    }
}

/// A rate from ns per operation.
pub fn per_sec(ns_per_op: f64) -> String {
    let r = 1e9 / ns_per_op;
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k/s", r / 1e3)
    } else {
        format!("{r:.0} /s")
    }
}
