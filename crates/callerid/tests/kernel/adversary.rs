//! The PID-reuse adversary.
//!
//! Inside a pid namespace the test owns (`unshare --pid --fork --mount-proc`), a victim
//! connects from cgroup A and exits; it is reaped; an impostor is forced onto the same
//! pid through `/proc/sys/kernel/ns_last_pid`, from another executable (`sleep`), in
//! cgroup B and in fresh net and uts namespaces. Identification of the victim's
//! connection must never report the impostor's comm, exe, cgroup or namespaces — for
//! every feature mode whose pidfd comes from `SO_PEERPIDFD`.
//!
//! Two kinds of trials: *sequential* ones (the swap is complete before we identify)
//! and *racing* ones (identification loops on another thread while the victim exits,
//! is reaped and replaced, so our syscalls interleave with the swap at random points).
//! Without `SO_PEERPIDFD` the pidfd is opened by number and can name the impostor; that
//! mode must flag it (`pid_reuse_possible`, `provenance.pidfd = pidfd_open`).

use crate::support::{CGROUP_ENV, SOCK_ENV, role_command, wrapped_role_command};
use callerid::{Feature, Identifier, Identity, ProcessState};
use callerid_testkit::{TestCgroup, need_root, skip};
use std::io::Write;
use std::process::{Command, Stdio};

const TRIALS_ENV: &str = "CALLERID_ADVERSARY_TRIALS";

fn run(trials: u32, name: &str) {
    if need_root(name) {
        return;
    }
    let sleep = ["/usr/bin/sleep", "/bin/sleep"]
        .into_iter()
        .find(|p| crate::support::have(p));
    let Some(sleep) = sleep else {
        skip(name, "needs sleep (coreutils)");
        return;
    };
    let a = TestCgroup::new("adversary-victim").expect("cgroup a");
    let b = TestCgroup::new("adversary-impostor").expect("cgroup b");
    let dir = tempfile::tempdir().expect("tmp");
    let mut cmd =
        wrapped_role_command(&["unshare", "--pid", "--fork", "--mount-proc"], "adversary");
    cmd.env(SOCK_ENV, dir.path().join("adv.sock"))
        .env("CALLERID_ADV_A", a.dir())
        .env("CALLERID_ADV_A_ID", a.id().to_string())
        .env("CALLERID_ADV_B", b.dir())
        .env("CALLERID_ADV_B_ID", b.id().to_string())
        .env("CALLERID_ADV_SLEEP", sleep)
        .env(TRIALS_ENV, trials.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let out = cmd.output().expect("run adversary");
    let text = String::from_utf8_lossy(&out.stdout);
    let result = text
        .lines()
        .find_map(|l| l.strip_prefix("ADVERSARY "))
        .unwrap_or("");
    assert!(out.status.success(), "adversary failed: {text}");
    let v: serde_json::Value = serde_json::from_str(result).expect("result line");
    let reused = v["reused"].as_u64().expect("reused");
    // The impostor must really have had the victim's pid in (nearly) every trial,
    // otherwise the test proves nothing.
    assert!(
        reused * 10 >= u64::from(trials) * 9,
        "pid reuse forced in only {reused}/{trials} trials"
    );
    eprintln!("{name}: {v}");
    let fooled = v["naive_fooled"].as_u64().expect("naive_fooled");
    assert!(
        fooled * 10 >= reused * 9,
        "the impostor must fool a naive /proc reader: {v}"
    );
    assert_eq!(v["by_number_unflagged"].as_u64(), Some(0), "{v}");
    let (racing, race_reused) = (
        v["racing"].as_u64().expect("racing"),
        v["race_reused"].as_u64().expect("race_reused"),
    );
    assert!(
        race_reused * 10 >= racing * 9,
        "pid reuse forced in only {race_reused}/{racing} racing trials"
    );
    assert_eq!(v["violations"].as_u64(), Some(0), "{v}");
}

#[test]
fn pid_reuse_adversary() {
    let trials = std::env::var(TRIALS_ENV)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(200);
    run(trials, "pid_reuse_adversary");
}

/// The release-mode stress run:
/// `cargo test --release -p callerid --test kernel -- --ignored pid_reuse_stress`.
#[test]
#[ignore = "stress run: 1000 trials, run in release mode"]
fn pid_reuse_stress() {
    run(1000, "pid_reuse_stress");
}

/// Checks one identity of the (dead) victim against the impostor's facts; returns the
/// violations found.
fn violations(
    who: &Identity,
    impostor_exe: &str,
    b_id: u64,
    a_id: u64,
    impostor_ns: &[u64],
) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(p) = who.process() {
        if p.state != ProcessState::Exited {
            v.push(format!("state {:?}", p.state));
        }
        if p.pid.is_some() {
            v.push("process.pid reported".into());
        }
        if let Some(c) = &p.comm {
            v.push(format!("comm {c}"));
        }
        if let Some(e) = &p.exe {
            if e == impostor_exe || e.contains("sleep") || e.contains("unshare") {
                v.push(format!("impostor exe {e}"));
            } else {
                v.push(format!("exe {e}"));
            }
        }
        if p.euid.is_some() {
            v.push("current creds reported for a dead process".into());
        }
    }
    if let Some(c) = who.cgroup() {
        if c.id.get() == b_id {
            v.push("impostor cgroup".into());
        } else if c.id.get() != a_id {
            v.push(format!("unexpected cgroup {}", c.id));
        }
    }
    if let Some(ns) = who.namespaces() {
        for n in [
            ns.user, ns.pid, ns.net, ns.mnt, ns.cgroup, ns.ipc, ns.uts, ns.time,
        ]
        .into_iter()
        .flatten()
        {
            if impostor_ns.contains(&n.get()) {
                v.push(format!("impostor namespace {n}"));
            }
        }
        v.push("namespaces reported for a dead process".into());
    }
    if who.user_namespace().is_some() {
        v.push("user namespace reported for a dead process".into());
    }
    v
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}"))
}

