//! Soak: many connections through a real gate from client processes in 100 cgroups,
//! half of them allowed, some clients exiting mid-connection; no fd growth, bounded
//! memory, and every audit line attributed to exactly the process that connected.

use crate::support::*;
use callerid_testkit::TestCgroup;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CGROUPS: usize = 100;

/// Ceiling for the daemon's peak RSS (VmHWM) in the soak. The gate here (debug build,
/// BPF capture, audit with a 16 k queue, metrics) idles at ~25 MiB and peaks below
/// 30 MiB; a leak of ~2 KiB per connection (short form) or ~100 bytes (long form)
/// crosses this. The growth check after the run catches smaller ones.
const RSS_BOUND_KIB: u64 = 128 * 1024;

/// Descriptors the daemon may hold after the run beyond its count before it (tokio's
/// blocking-pool threads and the allocator do not open files; this absorbs e.g. a
/// metrics scrape still being closed).
const FD_SLACK: usize = 8;

/// How a client process ends its last connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Finishes it like every other.
    Clean,
    /// Exits right after connect(), before sending anything.
    ExitConnected,
    /// Exits after sending its request, before the answer.
    ExitSent,
    /// Exits after sending half its request.
    ExitHalf,
}

impl End {
    fn of_job(j: usize) -> Self {
        match j % 4 {
            0 => Self::Clean,
            1 => Self::ExitConnected,
            2 => Self::ExitSent,
            _ => Self::ExitHalf,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::ExitConnected => "exit_connected",
            Self::ExitSent => "exit_sent",
            Self::ExitHalf => "exit_half",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        [
            Self::Clean,
            Self::ExitConnected,
            Self::ExitSent,
            Self::ExitHalf,
        ]
        .into_iter()
        .find(|e| e.name() == s)
    }
}

/// What one client process reports about itself and its connections.
#[derive(Debug, Clone, Default)]
struct Report {
    pid: u64,
    pidfs: u64,
    cgroup_id: u64,
    connects: u64,
    connect_errors: u64,
    ok: u64,
    refused: u64,
    bad: u64,
    stuck: u64,
    mid_exit: u64,
}

impl Report {
    fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {} {} {}",
            self.pid,
            self.pidfs,
            self.cgroup_id,
            self.connects,
            self.connect_errors,
            self.ok,
            self.refused,
            self.bad,
            self.stuck,
            self.mid_exit
        )
    }
    fn parse(s: &str) -> Option<Self> {
        let v: Vec<u64> = s
            .split_whitespace()
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let [
            pid,
            pidfs,
            cgroup_id,
            connects,
            connect_errors,
            ok,
            refused,
            bad,
            stuck,
            mid_exit,
        ] = v[..]
        else {
            return None;
        };
        Some(Self {
            pid,
            pidfs,
            cgroup_id,
            connects,
            connect_errors,
            ok,
            refused,
            bad,
            stuck,
            mid_exit,
        })
    }
}

fn report_and_exit(r: &Report) -> ! {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "result {}", r.line());
    let _ = out.flush();
    // Whatever connection is open is closed by the kernel as the process dies.
    std::process::exit(0);
}

