//! Whole-daemon figures: `gate` against a plain accept-and-forward relay built the same
//! way (tokio, 2 worker threads), `socat`, and a direct connection to the backend.
//!
//! The relays run in this process; the backend (echo) and the load generator are child
//! processes of this same binary (`echo` and `load` roles), so identification sees a
//! real foreign peer and the relay process's RSS is its own.

use crate::table::{Section, ns};
use anyhow::{Context as _, Result, bail};
use callerid_daemon::{AuditSink, Daemon, DaemonConfig, Handle};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Raises RLIMIT_NOFILE to `want` (or the hard limit, raising that too when we may).
pub fn raise_nofile(want: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    let hard = cur.maximum.unwrap_or(u64::MAX);
    // Root may raise the hard limit too; otherwise settle for the hard limit.
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: Some(hard.max(want)),
        },
    )
    .or_else(|_| {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            },
        )
    });
}

/// The soft RLIMIT_NOFILE after [`raise_nofile`] (`u64::MAX` when unlimited).
pub fn nofile_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// How many idle connections a relay in this process can hold: `want`, or fewer when
/// the fd limit (2 fds per relayed connection, plus headroom) does not allow it.
pub fn idle_capacity(want: usize) -> usize {
    raise_nofile(2 * want as u64 + 4096);
    let room = nofile_limit().saturating_sub(256) / 2;
    want.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// A child process of this binary in some role, killed on drop.
#[derive(Debug)]
pub struct Role {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Role {
    /// Starts `callerid-bench <args>` (this executable); its stdout is read line by line.
    pub fn start(args: &[&str]) -> Result<Self> {
        Self::start_with(Command::new(std::env::current_exe()?), args)
    }

    /// Starts `cmd <args>` (e.g. the `callerid-bench` binary from a test, with a uid);
    /// its stdout is read line by line.
    pub fn start_with(mut cmd: Command, args: &[&str]) -> Result<Self> {
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let out = BufReader::new(child.stdout.take().context("stdout")?);
        Ok(Self { child, out })
    }

    /// The next line the role printed.
    pub fn line(&mut self) -> Result<String> {
        let mut s = String::new();
        if self.out.read_line(&mut s)? == 0 {
            bail!("role exited: {:?}", self.child.try_wait());
        }
        Ok(s.trim_end().to_owned())
    }

    /// The role's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running relay under test.
#[derive(Debug)]
pub enum Relay {
    /// `callerid gate`, in process.
    Gate {
        /// Stops it.
        handle: Handle,
        /// Its runtime (kept alive with the relay).
        _rt: tokio::runtime::Runtime,
    },
    /// The plain forwarder, in process.
    Plain {
        /// Its runtime (dropping it stops the relay).
        _rt: tokio::runtime::Runtime,
    },
    /// `socat`.
    Socat(Child),
    /// No relay at all: clients connect to the backend.
    Direct,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The gate config used here: one listener, default allow.
pub fn gate_config(front: &Path, backend: &Path, extra: &str) -> String {
    format!(
        "version = 1\ndefault = \"allow\"\n\n[[listener]]\nname = \"bench\"\npath = \"{}\"\nbackend = \"{}\"\n{extra}\n",
        front.display(),
        backend.display()
    )
}

/// Starts `gate` in process with config `text` written to `dir/gate.toml`, audit to
/// `dir/audit.log`.
pub fn start_gate(dir: &Path, text: &str) -> Result<(Handle, tokio::runtime::Runtime)> {
    let cfg_path = dir.join("gate.toml");
    std::fs::write(&cfg_path, text)?;
    let mut cfg = DaemonConfig::gate(cfg_path)?;
    cfg.audit = Some(AuditSink::File(dir.join("audit.log")));
    cfg.handle_signals = false;
    cfg.notify = false;
    cfg.socket_activation = false;
    cfg.drain_timeout = Duration::from_secs(1);
    cfg.audit_queue = 1 << 16;
    let rt = runtime()?;
    let daemon = rt.block_on(async { Daemon::start(cfg) })?;
    let handle = daemon.handle();
    rt.spawn(daemon.run());
    Ok((handle, rt))
}

impl Relay {
    /// Starts a relay listening on `front`, forwarding to `backend`.
    pub fn gate(dir: &Path, front: &Path, backend: &Path) -> Result<Self> {
        let (handle, rt) = start_gate(dir, &gate_config(front, backend, ""))?;
        Ok(Relay::Gate { handle, _rt: rt })
    }

    /// The baseline: tokio accept loop, connect to the backend, copy both ways.
    pub fn plain(front: &Path, backend: &Path) -> Result<Self> {
        let rt = runtime()?;
        let listener = {
            let _g = rt.enter();
            tokio::net::UnixListener::bind(front)?
        };
        let backend = backend.to_path_buf();
        rt.spawn(async move {
            loop {
                let Ok((mut c, _)) = listener.accept().await else {
                    continue;
                };
                let backend = backend.clone();
                tokio::spawn(async move {
                    if let Ok(mut b) = tokio::net::UnixStream::connect(&backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut c, &mut b).await;
                    }
                });
            }
        });
        Ok(Relay::Plain { _rt: rt })
    }

    /// `socat UNIX-LISTEN:front,fork UNIX-CONNECT:backend`.
    pub fn socat(front: &Path, backend: &Path) -> Result<Self> {
        let child = Command::new("socat")
            .arg(format!("UNIX-LISTEN:{},fork,backlog=4096", front.display()))
            .arg(format!("UNIX-CONNECT:{}", backend.display()))
            .stdin(Stdio::null())
            .spawn()
            .context("socat (apt-get install socat)")?;
        wait_for_socket(front)?;
        Ok(Relay::Socat(child))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        match self {
            Relay::Gate { handle, .. } => handle.shutdown(),
            Relay::Socat(c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Relay::Plain { .. } | Relay::Direct => {}
        }
    }
}

fn wait_for_socket(p: &Path) -> Result<()> {
    let t = Instant::now();
    while UnixStream::connect(p).is_err() {
        if t.elapsed() > Duration::from_secs(10) {
            bail!("{} never accepted", p.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Resident set size of this process, bytes.
pub fn rss_self() -> u64 {
    rss_of("self")
}

/// Resident set size of a process, bytes.
pub fn rss_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Open fds of this process (the listing's own fd not counted); `usize::MAX` when
/// `/proc/self/fd` cannot be opened (e.g. at the fd limit).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(usize::MAX, |d| d.count().saturating_sub(1))
}

struct Env {
    dir: tempfile::TempDir,
    backend: PathBuf,
    _echo: Role,
}

impl Env {
    fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let backend = dir.path().join("backend.sock");
        let mut echo = Role::start(&["echo", backend.to_str().context("utf-8")?])?;
        echo.line()?;
        Ok(Self {
            dir,
            backend,
            _echo: echo,
        })
    }

    fn front(&self, name: &str) -> PathBuf {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir.path().join(format!("{name}-{n}.sock"))
    }

    fn relay(&self, kind: &str) -> Result<(Relay, PathBuf)> {
        let front = self.front(kind);
        let r = match kind {
            "gate" => {
                let d = front.with_extension("d");
                std::fs::create_dir_all(&d)?;
                Relay::gate(&d, &front, &self.backend)?
            }
            "plain" => Relay::plain(&front, &self.backend)?,
            "socat" => Relay::socat(&front, &self.backend)?,
            _ => return Ok((Relay::Direct, self.backend.clone())),
        };
        wait_for_socket(&front)?;
        Ok((r, front))
    }
}

/// What the `load` role reports.
#[derive(Debug, Default)]
struct Load {
    secs: f64,
    ops: u64,
    lat: Vec<f64>,
    bytes: u64,
}

fn load(target: &Path, mode: &str, n: usize, threads: usize) -> Result<Load> {
    let mut r = Role::start(&[
        "load",
        target.to_str().context("utf-8")?,
        mode,
        &n.to_string(),
        &threads.to_string(),
    ])?;
    let v: serde_json::Value = serde_json::from_str(&r.line()?)?;
    let mut lat: Vec<f64> = v["lat_ns"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    Ok(Load {
        secs: v["secs"].as_f64().unwrap_or(f64::NAN),
        ops: v["ops"].as_u64().unwrap_or(0),
        lat,
        bytes: v["bytes"].as_u64().unwrap_or(0),
    })
}

/// The gate section: connections/s, latency, bulk throughput, RSS per idle connection.
pub fn gate_section(
    conns: usize,
    rounds: usize,
    bulk_mib: usize,
    want_idle: usize,
) -> Result<Section> {
    let idle = idle_capacity(want_idle);
    let env = Env::new()?;
    let kinds = ["direct", "plain", "gate", "socat"];
    let mut relays = Vec::new();
    for k in kinds {
        let (r, front) = env.relay(k)?;
        relays.push((k, r, front));
    }
    // Connections/s and per-connection latency, interleaved rounds.
    let mut rate: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    for round in 0..rounds {
        for k in 0..kinds.len() {
            let i = (round + k) % kinds.len();
            // socat forks per connection: fewer connections, same shape.
            let n = if kinds[i] == "socat" {
                conns / 4
            } else {
                conns
            };
            let l = load(&relays[i].2, "conn", n, 2)?;
            rate[i].push(l.ops as f64 / l.secs);
            lat[i].extend(l.lat);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        crate::measure::median(v)
    };
    let rates: Vec<f64> = rate.iter_mut().map(med).collect();
    for l in &mut lat {
        l.sort_by(f64::total_cmp);
    }
    let p = |i: usize, q: f64| crate::measure::percentile(&lat[i], q);

    // Bulk: one connection, bulk_mib written and echoed back, per relay.
    let mut bulk = vec![Vec::new(); kinds.len()];
    for round in 0..rounds.min(3) {
        for k in 0..kinds.len() {
            let i = (round + k) % kinds.len();
            let l = load(&relays[i].2, "bulk", bulk_mib, 1)?;
            bulk[i].push(l.bytes as f64 / l.secs / (1 << 20) as f64);
        }
    }
    let bulks: Vec<f64> = bulk.iter_mut().map(med).collect();

    let mut s = Section {
        title: "gate: connections/s, latency, relay throughput (2 cores)".to_owned(),
        command: "cargo run --release -p callerid-bench -- report gate".to_owned(),
        intro: format!(
            "Relays run in the bench process on a tokio runtime with 2 worker threads; the \
             echo backend and the load generator are child processes. `direct` = client \
             to backend, no relay. `plain` = tokio accept + connect backend + \
             copy_bidirectional (the baseline built the same way as gate). `gate` = \
             identify + decide (1-listener default-allow config) + audit line + forward + \
             close. `socat` = `socat UNIX-LISTEN:…,fork UNIX-CONNECT:…`. Connections: 2 \
             client threads, each connect + 8-byte request + 8-byte echo + close; {conns} \
             connections per round ({} for socat, which forks per connection), {rounds} \
             interleaved rounds, median rate. Latency: per-connection wall time of the same \
             loop, all rounds pooled. Bulk: one connection, {bulk_mib} MiB written and \
             echoed back concurrently.",
            conns / 4
        ),
        header: [
            "figure",
            "direct",
            "plain (baseline)",
            "gate",
            "socat",
            "gate / plain",
            "gate / socat",
        ]
        .map(str::to_owned)
        .to_vec(),
        rows: Vec::new(),
        notes: Vec::new(),
    };
    let fmt_rate = |r: f64| format!("{:.0} /s", r);
    s.rows.push(vec![
        "new connections/s (identify+decide+forward+close)".into(),
        fmt_rate(rates[0]),
        fmt_rate(rates[1]),
        fmt_rate(rates[2]),
        fmt_rate(rates[3]),
        format!("{:.2}×", rates[2] / rates[1]),
        format!("{:.2}×", rates[2] / rates[3]),
    ]);
    for q in [50.0, 99.0] {
        s.rows.push(vec![
            format!("p{q:.0} connection round trip"),
            ns(p(0, q)),
            ns(p(1, q)),
            ns(p(2, q)),
            ns(p(3, q)),
            format!("{:.2}×", p(2, q) / p(1, q)),
            format!("{:.2}×", p(2, q) / p(3, q)),
        ]);
        s.rows.push(vec![
            format!("p{q:.0} added over direct"),
            "—".into(),
            ns(p(1, q) - p(0, q)),
            ns(p(2, q) - p(0, q)),
            ns(p(3, q) - p(0, q)),
            format!("{:.2}×", (p(2, q) - p(0, q)) / (p(1, q) - p(0, q))),
            format!("{:.2}×", (p(2, q) - p(0, q)) / (p(3, q) - p(0, q))),
        ]);
    }
    s.rows.push(vec![
        format!("bulk relay, MiB/s each way ({bulk_mib} MiB echoed)"),
        format!("{:.0}", bulks[0]),
        format!("{:.0}", bulks[1]),
        format!("{:.0}", bulks[2]),
        format!("{:.0}", bulks[3]),
        format!("{:.2}×", bulks[2] / bulks[1]),
        format!("{:.2}×", bulks[2] / bulks[3]),
    ]);
    drop(relays);

    // RSS per idle connection: the relay process (this one) before and after `idle`
    // connections are open through it. Only gate and plain live in this process.
    // `idle0`: connected, nothing sent; `idle`: one 1-byte round trip each first.
    for mode in ["idle0", "idle"] {
        let mut rss = Vec::new();
        for k in ["plain", "gate"] {
            let (r, front) = env.relay(k)?;
            let before = rss_self();
            let mut holder = Role::start(&[
                "load",
                front.to_str().context("utf-8")?,
                mode,
                &idle.to_string(),
                "1",
            ])?;
            let ready = holder.line()?;
            std::thread::sleep(Duration::from_millis(300));
            let after = rss_self();
            drop(holder);
            drop(r);
            rss.push((before, after, ready));
        }
        let per = |i: usize| (rss[i].1.saturating_sub(rss[i].0)) as f64 / idle as f64;
        let what = if mode == "idle0" {
            "nothing sent"
        } else {
            "after one 1-byte round trip each"
        };
        s.rows.push(vec![
            format!("RSS per idle connection ({idle} open, {what})"),
            "—".into(),
            format!("{:.0} B", per(0)),
            format!("{:.0} B", per(1)),
            "—".into(),
            format!("{:.2}×", per(1) / per(0)),
            "—".into(),
        ]);
        s.notes.push(format!(
            "RSS of the relay process (this one) before → with {idle} idle connections \
             ({what}): plain {:.1} → {:.1} MiB ({}), gate {:.1} → {:.1} MiB ({}).",
            rss[0].0 as f64 / 1048576.0,
            rss[0].1 as f64 / 1048576.0,
            rss[0].2,
            rss[1].0 as f64 / 1048576.0,
            rss[1].1 as f64 / 1048576.0,
            rss[1].2,
        ));
    }
    if idle < want_idle {
        s.notes.push(format!(
            "{idle} idle connections instead of {want_idle}: the hard RLIMIT_NOFILE here is \
             {} and this sandbox lacks CAP_SYS_RESOURCE to raise it; a relay holds 2 fds per \
             connection.",
            nofile_limit()
        ));
    }
    s.notes.push(
        "Relay buffers: gate reads into a buffer only while data flows and gives it back \
         when a read would block, so idle connections hold none; tokio's \
         copy_bidirectional keeps 2 × 8 KiB per connection. Kernel socket buffers are not \
         in RSS."
            .to_owned(),
    );
    Ok(s)
}

/// The `echo` role: an echo server on `path` (tokio, one thread), prints `ready`.
pub fn echo(path: &str) -> Result<()> {
    raise_nofile(1 << 16);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let l = tokio::net::UnixListener::bind(path)?;
        println!("ready");
        std::io::stdout().flush()?;
        loop {
            let (mut c, _) = l.accept().await?;
            tokio::spawn(async move {
                let (mut r, mut w) = c.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    })
}

/// The `load` role: `conn` (connect + 8-byte round trip + close, `n` times per
/// thread… split across `threads`), `bulk` (`n` MiB echoed on one connection), `idle`
/// (open `n` connections, check each once, print, hold until stdin closes).
pub fn load_role(target: &str, mode: &str, n: usize, threads: usize) -> Result<()> {
    raise_nofile(1 << 16);
    let target = PathBuf::from(target);
    let out = match mode {
        "conn" => {
            let t = Instant::now();
            let per = n / threads.max(1);
            let hs: Vec<_> = (0..threads.max(1))
                .map(|_| {
                    let target = target.clone();
                    std::thread::spawn(move || -> Result<Vec<u64>> {
                        let mut lat = Vec::with_capacity(per);
                        let mut buf = [0u8; 8];
                        for _ in 0..per {
                            let t = Instant::now();
                            let mut c = UnixStream::connect(&target)?;
                            c.write_all(b"ping1234")?;
                            c.read_exact(&mut buf)?;
                            drop(c);
                            lat.push(t.elapsed().as_nanos() as u64);
                        }
                        Ok(lat)
                    })
                })
                .collect();
            let mut lat = Vec::new();
            for h in hs {
                lat.extend(h.join().map_err(|_| anyhow::anyhow!("thread"))??);
            }
            let secs = t.elapsed().as_secs_f64();
            serde_json::json!({"secs": secs, "ops": lat.len(), "lat_ns": lat})
        }
        "bulk" => {
            let total = n << 20;
            let c = UnixStream::connect(&target)?;
            let mut w = c.try_clone()?;
            let t = Instant::now();
            let writer = std::thread::spawn(move || -> std::io::Result<()> {
                let chunk = vec![0x5au8; 1 << 16];
                let mut left = total;
                while left > 0 {
                    let k = left.min(chunk.len());
                    w.write_all(&chunk[..k])?;
                    left -= k;
                }
                Ok(())
            });
            let mut r = c;
            let mut buf = vec![0u8; 1 << 16];
            let mut got = 0usize;
            while got < total {
                let k = r.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                got += k;
            }
            writer.join().map_err(|_| anyhow::anyhow!("writer"))??;
            let secs = t.elapsed().as_secs_f64();
            serde_json::json!({"secs": secs, "ops": 1, "bytes": got})
        }
        "idle" | "idle0" => {
            let mut held = Vec::with_capacity(n);
            let mut buf = [0u8; 1];
            let mut ok = 0usize;
            for _ in 0..n {
                let mut c = UnixStream::connect(&target)?;
                c.set_read_timeout(Some(Duration::from_secs(10)))?;
                let checked = mode == "idle0"
                    || (c.write_all(b"x").is_ok() && c.read_exact(&mut buf).is_ok());
                if checked {
                    ok += 1;
                }
                held.push(c);
            }
            if mode == "idle0" {
                // Wait until the relay has accepted them all: one round trip on the last.
                if let Some(c) = held.last_mut()
                    && (c.write_all(b"x").is_err() || c.read_exact(&mut buf).is_err())
                {
                    ok -= 1;
                }
            }
            println!("{ok}/{n} connections answered and held");
            std::io::stdout().flush()?;
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            return Ok(());
        }
        _ => bail!("unknown load mode {mode}"),
    };
    println!("{out}");
    Ok(())
}
