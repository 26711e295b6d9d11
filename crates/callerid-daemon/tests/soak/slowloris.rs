//! Slowloris: a "container" (a process in a docker-shaped test cgroup) opens connection
//! after connection that never sends, or sends one byte per second, and some against a
//! listener whose backend never accepts. The listeners' `idle_timeout`,
//! `max_per_identity` and `decision_timeout` cut them off while well-behaved clients
//! (another identity) keep being served.

use crate::support::*;
use callerid_testkit::TestCgroup;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MAX_PER_IDENTITY: u64 = 16;

/// How long one attacker connection may stay open after the attack stops before we
/// call it "never cut": a liveness deadline far above the timeouts involved (4 s idle, 1 s decision).
const CUT_DEADLINE: Duration = Duration::from_secs(60);

/// Between an attacker's connections.
const PAUSE: Duration = Duration::from_millis(20);

#[derive(Default)]
struct AttackStats {
    connects: AtomicU64,
    closed_by_gate: AtomicU64,
    never_cut: AtomicU64,
    trickle_admitted_now: AtomicU64,
    trickle_admitted_max: AtomicU64,
    trickle_bytes_echoed: AtomicU64,
}

/// Waits for the gate to close `s` (EOF or reset); `false` if it did not within
/// [`CUT_DEADLINE`].
fn wait_cut(s: &mut UnixStream) -> bool {
    s.set_read_timeout(Some(CUT_DEADLINE)).expect("timeout");
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

fn connect_counted(path: &Path, st: &AttackStats) -> UnixStream {
    let s = connect(path).expect("attacker connect");
    st.connects.fetch_add(1, Ordering::Relaxed);
    s
}

/// Connects and never sends; waits to be cut off; again, until `until`.
fn silent(path: &Path, until: Instant, st: &AttackStats) {
    while Instant::now() < until {
        let mut s = connect_counted(path, st);
        if wait_cut(&mut s) {
            st.closed_by_gate.fetch_add(1, Ordering::Relaxed);
        } else {
            st.never_cut.fetch_add(1, Ordering::Relaxed);
        }
        // Slow, not a flood: what is measured is holding, not connection rate.
        std::thread::sleep(PAUSE);
    }
}

/// Connects and sends one byte per second (each one resets the idle timer); when cut
/// off, connects again. At `until` it falls silent and waits to be cut.
fn trickle(path: &Path, until: Instant, st: &AttackStats) {
    while Instant::now() < until {
        let mut s = connect_counted(path, st);
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut admitted = false;
        let cut = loop {
            if Instant::now() >= until {
                break false;
            }
            let mut b = [0u8; 1];
            let echoed = s.write_all(b"x").is_ok() && matches!(s.read(&mut b), Ok(1));
            if !echoed {
                break true;
            }
            st.trickle_bytes_echoed.fetch_add(1, Ordering::Relaxed);
            if !admitted {
                admitted = true;
                let now = st.trickle_admitted_now.fetch_add(1, Ordering::Relaxed) + 1;
                st.trickle_admitted_max.fetch_max(now, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_secs(1));
        };
        let cut = cut || wait_cut(&mut s);
        if admitted {
            st.trickle_admitted_now.fetch_sub(1, Ordering::Relaxed);
        }
        if cut {
            st.closed_by_gate.fetch_add(1, Ordering::Relaxed);
        } else {
            st.never_cut.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(PAUSE);
    }
}

/// The `attacker` role: enters `$CALLERID_SOAK_CGROUP` (a docker-shaped cgroup: one
/// container identity), then runs `$CALLERID_SOAK_SILENT` silent and
/// `$CALLERID_SOAK_TRICKLE` trickling connection loops against `$CALLERID_SOAK_SOCK`,
/// and `$CALLERID_SOAK_STALL` silent loops against `$CALLERID_SOAK_STALL_SOCK`, for
/// `$CALLERID_SOAK_SECS` seconds; reports what it saw.
pub(crate) fn attacker_role() -> i32 {
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} not set"));
    let num = |n: &str| var(n).parse::<usize>().expect("number");
    let sock = PathBuf::from(var("CALLERID_SOAK_SOCK"));
    let stall_sock = PathBuf::from(var("CALLERID_SOAK_STALL_SOCK"));
    std::fs::write(
        Path::new(&var("CALLERID_SOAK_CGROUP")).join("cgroup.procs"),
        std::process::id().to_string(),
    )
    .expect("enter cgroup");
    let until = Instant::now() + Duration::from_secs(num("CALLERID_SOAK_SECS") as u64);
    let st = AttackStats::default();
    let stall = AttackStats::default();
    std::thread::scope(|s| {
        for _ in 0..num("CALLERID_SOAK_SILENT") {
            s.spawn(|| silent(&sock, until, &st));
        }
        for _ in 0..num("CALLERID_SOAK_TRICKLE") {
            s.spawn(|| trickle(&sock, until, &st));
        }
        for _ in 0..num("CALLERID_SOAK_STALL") {
            s.spawn(|| silent(&stall_sock, until, &stall));
        }
    });
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "result {} {} {} {} {} {} {} {}",
        g(&st.connects),
        g(&st.closed_by_gate),
        g(&st.never_cut),
        g(&st.trickle_admitted_max),
        g(&st.trickle_bytes_echoed),
        g(&stall.connects),
        g(&stall.closed_by_gate),
        g(&stall.never_cut),
    );
    0
}

/// A backend that never accepts, its backlog full: connecting to it fails with
/// `EAGAIN` until the gate gives up at its decision timeout.
fn stalled_backend(path: &Path) -> Vec<rustix::fd::OwnedFd> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let l = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
    let addr = SocketAddrUnix::new(path).unwrap();
    rustix::net::bind(&l, &addr).unwrap();
    rustix::net::listen(&l, 0).unwrap();
    let mut fds = vec![l];
    loop {
        let s = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        if rustix::net::connect(&s, &addr).is_err() {
            break;
        }
        fds.push(s);
        assert!(fds.len() < 64, "backlog never filled");
    }
    fds
}

