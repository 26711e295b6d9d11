//! 10 k idle connections held open through a gate: all stay served, new clients are
//! still accepted, and what each one costs the daemon in memory and descriptors.

use crate::support::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Descriptors the daemon may hold beyond 2 per forwarded connection (client and
/// backend side) plus its baseline.
const FD_SLACK: usize = 16;

/// Ceiling for the daemon's RSS per held connection that never sent a byte (task,
/// relay state, two registered sockets): a generous bound, the figure is printed.
const IDLE_BOUND_KIB: f64 = 16.0;

fn roundtrip(s: &mut UnixStream, b: u8) -> bool {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = [0u8; 1];
    s.write_all(&[b]).is_ok() && s.read_exact(&mut got).is_ok() && got[0] == b
}

#[test]
fn ten_thousand_idle_connections() {
    let _one = exclusive();
    let name = "idle::ten_thousand_idle_connections";
    if callerid_testkit::need_root(name) {
        return;
    }
    let want = env_usize("CALLERID_SOAK_IDLE", 10_000);
    // The daemon holds two descriptors per connection (client and backend side), and
    // so do we (client sockets and the backend's); the daemon inherits our limit.
    let limit = raise_nofile((2 * want + 4096) as u64) as usize;
    let n = want.min(limit.saturating_sub(64) / 2);
    if n < want {
        figure!(
            "idle: RLIMIT_NOFILE is capped at {limit} here (no CAP_SYS_RESOURCE to raise the \
             hard limit): holding {n} connections instead of {want}"
        );
    }
    let gate = GateProcess::start(
        r#"
version = 1
default = "allow"

[[listener]]
name = "idle"
path = "{dir}/gate.sock"
backend = "{dir}/backend.sock"
mode = "0666"
decision_timeout = "60s"
"#,
    );
    let backends = Backends::new();
    backends.echo(&gate.path("backend.sock"));
    let sock = gate.path("gate.sock");

    // Warm up (runtime, caches, allocator arenas), then the idle baseline.
    for i in 0..200u32 {
        let mut s = connect(&sock).unwrap();
        assert!(roundtrip(&mut s, i as u8), "warm-up round trip");
    }
    gate.wait_idle("idle");
    let base = gate.usage();

    let t0 = Instant::now();
    let mut held: Vec<UnixStream> = (0..n).map(|_| connect(&sock).expect("connect")).collect();
    // Every one forwarded (its backend connection made) before measuring.
    let series = r#"callerid_connections_active{listener="idle"}"#;
    let deadline = Instant::now() + PATIENCE;
    while sample(&gate.scrape(), series).unwrap_or(0.0) < n as f64 {
        assert!(
            Instant::now() < deadline,
            "not all {n} connections forwarded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let opened = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let open = gate.usage();

    // All alive: a byte through each comes back.
    let dead = held
        .iter_mut()
        .enumerate()
        .map(|(i, s)| roundtrip(s, i as u8))
        .filter(|ok| !ok)
        .count();
    let after_traffic = gate.usage();
    // New clients are still accepted and served while they are all held.
    let mut fresh = connect(&sock).expect("connect a new client");
    let fresh_ok = roundtrip(&mut fresh, b'x');
    drop(fresh);

    let per_idle = (open.rss_kib as f64 - base.rss_kib as f64) / n as f64;
    let per_used = (after_traffic.rss_kib as f64 - base.rss_kib as f64) / n as f64;
    figure!(
        "idle: {n} connections opened and forwarded in {:.1} s; daemon idle {:?}",
        opened.as_secs_f64(),
        base
    );
    figure!(
        "idle: with {n} open: fds {} RSS {} KiB => {per_idle:.2} KiB RSS per idle connection \
         (never sent a byte); after one round trip on each: RSS {} KiB => {per_used:.2} KiB \
         per connection",
        open.fds,
        open.rss_kib,
        after_traffic.rss_kib
    );

    drop(held);
    gate.wait_idle("idle");
    let closed = gate.usage();
    figure!("idle: after closing all: {closed:?}");

    assert_eq!(dead, 0, "connections not served while {n} are held");
    assert!(fresh_ok, "a new client is not served while {n} are held");
    assert!(
        open.fds + FD_SLACK >= base.fds + 2 * n && open.fds <= base.fds + 2 * n + FD_SLACK,
        "daemon holds {} fds for {n} connections (baseline {})",
        open.fds,
        base.fds
    );
    assert!(
        closed.fds <= base.fds + FD_SLACK,
        "daemon fds not returned: {} after, {} before",
        closed.fds,
        base.fds
    );
    assert!(
        per_idle <= IDLE_BOUND_KIB,
        "{per_idle:.2} KiB RSS per idle connection (bound {IDLE_BOUND_KIB})"
    );
    gate.stop();
    drop(backends);
}