/// The `client` role: moves itself into `$CALLERID_SOAK_CGROUP` (or, when not root,
/// waits to be moved into `$CALLERID_SOAK_CGROUP_REL`), then makes
/// `$CALLERID_SOAK_CONNS` connections to `$CALLERID_SOAK_SOCK`, each sending
/// `<pid> <pidfs id> <cgroup id>\n` and expecting `ok\n` (allowed: the backend checked
/// the PROXY header against the claim) or a close (denied). The last connection ends as
/// `$CALLERID_SOAK_END` says.
pub(crate) fn client_role() -> i32 {
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} not set"));
    let sock = PathBuf::from(var("CALLERID_SOAK_SOCK"));
    let cg = PathBuf::from(var("CALLERID_SOAK_CGROUP"));
    let conns: u64 = var("CALLERID_SOAK_CONNS").parse().expect("conns");
    let end = End::parse(&var("CALLERID_SOAK_END")).expect("end mode");
    match std::env::var("CALLERID_SOAK_CGROUP_REL") {
        // Not root: the test moves us; wait until we are there.
        Ok(rel) => {
            let want = format!("0::{rel}");
            let deadline = Instant::now() + PATIENCE;
            let here = || {
                std::fs::read_to_string("/proc/self/cgroup")
                    .is_ok_and(|t| t.lines().any(|l| l == want))
            };
            while !here() {
                assert!(Instant::now() < deadline, "never moved into {rel}");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Err(_) => std::fs::write(cg.join("cgroup.procs"), std::process::id().to_string())
            .expect("enter cgroup"),
    }
    let pidfd = rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    )
    .expect("pidfd_open(self)");
    let mut r = Report {
        pid: u64::from(std::process::id()),
        pidfs: rustix::fs::fstat(&pidfd).expect("fstat pidfd").st_ino,
        cgroup_id: std::fs::metadata(&cg).expect("cgroup dir").ino(),
        ..Report::default()
    };
    let claim = format!("{} {} {}\n", r.pid, r.pidfs, r.cgroup_id);
    let mut buf = [0u8; 256];
    for i in 0..conns {
        let mut s = match connect(&sock) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("client {}: connect: {e}", r.pid);
                r.connect_errors += 1;
                continue;
            }
        };
        r.connects += 1;
        if i + 1 == conns && end != End::Clean {
            r.mid_exit = 1;
            match end {
                End::ExitSent => {
                    let _ = s.write_all(claim.as_bytes());
                }
                End::ExitHalf => {
                    let _ = s.write_all(&claim.as_bytes()[..claim.len() / 2]);
                }
                End::ExitConnected | End::Clean => {}
            }
            report_and_exit(&r);
        }
        s.set_read_timeout(Some(PATIENCE)).expect("read timeout");
        if s.write_all(claim.as_bytes()).is_err() {
            // Denied: the gate closed it before our request got in.
            r.refused += 1;
            continue;
        }
        let mut got = 0;
        let outcome = loop {
            match s.read(&mut buf[got..]) {
                Ok(0) => break if got == 0 { "refused" } else { "bad" },
                Ok(n) => {
                    got += n;
                    if buf[..got].ends_with(b"\n") || got == buf.len() {
                        break if &buf[..got] == b"ok\n" { "ok" } else { "bad" };
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    ) =>
                {
                    break "refused";
                }
                Err(e) => {
                    eprintln!("client {}: read: {e}", r.pid);
                    break "stuck";
                }
            }
        };
        match outcome {
            "ok" => r.ok += 1,
            "refused" => r.refused += 1,
            "bad" => {
                eprintln!(
                    "client {}: {}",
                    r.pid,
                    String::from_utf8_lossy(&buf[..got]).trim_end()
                );
                r.bad += 1;
            }
            _ => r.stuck += 1,
        }
    }
    report_and_exit(&r)
}

/// Clients running as this user are denied by uid, whatever their cgroup.
const DENIED_UID: u32 = 4242;

struct Job {
    cgroup: usize,
    uid: Option<u32>,
    conns: usize,
    end: End,
}

