//! Cost of `identify()` per connection (warm caches) against bare connect + accept +
//! `SO_PEERCRED`, measured in the same run.
//!
//! `cargo bench -p callerid --bench identify`

use callerid::{Identifier, Parts};
use divan::Bencher;
use std::os::unix::net::{UnixListener, UnixStream};

fn main() {
    divan::main();
}

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    listener: UnixListener,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    Setup {
        _dir: dir,
        path,
        listener,
    }
}

/// Baseline: socket + connect + accept + `SO_PEERCRED` + close both ends.
#[divan::bench(sample_count = 1000)]
fn connect_accept_peercred(b: Bencher) {
    let s = setup();
    b.bench_local(|| {
        let c = UnixStream::connect(&s.path).expect("connect");
        let (a, _) = s.listener.accept().expect("accept");
        let cred = rustix::net::sockopt::socket_peercred(&a).expect("peercred");
        divan::black_box((cred, c));
    });
}

fn with_parts(parts: Parts) -> Identifier {
    Identifier::builder()
        .parts(parts)
        .build()
        .expect("identifier")
}

fn connect_accept_identify(b: Bencher, parts: Parts) {
    let s = setup();
    let ident = with_parts(parts);
    // Warm the caches (cgroup path and workload, user namespace maps).
    let (x, _y) = UnixStream::pair().expect("pair");
    ident.identify(&x).expect("identify");
    b.bench_local(|| {
        let c = UnixStream::connect(&s.path).expect("connect");
        let (a, _) = s.listener.accept().expect("accept");
        let who = ident.identify(&a).expect("identify");
        divan::black_box((who, c));
    });
}

/// connect + accept + `identify()` collecting every part.
#[divan::bench(sample_count = 1000)]
fn connect_accept_identify_all(b: Bencher) {
    connect_accept_identify(b, Parts::ALL);
}

/// connect + accept + `identify()` with kernel-only parts (no `/proc` read when warm).
#[divan::bench(sample_count = 1000)]
fn connect_accept_identify_kernel_only(b: Bencher) {
    connect_accept_identify(b, Parts::KERNEL_ONLY);
}

/// `identify()` alone on an established `socketpair` (the peer is this process).
fn identify_only(b: Bencher, ident: &Identifier) {
    let (x, _y) = UnixStream::pair().expect("pair");
    b.bench_local(|| divan::black_box(ident.identify(&x).expect("identify")));
}

/// `identify()` alone on an established connection, every part.
#[divan::bench(sample_count = 1000)]
fn identify_only_all(b: Bencher) {
    let ident = Identifier::new().expect("identifier");
    identify_only(b, &ident);
}

/// `identify()` alone, kernel-only parts.
#[divan::bench(sample_count = 1000)]
fn identify_only_kernel_only(b: Bencher) {
    identify_only(b, &with_parts(Parts::KERNEL_ONLY));
}

/// `identify()` alone: every part but `comm`/`exe` (namespaces through pidfd ioctls).
#[divan::bench(sample_count = 1000)]
fn identify_only_namespaces_no_proc(b: Bencher) {
    let parts = Parts {
        comm: false,
        exe: false,
        ..Parts::ALL
    };
    identify_only(b, &with_parts(parts));
}

/// `identify()` alone: kernel parts plus `comm` and `exe` (verified `/proc` reads).
#[divan::bench(sample_count = 1000)]
fn identify_only_comm_exe(b: Bencher) {
    let parts = Parts {
        namespaces: false,
        user_namespace: false,
        ..Parts::ALL
    };
    identify_only(b, &with_parts(parts));
}

/// Same as `identify_only_namespaces_no_proc`, namespaces through verified readlinks of
/// `/proc/<pid>/ns/*` instead of the pidfd ioctls.
#[divan::bench(sample_count = 1000)]
fn identify_only_namespaces_readlink(b: Bencher) {
    let parts = Parts {
        comm: false,
        exe: false,
        ..Parts::ALL
    };
    let ident = Identifier::builder()
        .parts(parts)
        .disable(callerid::Feature::PidfdNamespaceIoctls)
        .build()
        .expect("identifier");
    identify_only(b, &ident);
}
