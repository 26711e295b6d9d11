//! Bulk relay throughput through a gate listener: `read`/`write` copy (the default)
//! vs `splice(2)` through pipes, next to the same transfer straight to the backend and
//! through a plain tokio `copy_bidirectional` relay, all measured in the same run.
//!
//! Each iteration sends 16 MiB, half-closes, and waits for the backend's 8-byte count.
//!
//! Run: `cargo bench -p callerid-daemon --bench relay`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::LazyLock;

fn main() {
    divan::main();
}

const SIZE: usize = 16 << 20;

struct Env {
    direct: PathBuf,
    tokio_relay: PathBuf,
    gate_copy: PathBuf,
    gate_splice: PathBuf,
    gate_auto: PathBuf,
}

static PAYLOAD: LazyLock<Vec<u8>> = LazyLock::new(|| (0..SIZE).map(|i| i as u8).collect());

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap().keep();
    let rt = common::leaked_runtime();
    let backend = dir.join("sink.sock");
    // The sink: reads to EOF, answers with the byte count.
    let l = std::os::unix::net::UnixListener::bind(&backend).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                let mut n = 0u64;
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k as u64,
                    }
                }
                let _ = s.write_all(&n.to_be_bytes());
            });
        }
    });
    rt.block_on(async {
        for (name, mode) in
            [
            ("gate-copy", callerid_daemon::RelayMode::Copy),
            ("gate-splice", callerid_daemon::RelayMode::Splice),
            ("gate-auto", callerid_daemon::RelayMode::Auto),
        ]
        {
            let cfg_path = dir.join(format!("{name}.toml"));
            std::fs::write(
                &cfg_path,
                format!(
                    "version = 1\ndefault = \"allow\"\n\n[[listener]]\nname = \"{name}\"\npath = \"{}\"\nbackend = \"{}\"\n",
                    dir.join(format!("{name}.sock")).display(),
                    backend.display()
                ),
            )
            .unwrap();
            let mut cfg = callerid_daemon::DaemonConfig::gate(cfg_path).unwrap();
            cfg.handle_signals = false;
            cfg.notify = false;
            cfg.socket_activation = false;
            cfg.relay = mode;
            let d = callerid_daemon::Daemon::start(cfg).unwrap();
            tokio::spawn(d.run());
        }
        let l = tokio::net::UnixListener::bind(dir.join("tokio-relay.sock")).unwrap();
        common::spawn_tokio_relay(std::sync::Arc::new(l), backend.clone(), 1);
    });
    Env {
        direct: backend,
        tokio_relay: dir.join("tokio-relay.sock"),
        gate_copy: dir.join("gate-copy.sock"),
        gate_splice: dir.join("gate-splice.sock"),
        gate_auto: dir.join("gate-auto.sock"),
    }
});

fn send(path: &PathBuf) -> u64 {
    let mut s = UnixStream::connect(path).unwrap();
    s.write_all(&PAYLOAD).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut n = [0u8; 8];
    s.read_exact(&mut n).unwrap();
    let n = u64::from_be_bytes(n);
    assert_eq!(n, SIZE as u64);
    n
}

#[divan::bench(counter = divan::counter::BytesCount::new(SIZE), sample_count = 60)]
fn direct_to_backend() -> u64 {
    send(&ENV.direct)
}

#[divan::bench(counter = divan::counter::BytesCount::new(SIZE), sample_count = 60)]
fn tokio_copy_bidirectional() -> u64 {
    send(&ENV.tokio_relay)
}

#[divan::bench(counter = divan::counter::BytesCount::new(SIZE), sample_count = 60)]
fn gate_copy() -> u64 {
    send(&ENV.gate_copy)
}

#[divan::bench(counter = divan::counter::BytesCount::new(SIZE), sample_count = 60)]
fn gate_splice() -> u64 {
    send(&ENV.gate_splice)
}

#[divan::bench(counter = divan::counter::BytesCount::new(SIZE), sample_count = 60)]
fn gate_auto() -> u64 {
    send(&ENV.gate_auto)
}
