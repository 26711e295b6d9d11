//! Per-connection figures: identify() against bare connect + accept + SO_PEERCRED, the
//! peers (naive /proc parsing, libsystemd), and the scale run over many live cgroups.

use crate::measure::{Case, Effort, Figure, interleaved};
use crate::sys;
use crate::table::{Section, ns};
use anyhow::{Context as _, Result};
use callerid::{Identifier, Parts};
use std::cell::RefCell;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// A listener on a filesystem path in a temporary directory; connections are made and
/// accepted on the calling thread.
#[derive(Debug)]
pub struct Loopback {
    _dir: tempfile::TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl Loopback {
    /// Binds a fresh listener.
    pub fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bench.sock");
        let listener = UnixListener::bind(&path).context("bind")?;
        Ok(Self {
            _dir: dir,
            path,
            listener,
        })
    }

    /// connect + accept; returns (client, accepted).
    pub fn pair(&self) -> (UnixStream, UnixStream) {
        loop {
            if let Ok(c) = UnixStream::connect(&self.path)
                && let Ok((a, _)) = self.listener.accept()
            {
                return (c, a);
            }
        }
    }
}

fn peercred(a: &UnixStream) -> u32 {
    rustix::net::sockopt::socket_peercred(a)
        .map(|c| c.uid.as_raw())
        .unwrap_or(0)
}

fn ident(parts: Parts, cache: bool) -> Result<Identifier> {
    let mut b = Identifier::builder().parts(parts);
    if !cache {
        b = b
            .cgroup_cache_size(0)
            .userns_cache_size(0)
            .process_cache_size(0);
    }
    Ok(b.build()?)
}

