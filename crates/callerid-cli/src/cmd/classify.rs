//! `callerid classify`: run the pure workload classifier over `/proc/<pid>/cgroup` text
//! or a cgroup path, from a file or stdin.

use anyhow::{Context, bail};
use callerid::workload::{Workload, classify};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Inputs larger than this are refused: a real `/proc/<pid>/cgroup` is a few KiB.
const MAX_INPUT: usize = 1 << 20;

/// Arguments of `callerid classify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print the `workload` object as JSON (every key present, nulls included).
    #[arg(long)]
    json: bool,
    /// `/proc/<pid>/cgroup` text, a cgroup path, or paths one per line; `-` or nothing
    /// reads stdin.
    #[arg(value_name = "FILE|-")]
    file: Option<PathBuf>,
}

fn read_limited(mut r: impl Read, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    // One byte over the limit is enough to know the input is too large.
    r.by_ref()
        .take(MAX_INPUT as u64 + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {what}"))?;
    if buf.len() > MAX_INPUT {
        bail!("{what} is larger than {MAX_INPUT} bytes: not cgroup text");
    }
    Ok(buf)
}

fn read_input(file: Option<&PathBuf>) -> anyhow::Result<String> {
    let (bytes, what) = match file {
        Some(p) if p.as_os_str() != "-" => {
            let what = p.display().to_string();
            let f = std::fs::File::open(p).with_context(|| format!("opening {what}"))?;
            (read_limited(f, &what)?, what)
        }
        _ => (
            read_limited(std::io::stdin().lock(), "stdin")?,
            "stdin".to_owned(),
        ),
    };
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        bail!("{what} contains a NUL byte at offset {at}: binary data, not cgroup text");
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{what} is not UTF-8 (invalid byte at offset {}): binary data, not cgroup text",
            e.utf8_error().valid_up_to()
        )
    })
}

fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

fn print_human(w: &Workload<'_>, out: &mut impl Write) -> std::io::Result<()> {
    if w.chain.is_empty() {
        writeln!(out, "no workload")?;
    }
    let rt = w
        .chain
        .iter()
        .map(|e| e.runtime.as_str().len())
        .max()
        .unwrap_or(0);
    for e in &w.chain {
        write!(
            out,
            "{:<10} {:<rt$}  {}",
            e.kind.as_str(),
            e.runtime.as_str(),
            e.id
        )?;
        match &w.pod {
            // The pod's QoS belongs on the pod's own line.
            Some(p) if e.kind == callerid::workload::Kind::Pod && p.uid == e.id => {
                writeln!(out, "  (qos {})", p.qos.as_str())?
            }
            _ => writeln!(out)?,
        }
    }
    if let Some(p) = &w.pod
        && !w
            .chain
            .iter()
            .any(|e| e.kind == callerid::workload::Kind::Pod && e.id == p.uid)
    {
        writeln!(out, "{:<10} {}  (qos {})", "pod", p.uid, p.qos.as_str())?;
    }
    writeln!(out, "{:<10} {}", "unit", or_dash(w.unit.as_deref()))?;
    writeln!(
        out,
        "{:<10} {}",
        "user_unit",
        or_dash(w.user_unit.as_deref())
    )?;
    writeln!(out, "{:<10} {}", "slice", or_dash(w.slice.as_deref()))
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = read_input(args.file.as_ref())?;
    let w = classify(&text);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &w).context("writing JSON")?;
        writeln!(out)?;
    } else {
        print_human(&w, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
