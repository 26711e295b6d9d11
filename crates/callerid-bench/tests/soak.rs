//! Endurance and load through `gate` (issue 6 §3): real processes in real cgroups, the
//! daemon in this process, the echo backend and clients as child processes (roles of
//! the `callerid-bench` binary).
//!
//! - `soak`: 50 000 connections (`CALLERID_SOAK=full`: 1 000 000; `CALLERID_SOAK=<n>`:
//!   n) from 100 client processes in 100 cgroups, one in three cgroups denied by the
//!   policy, one connection in 50 made by a child that exits at once. Asserts: no fd
//!   growth, bounded RSS, one audit line per connection and none misattributed (each
//!   line's pid belongs to a client or its child, and its cgroup and verdict are that
//!   client's).
//! - `idle_and_slowloris`: 10 000 idle connections held open through the gate; then a
//!   slowloris identity (another uid) opening far more connections than
//!   `max_per_identity` and sending nothing is refused beyond the limit and cut off by
//!   `idle_timeout`, while a well-behaved identity keeps being served throughout.
//!
//! No timing assertions: waits are bounded by a generous patience only.
#![allow(clippy::unwrap_used)]

use callerid_bench::gate::{
    Role, fd_count, gate_config, idle_capacity, nofile_limit, raise_nofile, rss_self, start_gate,
};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(120);
const BIN: &str = env!("CARGO_BIN_EXE_callerid-bench");

/// The two tests count this process's fds and RSS: never run them at once.
static SERIAL: Mutex<()> = Mutex::new(());

fn bench(args: &[&str]) -> Role {
    Role::start_with(Command::new(BIN), args).unwrap()
}

fn echo_backend(dir: &Path) -> (Role, PathBuf) {
    let p = dir.join("backend.sock");
    let mut r = bench(&["echo", p.to_str().unwrap()]);
    assert_eq!(r.line().unwrap(), "ready");
    (r, p)
}