/// Runs inside the pid namespace; prints `ADVERSARY {json}`.
pub(crate) fn adversary_role() -> i32 {
    let sock = env(SOCK_ENV);
    let (a_dir, b_dir, sleep) = (
        env("CALLERID_ADV_A"),
        env("CALLERID_ADV_B"),
        env("CALLERID_ADV_SLEEP"),
    );
    let a_id: u64 = env("CALLERID_ADV_A_ID").parse().expect("a id");
    let b_id: u64 = env("CALLERID_ADV_B_ID").parse().expect("b id");
    let trials: u32 = env(TRIALS_ENV).parse().expect("trials");
    let l = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let modes: Vec<(&str, Identifier)> = vec![
        ("all", Identifier::new().expect("identifier")),
        (
            "no_get_info",
            Identifier::builder()
                .disable(Feature::PidfdGetInfo)
                .build()
                .expect("identifier"),
        ),
        (
            "no_ns_ioctls",
            Identifier::builder()
                .disable(Feature::PidfdNamespaceIoctls)
                .build()
                .expect("identifier"),
        ),
        (
            "no_handles",
            Identifier::builder()
                .disable(Feature::OpenByHandleAt)
                .cgroup_cache_size(0)
                .build()
                .expect("identifier"),
        ),
    ];
    let by_number = Identifier::builder()
        .disable(Feature::SoPeerpidfd)
        .build()
        .expect("identifier");
    let mut reused = 0u32;
    let mut naive_fooled = 0u32;
    let mut by_number_unflagged = 0u32;
    let mut bad = Vec::new();
    for t in 0..trials {
        let mut victim = role_command("connect_exit");
        victim.env(SOCK_ENV, &sock).env(CGROUP_ENV, &a_dir);
        let mut victim = victim.spawn().expect("spawn victim");
        let (conn, _) = l.accept().expect("accept");
        let vpid = victim.id();
        assert!(victim.wait().expect("reap victim").success());

        // Force the next pid onto the victim's.
        std::fs::write("/proc/sys/kernel/ns_last_pid", (vpid - 1).to_string())
            .expect("ns_last_pid");
        let mut impostor = Command::new("unshare")
            .args(["--net", "--uts", &sleep, "30"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn impostor");
        let ipid = impostor.id();
        let _ = std::fs::write(format!("{b_dir}/cgroup.procs"), ipid.to_string());
        let mut impostor_ns = Vec::new();
        if ipid == vpid {
            reused += 1;
            // Wait until the impostor runs sleep in its new namespaces, so that every
            // fact an unverified reader would get is the impostor's.
            for _ in 0..2000 {
                let comm =
                    std::fs::read_to_string(format!("/proc/{ipid}/comm")).unwrap_or_default();
                if comm.trim() == "sleep" {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            for n in ["user", "pid", "net", "mnt", "cgroup", "ipc", "uts", "time"] {
                if let Ok(m) = std::fs::metadata(format!("/proc/{ipid}/ns/{n}")) {
                    impostor_ns.push(std::os::unix::fs::MetadataExt::ino(&m));
                }
            }
            // What a reader of /proc/<pid> by number would believe now.
            let comm = std::fs::read_to_string(format!("/proc/{vpid}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" {
                naive_fooled += 1;
            }
            // Only namespaces that differ from ours identify the impostor.
            impostor_ns.retain(|ino| {
                ["net", "uts"].iter().any(|n| {
                    std::fs::metadata(format!("/proc/{ipid}/ns/{n}"))
                        .map(|m| std::os::unix::fs::MetadataExt::ino(&m) == *ino)
                        .unwrap_or(false)
                })
            });
        }
        for (mode, ident) in &modes {
            match ident.identify(&conn) {
                Ok(who) => {
                    for v in violations(&who, &sleep, b_id, a_id, &impostor_ns) {
                        bad.push(format!("trial {t} mode {mode}: {v}"));
                    }
                }
                Err(e) => bad.push(format!("trial {t} mode {mode}: identify failed: {e:#}")),
            }
        }
        // Without SO_PEERPIDFD the pidfd is opened by number and can be the impostor's:
        // that weaker provenance must be flagged, never silent.
        if let Ok(who) = by_number.identify(&conn) {
            let flagged = who
                .warnings()
                .iter()
                .any(|w| w.code == callerid::WarningCode::PidReusePossible);
            let said_so = who.provenance().pidfd == Some(callerid::PidfdSource::PidfdOpen);
            if who
                .process()
                .is_some_and(|p| p.state != ProcessState::Exited)
                && !(flagged && said_so)
            {
                by_number_unflagged += 1;
            }
        }
        let _ = impostor.kill();
        let _ = impostor.wait();
    }
    // Racing trials: identification runs in a loop on another thread *while* the
    // victim exits, is reaped and the impostor takes its pid, so the interleavings of
    // our syscalls with the swap vary from trial to trial.
    let racing = (trials / 4).max(1);
    let mut race_identities = 0u64;
    let mut race_reused = 0u32;
    for t in 0..racing {
        let (ident_name, ident) = &modes[(t as usize) % 2];
        let (n, reused_now, found) =
            race_trial(&l, &sock, &a_dir, &b_dir, &sleep, a_id, b_id, ident);
        race_identities += n;
        race_reused += u32::from(reused_now);
        for v in found {
            bad.push(format!("race trial {t} mode {ident_name}: {v}"));
        }
    }
    for b in bad.iter().take(20) {
        eprintln!("VIOLATION {b}");
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ADVERSARY {{\"trials\":{trials},\"reused\":{reused},\"naive_fooled\":{naive_fooled},\"by_number_unflagged\":{by_number_unflagged},\"racing\":{racing},\"race_reused\":{race_reused},\"race_identities\":{race_identities},\"violations\":{}}}",
        bad.len()
    );
    0
}

/// One racing trial; returns (identifications made, pid was reused, violations).
#[allow(clippy::too_many_arguments)]
fn race_trial(
    l: &std::os::unix::net::UnixListener,
    sock: &str,
    a_dir: &str,
    b_dir: &str,
    sleep: &str,
    a_id: u64,
    b_id: u64,
    ident: &Identifier,
) -> (u64, bool, Vec<String>) {
    use std::io::{BufRead, BufReader};
    use std::sync::atomic::{AtomicBool, Ordering};
    let own_exe = std::env::current_exe()
        .expect("exe")
        .to_string_lossy()
        .into_owned();
    let own_net = std::fs::metadata("/proc/self/ns/net")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .ok();
    let mut victim = role_command("client");
    victim.env(SOCK_ENV, sock).env(CGROUP_ENV, a_dir);
    let mut victim = victim.spawn().expect("spawn victim");
    let (conn, _) = l.accept().expect("accept");
    let vpid = victim.id();
    writeln!(&conn, "ping").expect("ping");
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line).expect("pong");

    let stop = AtomicBool::new(false);
    let mut found = Vec::new();
    let mut n = 0u64;
    let mut reused = false;
    std::thread::scope(|sc| {
        let checker = sc.spawn(|| {
            let mut found = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) || n == 0 {
                n += 1;
                let who = match ident.identify(&conn) {
                    Ok(w) => w,
                    Err(e) => {
                        found.push(format!("identify failed: {e:#}"));
                        continue;
                    }
                };
                if let Some(p) = who.process() {
                    if p.comm.as_deref() == Some("sleep") || p.comm.as_deref() == Some("unshare") {
                        found.push(format!("impostor comm {:?}", p.comm));
                    }
                    if let Some(e) = &p.exe
                        && *e != own_exe
                    {
                        found.push(format!("exe {e}"));
                    }
                }
                if let Some(c) = who.cgroup()
                    && (c.id.get() == b_id || c.id.get() != a_id)
                {
                    found.push(format!("cgroup {} (victim {a_id}, impostor {b_id})", c.id));
                }
                // A namespace read while the victim exits can be missing (null), never
                // another one than the victim's (which shares ours).
                if let Some(net) = who.namespaces().and_then(|ns| ns.net)
                    && Some(net.get()) != own_net
                {
                    found.push(format!("impostor net namespace {net}"));
                }
                if who
                    .namespaces()
                    .is_some_and(|ns| ns.net.is_none() || ns.user.is_none())
                    && !who
                        .warnings()
                        .iter()
                        .any(|w| w.part == callerid::Part::Namespaces)
                {
                    found.push("partial namespaces without a warning".into());
                }
            }
            (n, found)
        });
        let _ = writeln!(&conn, "exit");
        let _ = victim.wait();
        let _ = std::fs::write("/proc/sys/kernel/ns_last_pid", (vpid - 1).to_string());
        let mut impostor = Command::new("unshare")
            .args(["--net", "--uts", sleep, "30"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn impostor");
        let ipid = impostor.id();
        let _ = std::fs::write(format!("{b_dir}/cgroup.procs"), ipid.to_string());
        reused = ipid == vpid;
        for _ in 0..2000 {
            let comm = std::fs::read_to_string(format!("/proc/{ipid}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        stop.store(true, Ordering::Relaxed);
        let (count, f) = checker.join().expect("checker");
        n = count;
        found = f;
        let _ = impostor.kill();
        let _ = impostor.wait();
    });
    (n, reused, found)
}