/// `identify()` per connection, warm and cold, with and without BPF capture.
pub fn identify_section(effort: Effort) -> Result<Section> {
    let lb = Loopback::new()?;
    let kernel_warm = ident(Parts::KERNEL_ONLY, true)?;
    let kernel_cold = ident(Parts::KERNEL_ONLY, false)?;
    let all_warm = ident(Parts::ALL, true)?;
    let all_cold = ident(Parts::ALL, false)?;
    let no_proc_parts = Parts {
        comm: false,
        exe: false,
        ..Parts::ALL
    };
    let no_proc = ident(no_proc_parts, true)?;
    // Leaked: the identifiers want a 'static source; the program detaches at exit.
    let capture = callerid_bpf::ConnectCapture::load().map(|c| &*Box::leak(Box::new(c)));
    let bpf = match &capture {
        Ok(c) => {
            let src: Arc<dyn callerid::ConnectCgroupSource> = Arc::new(*c);
            Some((
                Identifier::builder()
                    .parts(Parts::KERNEL_ONLY)
                    .connect_cgroup_source(Arc::clone(&src))
                    .build()?,
                Identifier::builder()
                    .parts(Parts::ALL)
                    .connect_cgroup_source(src)
                    .build()?,
            ))
        }
        Err(_) => None,
    };
    // A pidfd to ourselves held open, to show the pidfs inode cost of SO_PEERPIDFD.
    let held = rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    )?;
    let mut held = Some(held);

    let run = |who: &Identifier| {
        let (c, a) = lb.pair();
        let id = who.identify(&a).ok();
        std::hint::black_box((id, c));
    };
    let mut cases = vec![
        Case::new("connect + accept + SO_PEERCRED (bare)", || {
            let (c, a) = lb.pair();
            std::hint::black_box((peercred(&a), c));
        }),
        Case::new("bare + SO_PEERPIDFD + close", || {
            let (c, a) = lb.pair();
            let fd = sys::peer_pidfd(a.as_fd()).ok();
            std::hint::black_box((peercred(&a), fd, c));
        }),
        Case::new(
            "bare + SO_PEERPIDFD + PIDFD_GET_INFO + fstat + close (the kernel floor)",
            || {
                let (c, a) = lb.pair();
                let fd = sys::peer_pidfd(a.as_fd()).ok();
                if let Some(fd) = &fd {
                    let _ = std::hint::black_box(sys::pidfd_cgroup_id(fd.as_fd()));
                    let _ = std::hint::black_box(rustix::fs::fstat(fd));
                }
                std::hint::black_box((peercred(&a), fd, c));
            },
        ),
        Case::new("identify(KERNEL_ONLY + workload), warm caches", || {
            run(&kernel_warm)
        }),
        Case::new(
            "identify(KERNEL_ONLY + workload), caches off (cold)",
            || run(&kernel_cold),
        ),
        Case::new("identify(ALL but comm/exe), warm caches", || run(&no_proc)),
        Case::new("identify(ALL), warm caches", || run(&all_warm)),
        Case::new("identify(ALL), caches off (cold)", || run(&all_cold)),
    ];
    if let Some((k, a)) = &bpf {
        cases.push(Case::new(
            "identify(KERNEL_ONLY + workload) + BPF connect-time cgroup, warm",
            move || run(k),
        ));
        cases.push(Case::new(
            "identify(ALL) + BPF connect-time cgroup, warm",
            move || run(a),
        ));
    }
    let figs_a = interleaved(effort, &mut cases);
    drop(cases);
    // Same, with another pidfd to the peer held open (pidfs inode already exists).
    let mut held_cases = vec![
        Case::new("bare (again, pidfd to the peer held)", || {
            let (c, a) = lb.pair();
            std::hint::black_box((peercred(&a), c));
        }),
        Case::new(
            "bare + SO_PEERPIDFD + close, pidfd to the peer held",
            || {
                let (c, a) = lb.pair();
                let fd = sys::peer_pidfd(a.as_fd()).ok();
                std::hint::black_box((peercred(&a), fd, c));
            },
        ),
        Case::new(
            "identify(KERNEL_ONLY + workload), warm, pidfd to the peer held",
            || run(&kernel_warm),
        ),
    ];
    let figs_b = interleaved(effort, &mut held_cases);
    drop(held_cases);
    held.take();

    let mut s = Section::times(
        "identify() per connection",
        "cargo run --release -p callerid-bench -- report identify",
        "Each operation: socket + connect + accept on a filesystem-path listener, the \
         identification work, close both ends; client and server are the same thread, so \
         the peer is the bench process itself (alive, no other pidfd to it open). \
         KERNEL_ONLY = peer (creds, groups, LSM label at connect), process (pidfs id, pid, \
         ppid, creds now, state), cgroup id + path and workload: no /proc read on a warm \
         cache. ALL adds comm, exe and 8 namespace inodes (verified reads through one \
         /proc/<pid> dirfd; the pid namespace cached per pidfs id) and the user namespace \
         (maps cached per namespace). The kernel floor row is the least a race-free \
         identification can do: SO_PEERPIDFD, PIDFD_GET_INFO, fstat for the pidfs id.",
    );
    s.push_against_first(&figs_a);
    if let Some(b) = figs_b.first() {
        for f in &figs_b {
            s.push_time(f, b);
        }
    }
    match &capture {
        Ok(_) => s.notes.push(
            "BPF capture: `callerid-bpf` `cgroup/getsockname_unix` program attached at the \
             cgroup2 root (adds getsockname + map lookup per connection)."
                .to_owned(),
        ),
        Err(e) => s.notes.push(format!(
            "BPF capture rows missing: `ConnectCapture::load()` failed here: {e}"
        )),
    }
    Ok(s)
}

/// The naive peer: SO_PEERCRED, read `/proc/<pid>/cgroup` by path, regex for a
/// container id. Returns the id when found.
fn naive(a: &UnixStream, re: &regex_lite::Regex, buf: &mut String) -> Option<usize> {
    let cred = rustix::net::sockopt::socket_peercred(a).ok()?;
    buf.clear();
    std::fs::File::open(format!("/proc/{}/cgroup", cred.pid.as_raw_nonzero()))
        .ok()?
        .read_to_string(buf)
        .ok()?;
    let line = buf.lines().find(|l| l.starts_with("0::"))?;
    re.find(line).map(|m| m.start())
}