/// Waits until the audit log has `at_least` lines, counting them in small chunks (the
/// RSS measured in this process must not include the test's own reading).
fn wait_audit(path: &Path, at_least: usize) -> usize {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut n = 0;
        if let Ok(f) = std::fs::File::open(path) {
            let mut r = std::io::BufReader::with_capacity(1 << 16, f);
            let mut buf = [0u8; 1 << 16];
            while let Ok(k) = r.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n += buf[..k].iter().filter(|&&b| b == b'\n').count();
            }
        }
        if n >= at_least || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn audit_lines(path: &Path, at_least: usize) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let n = text.bytes().filter(|&b| b == b'\n').count();
        if n >= at_least || Instant::now() > deadline {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
                .collect();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until this process has at most `limit` fds open (relays finish closing).
fn settle_fds(limit: usize) -> usize {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let n = fd_count();
        if n <= limit || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn roundtrip(target: &Path) -> bool {
    let Ok(mut c) = UnixStream::connect(target) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
    let mut buf = [0u8; 8];
    c.write_all(b"ping1234").is_ok() && c.read_exact(&mut buf).is_ok() && &buf == b"ping1234"
}

struct Cgroups {
    base: PathBuf,
    dirs: Vec<(String, PathBuf, bool)>,
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for (_, d, _) in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
        let _ = std::fs::remove_dir(&self.base);
    }
}

fn soak_total() -> usize {
    match std::env::var("CALLERID_SOAK").as_deref() {
        Ok("full") => 1_000_000,
        Ok(n) => n.parse().unwrap_or(50_000),
        Err(_) => 50_000,
    }
}

#[test]
fn soak() {
    if callerid_testkit::need_root("soak") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    raise_nofile(1 << 16);
    let total = soak_total();
    let clients = 100;
    let exit_every = 50;
    let per = total / clients;

    let mount = callerid_testkit::cgroup2_mount().expect("cgroup2 mount");
    let rel_base = format!("callerid-soak-{}.slice", std::process::id());
    let base = mount.join(&rel_base);
    std::fs::create_dir(&base).unwrap();
    let mut cgs = Cgroups {
        base: base.clone(),
        dirs: Vec::new(),
    };
    for i in 0..clients {
        let deny = i % 3 == 0;
        let name = format!("{}-{i:02}.service", if deny { "deny" } else { "allow" });
        let d = base.join(&name);
        std::fs::create_dir(&d).unwrap();
        cgs.dirs.push((format!("/{rel_base}/{name}"), d, deny));
    }

    let dir = tempfile::tempdir().unwrap();
    let (_echo, backend) = echo_backend(dir.path());
    let front = dir.path().join("gate.sock");
    let policy = format!(
        "\n[[rule]]\nname = \"deny-cgroups\"\naction = \"deny\"\n[rule.match]\ncgroup = \"/{rel_base}/deny-*\"\n"
    );
    let config = gate_config(&front, &backend, "") + &policy;
    let (handle, _rt) = start_gate(dir.path(), &config).unwrap();
    let audit = dir.path().join("audit.log");

    // Warm-up from this process, then the baselines.
    for _ in 0..200 {
        assert!(roundtrip(&front));
    }
    wait_audit(&audit, 200);
    std::thread::sleep(Duration::from_millis(300));
    let fds0 = fd_count();
    let rss0 = rss_self();

    // Four quarters; RSS after each. A leak grows with every quarter, a bounded
    // process plateaus once its caches, queues and allocator pools have filled.
    let t = Instant::now();
    // pid -> client index; connections made per client; outcomes.
    let mut owner: HashMap<u64, usize> = HashMap::new();
    let mut made = vec![0u64; clients];
    let (mut allowed, mut refused, mut errors, mut exiters) = (0u64, 0u64, 0u64, 0u64);
    let mut rss = vec![rss0];
    let mut fds = vec![fds0];
    for _quarter in 0..4 {
        let mut roles: Vec<(Role, usize)> = cgs
            .dirs
            .iter()
            .enumerate()
            .map(|(i, (_, d, _))| {
                (
                    bench(&[
                        "soakclient",
                        front.to_str().unwrap(),
                        d.to_str().unwrap(),
                        &(per / 4).to_string(),
                        &exit_every.to_string(),
                    ]),
                    i,
                )
            })
            .collect();
        for (r, i) in &mut roles {
            let v: Value = serde_json::from_str(&r.line().unwrap()).unwrap();
            owner.insert(v["pid"].as_u64().unwrap(), *i);
            made[*i] += v["allowed"].as_u64().unwrap() + v["refused"].as_u64().unwrap();
            allowed += v["allowed"].as_u64().unwrap();
            refused += v["refused"].as_u64().unwrap();
            errors += v["errors"].as_u64().unwrap();
            for c in v["children"].as_array().unwrap() {
                owner.insert(c.as_u64().unwrap(), *i);
                made[*i] += 1;
                exiters += 1;
            }
        }
        drop(roles);
        let so_far: u64 = made.iter().sum();
        wait_audit(&audit, 200 + so_far as usize);
        fds.push(settle_fds(fds0));
        rss.push(rss_self());
    }
    let elapsed = t.elapsed();
    let expected: u64 = made.iter().sum();
    let fds1 = *fds.last().unwrap();
    let rss1 = *rss.last().unwrap();
    let n_lines = wait_audit(&audit, 200 + expected as usize);
    handle.shutdown();

    eprintln!(
        "soak: {expected} connections ({allowed} echoed, {refused} refused, {exiters} by exiting \
         children, {errors} client errors) in {elapsed:.1?}; fds by quarter {fds:?}; RSS by \
         quarter {:?} MiB; {} audit lines",
        rss.iter().map(|r| r >> 20).collect::<Vec<_>>(),
        n_lines
    );
    assert_eq!(errors, 0, "client errors");
    assert!(
        fds1 <= fds0,
        "fd growth: {fds0} before, {fds1} after the soak"
    );
    // Bounded: the second half of the run adds less than 32 MiB (a leak of even
    // 1 KiB per connection would add 25 MiB per 25 000).
    let half = rss[2];
    assert!(
        rss1 < half + (32 << 20),
        "RSS keeps growing: {rss:?} bytes by quarter"
    );

    // Every line after the warm-up belongs to one client (or its child), with that
    // client's cgroup and verdict.
    let mut seen = vec![0u64; clients];
    let mut wrong = Vec::new();
    // Streamed: the full form writes a million lines.
    let reader = std::io::BufReader::new(std::fs::File::open(&audit).unwrap());
    for text in std::io::BufRead::lines(reader).skip(200) {
        let l: Value = serde_json::from_str(&text.unwrap()).expect("audit line is JSON");
        let pid = l["peer"]["pid"].as_u64().unwrap_or(0);
        let Some(&i) = owner.get(&pid) else {
            wrong.push(format!("line for unknown pid {pid}: {l}"));
            continue;
        };
        seen[i] += 1;
        let (path, _, deny) = &cgs.dirs[i];
        if l["cgroup"]["path"].as_str() != Some(path.as_str()) {
            wrong.push(format!("client {i} ({path}): {l}"));
        }
        // A denied cgroup is never allowed. An allowed one is allowed unless the
        // client exited before the backend connection was made.
        if *deny && l["allow"] != false {
            wrong.push(format!("client {i} ({path}) allowed: {l}"));
        }
        if !*deny && l["allow"] != true && l["process_state"] == "alive" {
            wrong.push(format!("client {i} ({path}) refused while alive: {l}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misattributed: {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(seen, made, "one audit line per connection, per client");
    drop(cgs);
}

#[test]
fn idle_and_slowloris() {
    if callerid_testkit::need_root("idle_and_slowloris") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // 10 000, or as many as the hard fd limit allows (2 fds per relayed connection;
    // without CAP_SYS_RESOURCE the hard limit cannot be raised).
    let idle = idle_capacity(10_000);
    if idle < 10_000 {
        eprintln!(
            "idle: {idle} connections, not 10 000: RLIMIT_NOFILE is {}",
            nofile_limit()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    // The slowloris runs as another uid: it must reach the socket.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_echo, backend) = echo_backend(dir.path());

    // Phase 1: the idle connections held through the gate.
    let front = dir.path().join("idle.sock");
    let (handle, _rt) = start_gate(dir.path(), &gate_config(&front, &backend, "")).unwrap();
    let fds0 = fd_count();
    let mut holder = bench(&[
        "load",
        front.to_str().unwrap(),
        "idle0",
        &idle.to_string(),
        "1",
    ]);
    let ready = holder.line().unwrap();
    assert_eq!(
        ready,
        format!("{idle}/{idle} connections answered and held")
    );
    // The gate holds both ends of every relay, and still serves a newcomer.
    let deadline = Instant::now() + PATIENCE;
    while fd_count() < fds0 + 2 * idle && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let held = fd_count();
    assert!(held >= fds0 + 2 * idle, "{fds0} -> {held} fds");
    assert!(
        roundtrip(&front),
        "a new connection is served with {idle} idle ones open"
    );
    drop(holder);
    let after = settle_fds(fds0);
    assert!(
        after <= fds0,
        "fds {fds0} -> {after} after the idle clients left"
    );
    handle.shutdown();

    // Phase 2: slowloris against per-identity limits and the idle timeout.
    let front = dir.path().join("lim.sock");
    let sub = dir.path().join("lim");
    std::fs::create_dir(&sub).unwrap();
    let extra = "mode = \"0666\"\nmax_per_identity = 20\nidle_timeout = \"1s\"\n";
    let (handle, _rt2) = start_gate(&sub, &gate_config(&front, &backend, extra)).unwrap();
    let mut cmd = Command::new(BIN);
    {
        use std::os::unix::process::CommandExt;
        cmd.uid(4242).gid(4242);
    }
    let mut loris =
        Role::start_with(cmd, &["slowloris", front.to_str().unwrap(), "200", "15"]).unwrap();
    // Well-behaved (uid 0) clients keep being served while the slowloris holds its 20.
    let t = Instant::now();
    let mut served = 0;
    while t.elapsed() < Duration::from_secs(3) {
        assert!(roundtrip(&front), "a well-behaved client was refused");
        served += 1;
    }
    let v: Value = serde_json::from_str(&loris.line().unwrap()).unwrap();
    eprintln!("slowloris: {v}; well-behaved round trips meanwhile: {served}");
    assert_eq!(v["opened"], 200, "{v}");
    // Everything is closed by the gate: 180 refused at once (max_per_identity), the
    // 20 admitted ones by idle_timeout; none is left open.
    assert_eq!(v["closed"], 200, "{v}");
    assert_eq!(v["open"], 0, "{v}");
    let lines = audit_lines(&sub.join("audit.log"), 200);
    let refused = lines
        .iter()
        .filter(|l| l["peer"]["uid"] == 4242 && l["allow"] == false)
        .filter(|l| l["reasons"].to_string().contains("max_per_identity"))
        .count();
    assert!(refused >= 180, "{refused} refused by max_per_identity");
    assert!(roundtrip(&front), "still serving after the slowloris");
    handle.shutdown();
}
