//! New connections per second through `serve` and `gate`, each next to a baseline
//! built the same way (tokio, same runtime, same number of accept workers) and
//! measured in the same run:
//!
//! - `serve_*`: connect, read the one-line answer to EOF. Baseline: a server that
//!   accepts, writes a fixed line of the same size and closes.
//! - `gate_*`: connect, send one byte, read it back from an echo backend, close.
//!   Baseline: accept, connect to the same backend, `copy_bidirectional`, close.
//!
//! Run: `cargo bench -p callerid-daemon --bench connections` (as root for the BPF
//! connect-time capture, as the daemon runs in production). On a shared, noisy machine
//! add `-- --interleaved`: rounds of 300 connections alternate between each path and
//! its baseline, and the table gives medians over rounds and the median of the
//! per-round ratios, so a burst of someone else's load hits both sides alike.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::LazyLock;

fn main() {
    if std::env::args().any(|a| a == "--interleaved") {
        interleaved();
    } else {
        divan::main();
    }
}

fn interleaved() {
    type Case = (&'static str, fn());
    let pairs: [(Case, Case); 4] = [
        (
            ("serve baseline: accept+write+close", || {
                std::hint::black_box(ask(&ENV.serve_base));
            }),
            ("serve: identify+decide+answer", || {
                std::hint::black_box(ask(&ENV.serve));
            }),
        ),
        (
            ("serve baseline: accept+write+close", || {
                std::hint::black_box(ask(&ENV.serve_base));
            }),
            ("serve + audit file", || {
                std::hint::black_box(ask(&ENV.serve_audit));
            }),
        ),
        (
            ("gate baseline: accept+connect+copy_bidirectional", || {
                std::hint::black_box(echo(&ENV.gate_base));
            }),
            ("gate: identify+decide+forward", || {
                std::hint::black_box(echo(&ENV.gate));
            }),
        ),
        (
            ("gate baseline: accept+connect+copy_bidirectional", || {
                std::hint::black_box(echo(&ENV.gate_base));
            }),
            ("gate, always splice", || {
                std::hint::black_box(echo(&ENV.gate_splice));
            }),
        ),
    ];
    const ROUNDS: usize = 30;
    const PER_ROUND: u32 = 300;
    let time = |f: fn()| {
        let t = std::time::Instant::now();
        for _ in 0..PER_ROUND {
            f();
        }
        t.elapsed().as_secs_f64() * 1e6 / f64::from(PER_ROUND)
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "| path | µs/conn (median of {ROUNDS} rounds) | conn/s | baseline µs/conn | ratio (median per round) |"
    );
    println!("|---|---|---|---|---|");
    for ((bname, base), (sname, subject)) in pairs {
        let (mut b, mut s, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let tb = time(base);
            let ts = time(subject);
            b.push(tb);
            s.push(ts);
            r.push(ts / tb);
        }
        let (mb, ms) = (median(b), median(s));
        println!(
            "| {sname} | {ms:.1} | {:.0} | {bname}: {mb:.1} ({:.0}/s) | {:.2}× |",
            1e6 / ms,
            1e6 / mb,
            median(r)
        );
    }
}

struct Env {
    serve: PathBuf,
    serve_audit: PathBuf,
    serve_base: PathBuf,
    gate: PathBuf,
    gate_splice: PathBuf,
    gate_base: PathBuf,
}

const WORKERS: usize = 2;

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap().keep();
    let rt = common::leaked_runtime();
    let backend = dir.join("backend.sock");
    let policy = dir.join("gate.toml");
    std::fs::write(
        &policy,
        format!(
            "version = 1\ndefault = \"deny\"\n\n[[rule]]\nname = \"root\"\naction = \"allow\"\n[rule.match]\nuid = [0, {}]\n\n\
             [[listener]]\nname = \"bench\"\npath = \"{}\"\nbackend = \"{}\"\n",
            rustix::process::geteuid().as_raw(),
            dir.join("gate.sock").display(),
            backend.display()
        ),
    )
    .unwrap();
    let sample_line = rt.block_on(async {
        // Echo backend shared by gate and its baseline.
        let l = tokio::net::UnixListener::bind(&backend).unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let start = |mut cfg: callerid_daemon::DaemonConfig, audit: Option<PathBuf>| {
            cfg.handle_signals = false;
            cfg.notify = false;
            cfg.socket_activation = false;
            cfg.accept_workers = WORKERS;
            cfg.audit = audit.map(callerid_daemon::AuditSink::File);
            let d = callerid_daemon::Daemon::start(cfg).unwrap();
            tokio::spawn(d.run());
        };
        start(
            callerid_daemon::DaemonConfig::serve(
                Some(dir.join("serve.sock")),
                callerid_daemon::PolicySource::Embedded,
            ),
            None,
        );
        start(
            callerid_daemon::DaemonConfig::serve(
                Some(dir.join("serve-audit.sock")),
                callerid_daemon::PolicySource::Embedded,
            ),
            Some(dir.join("audit.log")),
        );
        start(
            callerid_daemon::DaemonConfig::gate(policy.clone()).unwrap(),
            None,
        );
        let spliced = dir.join("gate-splice.toml");
        std::fs::write(
            &spliced,
            std::fs::read_to_string(&policy)
                .unwrap()
                .replace("name = \"bench\"", "name = \"bench-splice\"")
                .replace("gate.sock", "gate-splice.sock"),
        )
        .unwrap();
        let mut cfg = callerid_daemon::DaemonConfig::gate(spliced).unwrap();
        // Always splice, to show what pipes cost a short connection (Auto never
        // splices one).
        cfg.relay = callerid_daemon::RelayMode::Splice;
        start(cfg, None);
        let mut line = Vec::new();
        let mut s = std::os::unix::net::UnixStream::connect(dir.join("serve.sock")).unwrap();
        s.read_to_end(&mut line).unwrap();
        line
    });
    let line: &'static [u8] = Box::leak(sample_line.into_boxed_slice());
    rt.block_on(async {
        // Baseline serve: accept, write a line of the same size, close.
        let l = std::sync::Arc::new(
            tokio::net::UnixListener::bind(dir.join("serve-base.sock")).unwrap(),
        );
        for _ in 0..WORKERS {
            let l = l.clone();
            tokio::spawn(async move {
                loop {
                    let (s, _) = l.accept().await.unwrap();
                    let _ = s.try_write(line);
                }
            });
        }
        // Baseline gate: accept, connect the backend, relay both ways, close.
        let l = std::sync::Arc::new(
            tokio::net::UnixListener::bind(dir.join("gate-base.sock")).unwrap(),
        );
        common::spawn_tokio_relay(l, backend.clone(), WORKERS);
    });
    Env {
        serve: dir.join("serve.sock"),
        serve_audit: dir.join("serve-audit.sock"),
        serve_base: dir.join("serve-base.sock"),
        gate: dir.join("gate.sock"),
        gate_splice: dir.join("gate-splice.sock"),
        gate_base: dir.join("gate-base.sock"),
    }
});