/// The same connections identified by the naive approach, libsystemd and callerid.
pub fn peers_section(effort: Effort) -> Result<Section> {
    let lb = Loopback::new()?;
    let re = regex_lite::Regex::new(r"(?:docker-|libpod-|cri-containerd-|crio-|/)([0-9a-f]{64})")?;
    let buf = RefCell::new(String::new());
    let kernel_warm = ident(Parts::KERNEL_ONLY, true)?;
    let all_warm = ident(Parts::ALL, true)?;
    let mut cases = vec![
        Case::new("connect + accept + SO_PEERCRED (bare)", || {
            let (c, a) = lb.pair();
            std::hint::black_box((peercred(&a), c));
        }),
        Case::new(
            "naive: SO_PEERCRED + read /proc/<pid>/cgroup + regex-lite (racy: pid reuse)",
            || {
                let (c, a) = lb.pair();
                std::hint::black_box((naive(&a, &re, &mut buf.borrow_mut()), c));
            },
        ),
        Case::new(
            "callerid identify(KERNEL_ONLY + workload), warm (race-free)",
            || {
                let (c, a) = lb.pair();
                std::hint::black_box((kernel_warm.identify(&a).ok(), c));
            },
        ),
        Case::new("callerid identify(ALL), warm (race-free)", || {
            let (c, a) = lb.pair();
            std::hint::black_box((all_warm.identify(&a).ok(), c));
        }),
    ];
    if sys::libsystemd_available() {
        cases.insert(
            2,
            Case::new(
                "libsystemd 252: sd_peer_get_cgroup + sd_peer_get_unit (racy: pid reuse)",
                || {
                    let (c, a) = lb.pair();
                    let (cg, unit) = sys::sd_peer_cgroup_and_unit(a.as_fd());
                    std::hint::black_box((cg.ok(), unit.ok(), c));
                },
            ),
        );
    }
    let figs = interleaved(effort, &mut cases);
    drop(cases);
    let mut s = Section::times(
        "vs peers, on the same connections",
        "cargo run --release -p callerid-bench -- report peers",
        "Same loop as above. The naive approach and libsystemd look the pid up by number \
         after connect() (a reused pid gives another process's answer); callerid goes \
         through SO_PEERPIDFD. libsystemd answers cgroup path + unit; callerid KERNEL_ONLY \
         answers that plus cgroup id, pidfs id, creds now and the workload chain.",
    );
    s.push_against_first(&figs);
    let (cg, unit) = sys::sd_peer_cgroup_and_unit(lb.pair().1.as_fd());
    s.notes.push(format!(
        "libsystemd answers here: cgroup {cg:?}, unit {unit:?} (hybrid host: systemd 252 reads \
         its own name=systemd v1 hierarchy)."
    ));
    Ok(s)
}

/// Moves process `pid` into the cgroup directory `dir`.
fn move_to(dir: &std::path::Path, pid: u32) -> Result<()> {
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
        .with_context(|| format!("move {pid} to {}", dir.display()))
}