#[test]
fn soak_through_gate() {
    let _one = exclusive();
    let name = "soak::soak_through_gate";
    if callerid_testkit::need_root(name) {
        return;
    }
    if callerid_testkit::cgroup2_mount().is_none() {
        callerid_testkit::skip(name, "no cgroup2 mount");
        return;
    }
    let long = long_form();
    let total = env_usize(
        "CALLERID_SOAK_CONNECTIONS",
        if long { 1_000_000 } else { 50_000 },
    );
    let per_client = env_usize("CALLERID_SOAK_PER_CLIENT", if long { 1000 } else { 100 });
    let workers = env_usize("CALLERID_SOAK_WORKERS", 8);
    let rotate_every = if long { 100_000 } else { total as u64 / 2 };

    // Even cgroups are allowed, odd ones denied (by path, through the policy), and a
    // fifth of the clients run as a user denied by uid before cgroups are looked at.
    let cgroups: Vec<TestCgroup> = (0..CGROUPS)
        .map(|i| {
            let kind = if i.is_multiple_of(2) { "allow" } else { "deny" };
            TestCgroup::new(&format!("{kind}-{i:02}")).expect("create test cgroup")
        })
        .collect();
    let allowed = |i: usize| i.is_multiple_of(2);
    let config = format!(
        r#"
version = 1
default = "deny"

[[rule]]
name = "soak-denied-uid"
action = "deny"
listener = "soak"
match = {{ uid = {DENIED_UID} }}

[[rule]]
name = "soak-allowed"
action = "allow"
listener = "soak"
match = {{ cgroup = "/callerid-test-{pid}-*/allow-*" }}

[[listener]]
name = "soak"
path = "{{dir}}/gate.sock"
backend = "{{dir}}/backend.sock"
mode = "0666"
proxy_protocol = true
# Generous: a busy 2-core machine must not turn allowed connections into denials.
decision_timeout = "60s"
"#,
        pid = std::process::id()
    );
    let gate = GateProcess::start(&config);
    let backends = Backends::new();
    let bstats = Arc::new(BackendStats::default());
    backends.proxy_check(&gate.path("backend.sock"), bstats.clone());
    let before = gate.usage();
    figure!(
        "soak: {total} connections, {per_client} per client process, {workers} at once, \
         {CGROUPS} cgroups, capture={}; daemon before: {before:?}",
        gate.capture
    );

    let tail = AuditTail::start(gate.path("audit.log"), "soak");
    let sampler = Sampler::start(gate.pid(), Duration::from_millis(200), tail.lines.clone());
    let jobs: Vec<Job> = (0..total.div_ceil(per_client))
        .map(|j| Job {
            cgroup: j % CGROUPS,
            // Every fifth client runs as DENIED_UID (spread over both kinds of cgroup).
            uid: (j % 5 == 4).then_some(DENIED_UID),
            conns: per_client.min(total - j * per_client),
            end: End::of_job(j / 2),
        })
        .collect();
    // Clients that run as DENIED_UID cannot necessarily reach the build directory.
    let (_bin_dir, public_exe) = public_copy_of_self();
    let next = AtomicUsize::new(0);
    let reports: Mutex<Vec<(usize, Report)>> = Mutex::new(Vec::new());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(j) else { return };
                    let cg = &cgroups[job.cgroup];
                    let mut cmd = match job.uid {
                        Some(_) => role_command_of(&public_exe, "client"),
                        None => role_command("client"),
                    };
                    cmd.env("CALLERID_SOAK_SOCK", gate.path("gate.sock"))
                        .env("CALLERID_SOAK_CGROUP", cg.dir())
                        .env("CALLERID_SOAK_CONNS", job.conns.to_string())
                        .env("CALLERID_SOAK_END", job.end.name());
                    if let Some(uid) = job.uid {
                        use std::os::unix::process::CommandExt;
                        cmd.uid(uid)
                            .gid(uid)
                            .env("CALLERID_SOAK_CGROUP_REL", cg.rel_path());
                    }
                    let mut child = cmd.spawn().expect("spawn client");
                    if job.uid.is_some() {
                        cg.add_pid(child.id()).expect("move client into its cgroup");
                    }
                    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
                    let line = read_marked(&mut out, "result ");
                    let status = child.wait().expect("wait client");
                    match line.as_deref().and_then(Report::parse) {
                        Some(r) if status.success() => {
                            reports.lock().expect("reports").push((j, r));
                        }
                        _ => failures
                            .lock()
                            .expect("failures")
                            .push(format!("client job {j} failed: {status}, {line:?}")),
                    }
                }
            });
        }
        // Log rotation while the load runs: rename, SIGHUP (the daemon reopens the
        // path); the tailer finishes the old file and follows the new one.
        scope.spawn(|| {
            let mut rotated = 0u64;
            while next.load(Ordering::Relaxed) < jobs.len() {
                let lines = tail.lines.load(Ordering::Relaxed);
                if lines >= (rotated + 1) * rotate_every {
                    rotated += 1;
                    let old = gate.path(&format!("audit.log.{rotated}"));
                    std::fs::rename(gate.path("audit.log"), &old).expect("rotate audit log");
                    gate.hup();
                    // The tailer reads it through its open descriptor (it has read
                    // past the previous rotation, so it holds this file): the name
                    // can go.
                    let _ = std::fs::remove_file(&old);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    });
    let elapsed = started.elapsed();
    let failures = failures.into_inner().expect("failures");
    assert!(failures.is_empty(), "{failures:#?}");
    let reports = reports.into_inner().expect("reports");
    let connects: u64 = reports.iter().map(|(_, r)| r.connects).sum();

    let summary = tail.finish(connects);
    gate.wait_idle("soak");
    let samples = sampler.finish();
    let after = gate.usage();
    let metrics = gate.scrape();

    // Figures first, so that a failing run still shows them.
    let max_fds = samples.iter().map(|s| s.2.fds).max().unwrap_or(0);
    let hwm = samples
        .iter()
        .map(|s| s.2.hwm_kib)
        .max()
        .unwrap_or(0)
        .max(after.hwm_kib);
    let rss_at = |frac: f64| {
        let want = (connects as f64 * frac) as u64;
        samples
            .iter()
            .find(|s| s.1 >= want)
            .map_or(after.rss_kib, |s| s.2.rss_kib)
    };
    let (rss_10, rss_50) = (rss_at(0.1), rss_at(0.5));
    figure!(
        "soak: {connects} connections in {:.1} s = {:.0} conn/s (client processes spawned \
         included; {} processes)",
        elapsed.as_secs_f64(),
        connects as f64 / elapsed.as_secs_f64(),
        reports.len()
    );
    figure!(
        "soak: daemon fds before {} / max during {} / after {}; RSS KiB at 10% {} / 50% {} / \
         after {}; VmHWM {} KiB; threads {}",
        before.fds,
        max_fds,
        after.fds,
        rss_10,
        rss_50,
        after.rss_kib,
        hwm,
        after.threads
    );
    figure!(
        "soak: audit lines {} in {} file(s), cgroup.at {:?}; backend verified {} mismatched {} \
         no-request {}",
        tail_total(&summary),
        summary.files,
        summary.cgroup_at,
        bstats.verified.load(Ordering::Relaxed),
        bstats.mismatched.load(Ordering::Relaxed),
        bstats.no_request.load(Ordering::Relaxed)
    );

    // Every connection was decided exactly once and audited; nothing was dropped.
    assert_eq!(
        sample(
            &metrics,
            r#"callerid_connections_accepted_total{listener="soak"}"#
        ),
        Some(connects as f64),
        "accepted connections"
    );
    assert_eq!(
        sample(&metrics, "callerid_audit_dropped_total"),
        Some(0.0),
        "audit records dropped"
    );
    assert!(
        summary.unattributable.is_empty(),
        "audit lines without a peer pid or pidfs id: {:#?}",
        &summary.unattributable[..summary.unattributable.len().min(10)]
    );
    assert_eq!(summary.other_listener, 0);
    assert_eq!(
        tail_total(&summary),
        connects,
        "one audit line per connection"
    );

    // Attribution: each audit line's pidfs id is exactly one client, with that client's
    // pid, cgroup and decision, and as many lines as it made connections.
    let mut wrong = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (j, r) in &reports {
        let job = &jobs[*j];
        let want_path = cgroups[job.cgroup].rel_path();
        let want_uid = u64::from(job.uid.unwrap_or(0));
        let allow = allowed(job.cgroup) && job.uid.is_none();
        let want_rule = match (allow, job.uid) {
            (true, _) => "soak-allowed",
            (false, Some(_)) => "soak-denied-uid",
            (false, None) => "-",
        };
        seen.insert(r.pidfs);
        let mut bad =
            |what: String| wrong.push(format!("client pid {} pidfs {}: {what}", r.pid, r.pidfs));
        if r.connect_errors + r.bad + r.stuck > 0 {
            bad(format!("client saw {r:?}"));
        }
        let (ok, refused) = if allow {
            (r.connects - r.mid_exit, 0)
        } else {
            (0, r.connects - r.mid_exit)
        };
        if (r.ok, r.refused) != (ok, refused) {
            bad(format!(
                "answers ok {} refused {}, expected {ok} and {refused}",
                r.ok, r.refused
            ));
        }
        let Some(a) = summary.by_pidfs.get(&r.pidfs) else {
            bad("no audit line".into());
            continue;
        };
        if a.pids != [r.pid] {
            bad(format!("audit pids {:?}", a.pids));
        }
        if a.uids != [want_uid] {
            bad(format!("audit uids {:?}, expected {want_uid}", a.uids));
        }
        if a.rules != [want_rule] {
            bad(format!("audit rules {:?}, expected {want_rule}", a.rules));
        }
        if a.cgroups != [want_path.clone()] {
            bad(format!(
                "audit cgroups {:?}, expected {want_path}",
                a.cgroups
            ));
        }
        let (al, de) = if allow {
            (r.connects, 0)
        } else {
            (0, r.connects)
        };
        if (a.allowed, a.denied) != (al, de) {
            bad(format!(
                "audit allowed {} denied {}, expected {al} and {de}",
                a.allowed, a.denied
            ));
        }
    }
    for (pidfs, a) in &summary.by_pidfs {
        if !seen.contains(pidfs) {
            wrong.push(format!(
                "audit lines for pidfs id {pidfs} no client made: {a:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misattributed: {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(20)]
    );
    assert_eq!(bstats.mismatched.load(Ordering::Relaxed), 0);

    // Resources: no descriptor left behind, memory bounded and not still growing.
    assert!(
        after.fds <= before.fds + FD_SLACK,
        "daemon fds grew: {} before, {} after",
        before.fds,
        after.fds
    );
    // During the run: bounded by the connections in flight, not by how many were made
    // (4096 relays may pile up behind a stalled backend on a loaded machine).
    assert!(
        max_fds <= before.fds + 2 * 4096 + 64,
        "daemon fds during the run: {max_fds} (before {})",
        before.fds
    );
    assert!(
        hwm <= RSS_BOUND_KIB,
        "daemon VmHWM {hwm} KiB over {RSS_BOUND_KIB} KiB"
    );
    // Growth over the second half bounded by a quarter of the first half's level (or
    // 16 MiB): a per-connection leak grows linearly and fails this at any scale.
    assert!(
        after.rss_kib <= rss_50 + (rss_50 / 4).max(16 * 1024),
        "daemon RSS still growing: {rss_50} KiB at half-way, {} KiB after",
        after.rss_kib
    );
    gate.stop();
    drop(backends);
    drop(cgroups);
}

fn tail_total(s: &AuditSummary) -> u64 {
    s.by_pidfs
        .values()
        .map(|a| a.allowed + a.denied)
        .sum::<u64>()
        + s.unattributable.len() as u64
        + s.other_listener
}
