//! Heap allocations per connection on the daemon's paths, next to what
//! `Identifier::identify` alone allocates for the same parts (the `Identity` itself),
//! counted with a global counting allocator over the whole process (daemon threads
//! included) in the same run.
//!
//! Run: `cargo bench -p callerid-daemon --bench allocs`.
#![allow(clippy::unwrap_used)]

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const N: usize = 2000;

fn per_conn(f: impl Fn()) -> f64 {
    for _ in 0..200 {
        f(); // warm caches, metric labels, runtime slabs
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let region = Region::new(GLOBAL);
    for _ in 0..N {
        f();
    }
    // Let the daemon finish the last connections' work before reading the count.
    std::thread::sleep(std::time::Duration::from_millis(200));
    region.change().allocations as f64 / N as f64
}

fn identifier(parts: callerid::Parts) -> callerid::Identifier {
    let mut b = callerid::Identifier::builder().parts(parts);
    if let Ok(c) = callerid_bpf::ConnectCapture::load() {
        b = b.connect_cgroup_source(Arc::new(c));
    }
    b.build().unwrap()
}

/// connect + accept + identify on std sockets: the allocations of the Identity.
fn identify_alone(dir: &Path, name: &str, parts: callerid::Parts) -> f64 {
    let ident = identifier(parts);
    let path = dir.join(name);
    let l = UnixListener::bind(&path).unwrap();
    per_conn(|| {
        let _c = UnixStream::connect(&path).unwrap();
        let (s, _) = l.accept().unwrap();
        std::hint::black_box(ident.identify(&s).unwrap());
    })
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let backend = d.join("backend.sock");
    let bl = UnixListener::bind(&backend).unwrap();
    std::thread::spawn(move || {
        for s in bl.incoming() {
            let mut s = s.unwrap();
            let mut b = [0u8; 1];
            if s.read_exact(&mut b).is_ok() {
                let _ = s.write_all(&b);
            }
        }
    });
    let gate_cfg = |name: &str, default: &str| {
        let p = d.join(format!("{name}.toml"));
        std::fs::write(
            &p,
            format!(
                "version = 1\ndefault = \"{default}\"\n\n[[listener]]\nname = \"{name}\"\npath = \"{}\"\nbackend = \"{}\"\n",
                d.join(format!("{name}.sock")).display(),
                backend.display()
            ),
        )
        .unwrap();
        p
    };
    rt.block_on(async {
        let mut cfgs = vec![
            callerid_daemon::DaemonConfig::gate(gate_cfg("deny", "deny")).unwrap(),
            callerid_daemon::DaemonConfig::gate(gate_cfg("allow", "allow")).unwrap(),
            callerid_daemon::DaemonConfig::serve(
                Some(d.join("serve.sock")),
                callerid_daemon::PolicySource::Embedded,
            ),
        ];
        // The floor any tokio server pays: accept (registration with the reactor), close.
        let l = tokio::net::UnixListener::bind(d.join("floor.sock")).unwrap();
        tokio::spawn(async move {
            loop {
                let (s, _) = l.accept().await.unwrap();
                drop(s);
            }
        });
        for mut cfg in cfgs.drain(..) {
            cfg.handle_signals = false;
            cfg.notify = false;
            cfg.socket_activation = false;
            let daemon = callerid_daemon::Daemon::start(cfg).unwrap();
            tokio::spawn(daemon.run());
        }
    });
    let minimal = identify_alone(d, "alone-min.sock", callerid::Parts::MINIMAL);
    let all = identify_alone(d, "alone-all.sock", callerid::Parts::ALL);
    let floor = per_conn(|| {
        let mut s = UnixStream::connect(d.join("floor.sock")).unwrap();
        let mut b = Vec::new();
        let _ = s.read_to_end(&mut b);
    });
    let deny = per_conn(|| {
        let mut s = UnixStream::connect(d.join("deny.sock")).unwrap();
        let mut b = Vec::new();
        let _ = s.read_to_end(&mut b);
    });
    let allow = per_conn(|| {
        let mut s = UnixStream::connect(d.join("allow.sock")).unwrap();
        s.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
    });
    let serve = per_conn(|| {
        let mut s = UnixStream::connect(d.join("serve.sock")).unwrap();
        let mut b = Vec::with_capacity(4096);
        let _ = s.read_to_end(&mut b);
    });
    println!("| path | allocations per connection | Identity alone (same parts) |");
    println!("|---|---|---|");
    println!("| tokio accept + close (the floor of any tokio server) | {floor:.1} | - |");
    println!("| gate, denied (no audit) | {deny:.1} | {minimal:.1} |");
    println!(
        "| gate, allowed, 1-byte echo through the backend (no audit) | {allow:.1} | {minimal:.1} |"
    );
    println!("| serve (full record, no audit) | {serve:.1} | {all:.1} |");
}