/// identify() with 10, 1 000 and 10 000 distinct cgroups alive (real cgroups under the
/// cgroup2 mount, removed afterwards).
pub fn scale_section(effort: Effort, sizes: &[usize]) -> Result<Section> {
    let mount = callerid_testkit::cgroup2_mount().context("no cgroup2 mount")?;
    let base = mount.join(format!("callerid-bench-{}", std::process::id()));
    std::fs::create_dir(&base).with_context(|| format!("mkdir {}", base.display()))?;
    let result = scale_inner(effort, sizes, &mount, &base);
    // Removal: the child is gone (killed in scale_inner); remove leaves, then the base.
    if let Ok(rd) = std::fs::read_dir(&base) {
        for e in rd.flatten() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
    let _ = std::fs::remove_dir(&base);
    result
}

fn scale_inner(
    effort: Effort,
    sizes: &[usize],
    mount: &std::path::Path,
    base: &std::path::Path,
) -> Result<Section> {
    let max = sizes.iter().copied().max().unwrap_or(10);
    let t = Instant::now();
    let dirs: Vec<PathBuf> = (0..max)
        .map(|i| {
            let d = base.join(format!("c{i:05}"));
            std::fs::create_dir(&d).map(|()| d)
        })
        .collect::<std::io::Result<_>>()?;
    let mkdir_time = t.elapsed();
    let lb = Loopback::new()?;
    // A peer process that connects and then sleeps until its stdin closes.
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["hold", lb.path.to_str().context("path")?])
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    let (accepted, _) = lb.listener.accept()?;
    let pid = child.id();
    let ops = (effort.iters * effort.rounds).max(2 * max);
    let mut rows = Vec::new();
    for &n in sizes {
        let ident = Identifier::builder()
            .parts(Parts::KERNEL_ONLY)
            .cgroup_cache_size(2 * max + 64)
            .build()?;
        // Fill the cache with all n cgroups, then measure identify() alone while the
        // peer hops between them (the move itself is not timed).
        for d in &dirs[..n] {
            move_to(d, pid)?;
            ident.identify(&accepted)?;
        }
        let mut samples = Vec::with_capacity(ops);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..ops {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            move_to(&dirs[(x as usize) % n], pid)?;
            let t = Instant::now();
            let who = ident.identify(&accepted)?;
            samples.push(t.elapsed().as_nanos() as f64);
            std::hint::black_box(who);
        }
        samples.sort_by(f64::total_cmp);
        rows.push((n, samples));
    }
    move_to(mount, pid)?;
    let _ = child.kill();
    let _ = child.wait();
    let mut s = Section::times(
        "scale: identify() with many cgroups alive",
        "cargo run --release -p callerid-bench -- report scale",
        &format!(
            "{max} real cgroups created under the cgroup2 mount ({mkdir_time:.1?} to create), \
             removed afterwards. One peer process, one established connection; the peer is \
             moved to a random one of the first n cgroups before every identification \
             (the move is not timed), the cache (sized {} entries) warmed with all n first. Each figure \
             is the median (and p99 in the note) of {ops} single identify(KERNEL_ONLY + \
             workload) calls; the baseline is n = {}.",
            2 * max + 64,
            sizes.first().copied().unwrap_or(10)
        ),
    );
    let figs: Vec<Figure> = rows
        .iter()
        .map(|(n, s)| Figure {
            name: format!("{n} cgroups alive"),
            median_ns: crate::measure::median(s),
            min_ns: s.first().copied().unwrap_or(f64::NAN),
        })
        .collect();
    s.push_against_first(&figs);
    s.notes.push(
        rows.iter()
            .map(|(n, v)| format!("p99 at {n}: {}", ns(crate::measure::percentile(v, 99.0))))
            .collect::<Vec<_>>()
            .join("; "),
    );
    Ok(s)
}

/// The `hold` role: connect to the socket and wait until stdin closes.
pub fn hold(path: &str) -> Result<()> {
    let _c = UnixStream::connect(path)?;
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}

/// The `profile` role: `n` connections identified with `what` (`bare`, `kernel`, `all`),
/// for `perf record`.
pub fn profile(what: &str, n: usize) -> Result<()> {
    let lb = Loopback::new()?;
    let parts = match what {
        "all" | "all-readlink" => Parts::ALL,
        "kernel" => Parts::KERNEL_ONLY,
        _ => Parts::MINIMAL,
    };
    let who = if what == "all-readlink" {
        Identifier::builder()
            .parts(Parts::ALL)
            .disable(callerid::Feature::PidfdNamespaceIoctls)
            .build()?
    } else {
        ident(parts, true)?
    };
    let t = Instant::now();
    for _ in 0..n {
        let (c, a) = lb.pair();
        if what == "bare" {
            std::hint::black_box((peercred(&a), c));
        } else {
            std::hint::black_box((who.identify(&a).ok(), c));
        }
    }
    eprintln!("{what}: {}", ns(t.elapsed().as_nanos() as f64 / n as f64));
    Ok(())
}
