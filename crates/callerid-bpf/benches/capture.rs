//! Cost of connect-time capture per connection, against the same connection handling
//! without it, in one run (`cargo bench -p callerid-bpf --bench capture`).
//!
//! * `connection/plain`: connect + accept + close.
//! * `connection/with_capture`: the same plus `ConnectCapture::lookup` (getsockname, which
//!   runs the BPF program, and the SK_STORAGE lookup).
//! * `identify/*`: `Identifier::identify` with `Parts::KERNEL_ONLY` (no `/proc` reads, so
//!   the capture's share is as large as it gets), without and with this crate as its
//!   connect-time cgroup source.
//! * `per_socket/*`: the lookup alone on one accepted socket, and a bare `getsockname()`
//!   on the same socket for comparison.
//!
//! Needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN); without it the capture benches are
//! skipped with a message and only the baselines run.

use callerid_bpf::ConnectCapture;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::OnceLock;

fn main() {
    divan::main();
}

fn capture() -> Option<&'static ConnectCapture> {
    static CAPTURE: OnceLock<Option<ConnectCapture>> = OnceLock::new();
    CAPTURE
        .get_or_init(|| match ConnectCapture::load() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("capture benches skipped: {e}");
                None
            }
        })
        .as_ref()
}

struct Server {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    listener: UnixListener,
}

fn server() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    Server {
        _dir: dir,
        path,
        listener,
    }
}

#[divan::bench_group]
mod connection {
    use super::*;

    #[divan::bench(sample_count = 1000, sample_size = 10)]
    fn plain(bencher: divan::Bencher<'_, '_>) {
        let s = server();
        bencher.bench_local(|| {
            let client = UnixStream::connect(&s.path).expect("connect");
            let (conn, _) = s.listener.accept().expect("accept");
            drop((client, conn));
        });
    }

    #[divan::bench(sample_count = 1000, sample_size = 10)]
    fn with_capture(bencher: divan::Bencher<'_, '_>) {
        let Some(capture) = capture() else { return };
        let s = server();
        bencher.bench_local(|| {
            let client = UnixStream::connect(&s.path).expect("connect");
            let (conn, _) = s.listener.accept().expect("accept");
            let id = capture.lookup(conn.as_fd()).expect("lookup");
            assert!(id.is_some());
            drop((client, conn));
        });
    }
}

#[divan::bench_group]
mod per_socket {
    use super::*;

    #[divan::bench(sample_count = 1000, sample_size = 10)]
    fn getsockname_only(bencher: divan::Bencher<'_, '_>) {
        let s = server();
        let _client = UnixStream::connect(&s.path).expect("connect");
        let (conn, _) = s.listener.accept().expect("accept");
        bencher.bench_local(|| conn.local_addr().expect("getsockname"));
    }

    #[divan::bench(sample_count = 1000, sample_size = 10)]
    fn capture_lookup(bencher: divan::Bencher<'_, '_>) {
        let Some(capture) = capture() else { return };
        let s = server();
        let _client = UnixStream::connect(&s.path).expect("connect");
        let (conn, _) = s.listener.accept().expect("accept");
        bencher.bench_local(|| capture.lookup(conn.as_fd()).expect("lookup"));
    }
}

#[divan::bench_group]
mod identify {
    use super::*;
    use callerid::{Identifier, Parts};
    use std::sync::Arc;

    fn run(bencher: divan::Bencher<'_, '_>, ident: &Identifier) {
        let s = server();
        bencher.bench_local(|| {
            let client = UnixStream::connect(&s.path).expect("connect");
            let (conn, _) = s.listener.accept().expect("accept");
            let who = ident.identify(&conn).expect("identify");
            drop((client, conn));
            who
        });
    }

    #[divan::bench(sample_count = 1000, sample_size = 10)]
    fn plain(bencher: divan::Bencher<'_, '_>) {
        let ident = Identifier::builder()
            .parts(Parts::KERNEL_ONLY)
            .build()
            .expect("identifier");
        run(bencher, &ident);
    }

    #[divan::bench(sample_count = 1000, sample_size = 10)]
    fn with_capture(bencher: divan::Bencher<'_, '_>) {
        let Some(capture) = capture() else { return };
        let source = Arc::new(capture);
        let ident = Identifier::builder()
            .parts(Parts::KERNEL_ONLY)
            .connect_cgroup_source(source)
            .build()
            .expect("identifier");
        run(bencher, &ident);
    }
}