fn ask(path: &PathBuf) -> usize {
    let mut s = UnixStream::connect(path).unwrap();
    let mut buf = [0u8; 8192];
    let mut n = 0;
    loop {
        match s.read(&mut buf[n..]).unwrap() {
            0 => return n,
            k => n += k,
        }
    }
}

fn echo(path: &PathBuf) -> u8 {
    let mut s = UnixStream::connect(path).unwrap();
    s.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    b[0]
}

#[divan::bench(sample_count = 2000)]
fn serve_baseline_accept_write_close() -> usize {
    ask(&ENV.serve_base)
}

#[divan::bench(sample_count = 2000)]
fn serve_identify_decide_answer() -> usize {
    ask(&ENV.serve)
}

#[divan::bench(sample_count = 2000)]
fn serve_with_audit_log() -> usize {
    ask(&ENV.serve_audit)
}

#[divan::bench(sample_count = 2000)]
fn gate_baseline_accept_forward() -> u8 {
    echo(&ENV.gate_base)
}

#[divan::bench(sample_count = 2000)]
fn gate_identify_decide_forward() -> u8 {
    echo(&ENV.gate)
}

#[divan::bench(sample_count = 2000)]
fn gate_identify_decide_forward_spliced() -> u8 {
    echo(&ENV.gate_splice)
}