fn roundtrip(s: &mut UnixStream, msg: &[u8]) -> bool {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = vec![0u8; msg.len()];
    s.write_all(msg).is_ok() && s.read_exact(&mut got).is_ok() && got == msg
}

#[test]
fn slowloris_is_cut_off_while_others_are_served() {
    let _one = exclusive();
    let name = "slowloris::slowloris_is_cut_off_while_others_are_served";
    if callerid_testkit::need_root(name) {
        return;
    }
    if callerid_testkit::cgroup2_mount().is_none() {
        callerid_testkit::skip(name, "no cgroup2 mount");
        return;
    }
    let secs = env_usize(
        "CALLERID_SOAK_SLOWLORIS_SECS",
        if long_form() { 120 } else { 12 },
    );
    let container = TestCgroup::new(&format!("system.slice/docker-{}.scope", "5a".repeat(32)))
        .expect("create test cgroup");
    let gate = GateProcess::start(&format!(
        r#"
version = 1
default = "allow"

[[listener]]
name = "slow"
path = "{{dir}}/gate.sock"
backend = "{{dir}}/backend.sock"
mode = "0666"
# Well above the 1 s trickle: a trickler is only ever cut by the limit, even
# when a loaded machine delays its next byte.
idle_timeout = "4s"
max_per_identity = {MAX_PER_IDENTITY}
decision_timeout = "10s"

[[listener]]
name = "stuck"
path = "{{dir}}/stuck.sock"
backend = "{{dir}}/stuck-backend.sock"
mode = "0666"
decision_timeout = "1s"
"#
    ));
    let backends = Backends::new();
    backends.echo(&gate.path("backend.sock"));
    let _stalled = stalled_backend(&gate.path("stuck-backend.sock"));
    let sock = gate.path("gate.sock");
    // Warm up, then the baseline.
    for _ in 0..50 {
        assert!(roundtrip(&mut connect(&sock).unwrap(), b"warm\n"));
    }
    gate.wait_idle("slow");
    let before = gate.usage();

    let mut attacker = role_command("attacker")
        .env("CALLERID_SOAK_SOCK", &sock)
        .env("CALLERID_SOAK_STALL_SOCK", gate.path("stuck.sock"))
        .env("CALLERID_SOAK_CGROUP", container.dir())
        .env("CALLERID_SOAK_SILENT", "48")
        .env("CALLERID_SOAK_TRICKLE", "48")
        .env("CALLERID_SOAK_STALL", "16")
        .env("CALLERID_SOAK_SECS", secs.to_string())
        .spawn()
        .expect("spawn attacker");
    let attack_ends = Instant::now() + Duration::from_secs(secs as u64);

    // Well-behaved clients (uid 0 outside the container: another identity) during the
    // attack: fresh connections with one round trip each, and two long-lived ones
    // talking every 200 ms.
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut peak = Usage::default();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let good = connect(&sock).is_ok_and(|mut c| roundtrip(&mut c, b"hello\n"));
                    let c = if good { &ok } else { &failed };
                    c.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
        }
        for _ in 0..2 {
            s.spawn(|| {
                let mut c = connect(&sock).expect("connect");
                while !stop.load(Ordering::Relaxed) {
                    let good = roundtrip(&mut c, b"still here\n");
                    let n = if good { &ok } else { &failed };
                    n.fetch_add(1, Ordering::Relaxed);
                    if !good {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
        while Instant::now() < attack_ends {
            let u = gate.usage();
            if u.fds > peak.fds {
                peak = u;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let mut out = std::io::BufReader::new(attacker.stdout.take().unwrap());
    let line = read_marked(&mut out, "result ").expect("attacker report");
    assert!(attacker.wait().unwrap().success(), "attacker failed");
    let r: Vec<u64> = line
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let [
        connects,
        cut,
        never_cut,
        trickle_max,
        echoed,
        s_connects,
        s_cut,
        s_never,
    ] = r[..]
    else {
        panic!("attacker report {line:?}");
    };
    gate.wait_idle("slow");
    gate.wait_idle("stuck");
    let after = gate.usage();
    let metrics = gate.scrape();
    let rejected = |listener: &str, reason: &str| {
        sample(
            &metrics,
            &format!(
                r#"callerid_limit_rejections_total{{listener="{listener}",reason="{reason}"}}"#
            ),
        )
        .unwrap_or(0.0) as u64
    };
    let per_identity = rejected("slow", "max_per_identity");
    let timed_out = rejected("stuck", "decision_timeout");
    let accepted = |l: &str| {
        sample(
            &metrics,
            &format!(r#"callerid_connections_accepted_total{{listener="{l}"}}"#),
        )
        .unwrap_or(0.0) as u64
    };
    figure!(
        "slowloris: {secs} s attack: {connects} attacker connections ({cut} cut off, {never_cut} \
         never), {per_identity} refused by max_per_identity = {MAX_PER_IDENTITY}, at most \
         {trickle_max} trickling at once ({echoed} bytes echoed); stalled backend: {s_connects} \
         connections, {s_cut} cut, {timed_out} by decision_timeout; well-behaved: {} round \
         trips ok, {} failed",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    figure!("slowloris: daemon before {before:?}, peak {peak:?}, after {after:?}");

    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "well-behaved clients failed"
    );
    assert!(ok.load(Ordering::Relaxed) > 0, "no well-behaved round trip");
    assert_eq!(never_cut + s_never, 0, "attacker connections never cut off");
    assert_eq!(
        cut, connects,
        "every attacker connection was closed by the gate"
    );
    assert_eq!(s_cut, s_connects);
    assert!(
        per_identity > 0,
        "max_per_identity never refused the attacker"
    );
    assert!(
        trickle_max <= MAX_PER_IDENTITY,
        "{trickle_max} trickling connections served at once (max_per_identity = {MAX_PER_IDENTITY})"
    );
    assert_eq!(
        timed_out, s_connects,
        "stalled connections end at decision_timeout"
    );
    assert_eq!(accepted("stuck"), s_connects);
    // Every attacker connection was decided (accepted and counted): none was left
    // hanging undecided. Ours: warm-up, fresh round trips and the two long-lived ones.
    let ours = 50 + ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
    assert!(
        accepted("slow") >= connects && accepted("slow") <= connects + ours,
        "accepted {} on slow for {connects} attacker connections and at most {ours} ours",
        accepted("slow")
    );
    assert!(
        after.fds <= before.fds + 8,
        "daemon fds grew: {} before, {} after",
        before.fds,
        after.fds
    );
    gate.stop();
    drop(backends);
    drop(container);
}
