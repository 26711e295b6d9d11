//! The daemon: listeners, accept workers, reload, drain.

use crate::audit::{Audit, AuditDecision, AuditEvent, AuditSink};
use crate::config::ListenerSpec;
use crate::decision::{
    BuildIdentifier, Current, Decision, OutputNeeds, PolicyHandle, PolicySource, labels, refuse,
};
use crate::error::Error;
use crate::forward::{self, End, RelayMode};
use crate::limits::{Limits, Slot};
use crate::listener::{self, Origin};
use crate::metrics::{
    DirectionLabels, ListenerLabel, Metrics, MetricsAddr, MetricsListener, ReasonLabels,
    ResultLabel, RuleLabels,
};
use callerid::{Identifier, Identity};
use callerid_policy::Outcome;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use serde::Serialize;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the daemon does with allowed connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answer each connection with one JSON line (identity and decision), then close.
    Serve,
    /// Forward allowed connections to the listener's backend.
    Gate,
}

/// Everything needed to start a daemon.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// serve or gate.
    pub mode: Mode,
    /// The listeners (serve: exactly one).
    pub listeners: Vec<ListenerSpec>,
    /// Where the policy comes from (and is reloaded from).
    pub policy: PolicySource,
    /// Audit log destination; `None` for no audit log.
    pub audit: Option<AuditSink>,
    /// Audit queue length; records beyond it are dropped and counted.
    pub audit_queue: usize,
    /// Metrics endpoint.
    pub metrics: Option<MetricsAddr>,
    /// How long `shutdown` waits for open connections before closing them.
    pub drain_timeout: Duration,
    /// Take sockets passed by systemd (`LISTEN_FDS`).
    pub socket_activation: bool,
    /// React to SIGHUP (reload) and SIGTERM/SIGINT (drain and stop).
    pub handle_signals: bool,
    /// Tell systemd READY/RELOADING/STOPPING when `NOTIFY_SOCKET` is set.
    pub notify: bool,
    /// Accept workers per listener (0: one per CPU, at most 4).
    pub accept_workers: usize,
    /// Load the BPF connect-time cgroup capture (default: when available).
    pub connect_capture: crate::capture::ConnectCapture,
    /// How gate listeners move bytes (default: copy, then splice for bulk; see [`RelayMode`]).
    pub relay: RelayMode,
}

impl DaemonConfig {
    /// A `serve` daemon on `path` with the given policy source.
    pub fn serve(path: Option<PathBuf>, policy: PolicySource) -> Self {
        Self::with_defaults(Mode::Serve, vec![ListenerSpec::new("serve", path)], policy)
    }

    /// A `gate` daemon from a gate configuration file (listeners and policy).
    pub fn gate(config: PathBuf) -> Result<Self, Error> {
        let parsed = crate::config::GateConfig::load(&config)?;
        Ok(Self::with_defaults(
            Mode::Gate,
            parsed.listeners,
            PolicySource::GateConfig(config),
        ))
    }

    /// The settings `serve` and `gate` share until the caller overrides them.
    fn with_defaults(mode: Mode, listeners: Vec<ListenerSpec>, policy: PolicySource) -> Self {
        Self {
            mode,
            listeners,
            policy,
            audit: None,
            audit_queue: 4096,
            metrics: None,
            drain_timeout: Duration::from_secs(10),
            socket_activation: true,
            handle_signals: true,
            notify: true,
            accept_workers: 0,
            connect_capture: Default::default(),
            relay: RelayMode::Auto,
        }
    }
}

/// A listener as started: for printing where to connect.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    /// Its name.
    pub name: String,
    /// Bound path or activated descriptor name.
    pub origin: Origin,
    /// The path clients connect to, when known.
    pub path: Option<PathBuf>,
    /// gate: where allowed connections go.
    pub backend: Option<PathBuf>,
}

/// Why a reload did not take effect (the old policy stays in force).
#[derive(Debug, thiserror::Error)]
#[error("reload failed, keeping the current policy: {0}")]
pub struct ReloadError(#[source] pub Error);

struct ListenerState {
    spec: ListenerSpec,
    /// The path an inherited socket is bound to (from getsockname).
    activated_path: Option<PathBuf>,
    label: ListenerLabel,
    path_bytes: Vec<u8>,
    limits: Arc<Limits>,
    accepted: Counter,
    active: Gauge,
    identify_seconds: Histogram,
    decide_seconds: Histogram,
    to_backend: Counter,
    to_client: Counter,
}

struct Shared {
    mode: Mode,
    policy: PolicyHandle,
    metrics: Arc<Metrics>,
    audit: Audit,
    seq: AtomicU64,
    /// Stop accepting.
    stop: CancellationToken,
    /// Drain deadline passed: close what is still open.
    hard: CancellationToken,
    tracker: TaskTracker,
    notify: bool,
    relay: RelayMode,
}

/// A started daemon: listeners bound, policy loaded. [`Daemon::run`] serves.
pub struct Daemon {
    shared: Arc<Shared>,
    listeners: Vec<(Arc<ListenerState>, UnixListener, Origin, Option<u64>)>,
    metrics_listener: Option<MetricsListener>,
    audit_thread: Option<std::thread::JoinHandle<()>>,
    notes: Vec<String>,
    info: Vec<String>,
    drain_timeout: Duration,
    signals: Option<Signals>,
    accept_workers: usize,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("listeners", &self.listener_info())
            .finish_non_exhaustive()
    }
}

/// Controls a running daemon from elsewhere (tests, embedding programs).
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    /// Reloads the policy from its source, as SIGHUP does.
    pub fn reload(&self) -> Result<(), ReloadError> {
        reload(&self.shared)
    }

    /// Stops accepting and drains, as SIGTERM does.
    pub fn shutdown(&self) {
        self.shared.stop.cancel();
    }

    /// The Prometheus text exposition, as the metrics endpoint serves it.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.render()
    }
}

impl Daemon {
    /// Sets everything up: socket activation, binding, policy, audit, metrics. Must be
    /// called inside a tokio runtime.
    pub fn start(cfg: DaemonConfig) -> Result<Self, Error> {
        let mut notes = Vec::new();
        let rules = cfg.policy.load()?;
        let mut info = Vec::new();
        let capture =
            crate::capture::connect_cgroup_source(cfg.connect_capture, &mut notes, &mut info);
        let build: BuildIdentifier = Arc::new(move |parts| {
            let mut b = Identifier::builder().parts(parts);
            if let Some(c) = &capture {
                b = b.connect_cgroup_source(c.clone());
            }
            b.build()
        });
        let needs = OutputNeeds {
            everything: cfg.mode == Mode::Serve,
            process: cfg.audit.is_some() || cfg.listeners.iter().any(|l| l.proxy_protocol),
            workload: cfg.audit.is_some()
                || cfg.listeners.iter().any(|l| l.max_per_identity.is_some()),
        };
        let policy = PolicyHandle::new(rules, cfg.policy.clone(), needs, build)?;
        degradation_notes(&policy.get().identifier, &mut notes);

        let metrics = Arc::new(Metrics::new());
        let (audit, audit_thread) = match cfg.audit.clone() {
            Some(sink) => {
                let (a, h) = Audit::start(sink, cfg.audit_queue, metrics.audit_dropped.clone())?;
                (a, Some(h))
            }
            None => (Audit::disabled(metrics.audit_dropped.clone()), None),
        };

        let mut inherited = if cfg.socket_activation {
            crate::activation::take()?
        } else {
            Vec::new()
        };
        let mut listeners = Vec::new();
        for (i, spec) in cfg.listeners.iter().enumerate() {
            // serve takes the first passed socket whatever its name; gate matches names
            // (or takes them in order when systemd passed no names).
            let pos = match cfg.mode {
                Mode::Serve if i == 0 && !inherited.is_empty() => Some(0),
                Mode::Serve => None,
                Mode::Gate => inherited
                    .iter()
                    .position(|s| s.name == spec.name)
                    .or_else(|| {
                        (inherited.len() == cfg.listeners.len() - i
                            && inherited.iter().all(|s| s.name == "unknown"))
                        .then_some(0)
                    }),
            };
            let (std_sock, origin, ino) = match pos {
                Some(p) => {
                    let s = inherited.remove(p);
                    (
                        listener::from_inherited(s.fd)?,
                        Origin::Activated(s.name),
                        None,
                    )
                }
                None => {
                    let Some(path) = spec.path.clone() else {
                        return Err(Error::Config {
                            path: None,
                            message: format!(
                                "listener {}: no path and no socket-activated descriptor",
                                spec.name
                            ),
                        });
                    };
                    let s = listener::bind(&spec.name, &path, spec.mode, spec.owner)?;
                    let ino = listener::path_inode(&path);
                    (s, Origin::Bound(path), ino)
                }
            };
            let sock = UnixListener::from_std(std_sock).map_err(|source| Error::Io {
                what: "register listener with the runtime",
                source,
            })?;
            let name: Arc<str> = Arc::from(spec.name.as_str());
            let label = ListenerLabel {
                listener: name.clone(),
            };
            let path_bytes = spec
                .path
                .as_ref()
                .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
                .unwrap_or_default();
            let activated_path = match origin {
                Origin::Activated(_) => sock
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(PathBuf::from)),
                Origin::Bound(_) => None,
            };
            let path_bytes = activated_path
                .as_ref()
                .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
                .unwrap_or(path_bytes);
            let state = ListenerState {
                activated_path,
                path_bytes,
                limits: Arc::new(Limits::new(spec.max_connections, spec.max_per_identity)),
                accepted: metrics.accepted.get_or_create_owned(&label),
                active: metrics.active.get_or_create_owned(&label),
                identify_seconds: metrics.identify_seconds.get_or_create_owned(&label),
                decide_seconds: metrics.decide_seconds.get_or_create_owned(&label),
                to_backend: metrics.bytes.get_or_create_owned(&DirectionLabels {
                    listener: name.clone(),
                    direction: "to_backend",
                }),
                to_client: metrics.bytes.get_or_create_owned(&DirectionLabels {
                    listener: name.clone(),
                    direction: "to_client",
                }),
                label,
                spec: spec.clone(),
            };
            listeners.push((Arc::new(state), sock, origin, ino));
        }
        for s in &inherited {
            notes.push(format!(
                "socket-activated descriptor {:?} matches no listener: closed",
                s.name
            ));
        }
        drop(inherited);

        let metrics_listener = cfg
            .metrics
            .as_ref()
            .map(MetricsListener::bind)
            .transpose()?;
        let shared = Arc::new(Shared {
            mode: cfg.mode,
            policy,
            metrics,
            audit,
            seq: AtomicU64::new(0),
            stop: CancellationToken::new(),
            hard: CancellationToken::new(),
            tracker: TaskTracker::new(),
            notify: cfg.notify,
            relay: cfg.relay,
        });
        Ok(Self {
            shared,
            listeners,
            metrics_listener,
            audit_thread,
            notes,
            info,
            drain_timeout: cfg.drain_timeout,
            signals: if cfg.handle_signals {
                Some(Signals::install()?)
            } else {
                None
            },
            accept_workers: cfg.accept_workers,
        })
    }

    /// The listeners as started.
    pub fn listener_info(&self) -> Vec<ListenerInfo> {
        self.listeners
            .iter()
            .map(|(st, _, origin, _)| ListenerInfo {
                name: st.spec.name.clone(),
                origin: origin.clone(),
                path: match origin {
                    Origin::Bound(p) => Some(p.clone()),
                    Origin::Activated(_) => st.activated_path.clone(),
                },
                backend: st.spec.backend.clone(),
            })
            .collect()
    }

    /// Where the metrics endpoint listens, if any.
    pub fn metrics_endpoint(&self) -> Option<String> {
        self.metrics_listener
            .as_ref()
            .map(MetricsListener::describe)
    }

    /// What is on at startup (e.g. connect-time capture), for the startup message.
    pub fn info(&self) -> &[String] {
        &self.info
    }

    /// Startup notes: degraded features and why (also logged as warnings).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// A handle to reload or stop the daemon.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Serves until shutdown (SIGTERM/SIGINT when signals are handled, or
    /// [`Handle::shutdown`]), then drains open connections up to the drain timeout.
    pub async fn run(mut self) -> Result<(), Error> {
        for n in &self.notes {
            tracing::warn!("{n}");
        }
        let workers = match self.accept_workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4),
            n => n,
        };
        let mut accept_tasks = Vec::new();
        let mut bound = Vec::new();
        for (state, sock, origin, ino) in self.listeners.drain(..) {
            let sock = Arc::new(sock);
            for _ in 0..workers {
                accept_tasks.push(tokio::spawn(accept_loop(
                    self.shared.clone(),
                    state.clone(),
                    sock.clone(),
                )));
            }
            if let Origin::Bound(p) = origin {
                bound.push((p, ino));
            }
        }
        let (metrics_stop_tx, metrics_stop_rx) = tokio::sync::watch::channel(false);
        let metrics_task = self
            .metrics_listener
            .take()
            .map(|m| tokio::spawn(m.serve(self.shared.metrics.clone(), metrics_stop_rx)));
        let signals = self
            .signals
            .take()
            .map(|sig| spawn_signal_task(self.shared.clone(), sig));

        notify(&self.shared, &[sd_notify::NotifyState::Ready]);
        tracing::info!("ready");
        self.shared.stop.cancelled().await;

        notify(&self.shared, &[sd_notify::NotifyState::Stopping]);
        for t in accept_tasks {
            let _ = t.await;
        }
        // Listening sockets are closed now; new clients get ECONNREFUSED / ENOENT.
        for (p, ino) in &bound {
            listener::unlink_if_ours(p, *ino);
        }
        self.shared.tracker.close();
        let open = self.shared.tracker.len();
        if open > 0 {
            tracing::info!(open, deadline = ?self.drain_timeout, "draining open connections");
        }
        if tokio::time::timeout(self.drain_timeout, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.shared.tracker.len(),
                "drain deadline passed: closing remaining connections"
            );
            self.shared.hard.cancel();
            self.shared.tracker.wait().await;
        }
        let _ = metrics_stop_tx.send(true);
        if let Some(t) = metrics_task {
            let _ = t.await;
        }
        if let Some(s) = signals {
            s.abort();
        }
        // The writer drains what is queued and exits.
        self.shared.audit.close();
        if let Some(t) = self.audit_thread.take() {
            // A writer stuck on a dead disk or a full pipe must not hold up the exit.
            let join = tokio::task::spawn_blocking(move || t.join());
            if tokio::time::timeout(Duration::from_secs(5), join)
                .await
                .is_err()
            {
                tracing::warn!("audit writer did not finish within 5 s: exiting without it");
            }
        }
        Ok(())
    }
}

/// Startup warnings for every kernel feature or privilege identification falls back
/// without: the answer is then weaker (and its provenance says so), never guessed.
fn degradation_notes(identifier: &Identifier, notes: &mut Vec<String>) {
    let f = identifier.features();
    for (name, st) in [
        ("SO_PEERPIDFD", &f.so_peerpidfd),
        ("PIDFD_GET_INFO", &f.pidfd_get_info),
        ("PIDFD_GET_*_NAMESPACE ioctls", &f.pidfd_namespace_ioctls),
        (
            "cgroup id -> path by open_by_handle_at",
            &f.open_by_handle_at,
        ),
        ("procfs of our pid namespace", &f.procfs),
        ("pidfs ids", &f.pidfs),
    ] {
        if !st.in_use()
            && let Some(fallback) = &st.fallback
        {
            notes.push(format!(
                "{name} unavailable ({}); instead: {fallback}",
                st.detail
            ));
        }
    }
    let parts = identifier.parts();
    if (parts.exe || parts.namespaces) && f.privileges.missing.contains(&"CAP_SYS_PTRACE") {
        notes.push(
            "without CAP_SYS_PTRACE, exe and namespaces of other users' processes cannot be read: they are null with a warning"
                .into(),
        );
    }
}

fn notify(shared: &Shared, states: &[sd_notify::NotifyState<'_>]) {
    if shared.notify
        && let Err(e) = sd_notify::notify(states)
    {
        tracing::debug!(error = %e, "sd_notify");
    }
}

fn reload(shared: &Shared) -> Result<(), ReloadError> {
    let mono = sd_notify::NotifyState::monotonic_usec_now().ok();
    let mut states = vec![sd_notify::NotifyState::Reloading];
    states.extend(mono);
    notify(shared, &states);
    shared.audit.reopen();
    let r = shared.policy.reload();
    match &r {
        Ok(()) => {
            shared
                .metrics
                .reloads
                .get_or_create(&ResultLabel { result: "ok" })
                .inc();
            tracing::info!(source = ?shared.policy.source(), "policy reloaded");
        }
        Err(e) => {
            shared
                .metrics
                .reloads
                .get_or_create(&ResultLabel { result: "error" })
                .inc();
            tracing::error!(error = %e, "policy reload failed: keeping the current policy");
        }
    }
    notify(shared, &[sd_notify::NotifyState::Ready]);
    r.map_err(ReloadError)
}

/// SIGHUP, SIGTERM, SIGINT streams. Created in [`Daemon::start`] so that the handlers
/// are in place before the caller announces the daemon: a signal that arrives between
/// "listening on …" and [`Daemon::run`] is queued, not fatal.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self, Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let err = |source| Error::Io {
            what: "install signal handler",
            source,
        };
        Ok(Self {
            hup: signal(SignalKind::hangup()).map_err(err)?,
            term: signal(SignalKind::terminate()).map_err(err)?,
            int: signal(SignalKind::interrupt()).map_err(err)?,
        })
    }
}

fn spawn_signal_task(shared: Arc<Shared>, signals: Signals) -> tokio::task::JoinHandle<()> {
    let Signals {
        mut hup,
        mut term,
        mut int,
    } = signals;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hup.recv() => { let _ = reload(&shared); }
                _ = term.recv() => { tracing::info!("SIGTERM: stop accepting, draining"); shared.stop.cancel(); }
                _ = int.recv() => { tracing::info!("SIGINT: stop accepting, draining"); shared.stop.cancel(); }
            }
        }
    })
}

async fn accept_loop(shared: Arc<Shared>, st: Arc<ListenerState>, sock: Arc<UnixListener>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let stream = tokio::select! {
            biased;
            () = shared.stop.cancelled() => return,
            r = sock.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    accept_error(&st, e).await;
                    continue;
                }
            },
        };
        st.accepted.inc();
        match shared.mode {
            Mode::Serve => serve_one(&shared, &st, stream, &mut buf),
            Mode::Gate => gate_one(&shared, &st, stream),
        }
    }
}

async fn accept_error(st: &ListenerState, e: io::Error) {
    match e.raw_os_error() {
        // Out of descriptors or memory: back off instead of spinning on a full backlog.
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            tracing::warn!(listener = %st.spec.name, error = %e, "accept: out of resources, backing off");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        _ => tracing::debug!(listener = %st.spec.name, error = %e, "accept"),
    }
}

/// Short machine-readable reason of an identification failure (a metric label).
fn failure_label(e: &callerid::Error) -> &'static str {
    match e {
        callerid::Error::PeerGone { .. } => "peer_gone",
        callerid::Error::NotPermitted { .. } => "not_permitted",
        callerid::Error::Unsupported { .. } => "unsupported",
        callerid::Error::ForeignPidNamespace { .. } => "foreign_pid_namespace",
        callerid::Error::WrongSocket { .. } => "wrong_socket",
        callerid::Error::Io { .. } => "io",
        _ => "other",
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let next = c.to_string();
        if !s.ends_with(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        cur = c.source();
    }
    s
}

/// Identifies the peer with the identifier of the policy in force. A failure is
/// counted and becomes a deny with the reason (fail closed).
fn identify(
    shared: &Shared,
    st: &ListenerState,
    current: &Current,
    stream: &UnixStream,
) -> Result<Identity, Decision> {
    let t0 = Instant::now();
    let identity = current.identifier.identify(stream);
    st.identify_seconds.observe(t0.elapsed().as_secs_f64());
    identity.map_err(|e| {
        shared
            .metrics
            .identify_failures
            .get_or_create(&ReasonLabels {
                listener: st.label.listener.clone(),
                reason: failure_label(&e),
            })
            .inc();
        refuse(None, format!("identification failed: {}", error_chain(&e)))
    })
}

fn evaluate(st: &ListenerState, current: &Current, identity: &Identity) -> Outcome {
    let t1 = Instant::now();
    let out = current.rules.evaluate(identity, &st.spec.name);
    st.decide_seconds.observe(t1.elapsed().as_secs_f64());
    out
}

/// Counts one decision by listener and rule label (`(default)`, `(expect)`,
/// `(identify)`, `(limit)`, `(backend)` when no rule decided).
fn count(shared: &Shared, st: &ListenerState, allow: bool, rule: Arc<str>) {
    let labels = RuleLabels {
        listener: st.label.listener.clone(),
        rule,
    };
    if allow {
        shared.metrics.allowed.get_or_create(&labels).inc();
    } else {
        shared.metrics.denied.get_or_create(&labels).inc();
    }
}

fn audit(
    shared: &Shared,
    st: &ListenerState,
    conn: u64,
    identity: Option<Identity>,
    decision: AuditDecision,
) {
    shared.audit.record(AuditEvent {
        time: SystemTime::now(),
        connection: conn,
        listener: st.label.listener.clone(),
        identity,
        decision,
    });
}

#[derive(Serialize)]
struct Answer<'a> {
    identity: Option<&'a Identity>,
    decision: &'a Decision,
}

/// serve: identify, decide, answer one line, close — inline on the accept worker.
fn serve_one(shared: &Arc<Shared>, st: &Arc<ListenerState>, stream: UnixStream, buf: &mut Vec<u8>) {
    let conn = shared.seq.fetch_add(1, Ordering::Relaxed);
    let current = shared.policy.get();
    let (identity, decision) = match identify(shared, st, &current, &stream) {
        Ok(identity) => {
            let out = evaluate(st, &current, &identity);
            count(shared, st, out.allow, current.rules.label(&out));
            let decision = current.rules.decide(&identity, &st.spec.name);
            (Some(identity), decision)
        }
        Err(decision) => {
            count(shared, st, false, labels::identify());
            (None, decision)
        }
    };
    buf.clear();
    // The answer is the caller's own identity and the decision, allowed or not (the
    // `serve` contract): a denied caller is told why, and what the host saw of it.
    if serde_json::to_writer(
        &mut *buf,
        &Answer {
            identity: identity.as_ref(),
            decision: &decision,
        },
    )
    .is_err()
    {
        buf.clear();
    }
    buf.push(b'\n');
    audit(shared, st, conn, identity, AuditDecision::Made(decision));
    // A direct send: tokio's `try_write` would refuse (WouldBlock) until the reactor
    // has seen the fresh socket become writable, sending every answer through a task.
    let sent = rustix::net::send(
        &stream,
        buf,
        rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL,
    )
    .map_err(io::Error::from);
    match sent {
        Ok(n) if n == buf.len() => {}
        Ok(n) => finish_answer(shared, st, stream, buf[n..].to_vec()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            finish_answer(shared, st, stream, buf.clone())
        }
        Err(_) => {}
    }
}

/// The rare answer that did not fit the socket buffer: finished on its own task,
/// bounded by the decision timeout.
fn finish_answer(shared: &Arc<Shared>, st: &Arc<ListenerState>, stream: UnixStream, rest: Vec<u8>) {
    let limit = st.spec.decision_timeout;
    let hard = shared.hard.clone();
    shared.tracker.spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut stream = stream;
        tokio::select! {
            _ = tokio::time::timeout(limit, stream.write_all(&rest)) => {}
            () = hard.cancelled() => {}
        }
    });
}

/// gate: identify, decide and check limits inline (no allocation beyond the
/// identity); connect to the backend and relay on a task of its own.
fn gate_one(shared: &Arc<Shared>, st: &Arc<ListenerState>, stream: UnixStream) {
    let accepted_at = Instant::now();
    let conn = shared.seq.fetch_add(1, Ordering::Relaxed);
    let current = shared.policy.get();
    let identity = match identify(shared, st, &current, &stream) {
        Ok(identity) => identity,
        Err(decision) => {
            count(shared, st, false, labels::identify());
            audit(shared, st, conn, None, AuditDecision::Made(decision));
            return;
        }
    };
    let out = evaluate(st, &current, &identity);
    if !out.allow {
        count(shared, st, false, current.rules.label(&out));
        audit(
            shared,
            st,
            conn,
            Some(identity),
            AuditDecision::Deferred {
                current,
                outcome: out,
            },
        );
        return; // dropping the stream closes it at once
    }
    let key = st
        .limits
        .wants_identity_key()
        .then(|| st.limits.key(&identity));
    let slot = match st.limits.admit(key) {
        Ok(slot) => slot,
        Err(refusal) => {
            shared
                .metrics
                .limit_rejections
                .get_or_create(&ReasonLabels {
                    listener: st.label.listener.clone(),
                    reason: refusal.label(),
                })
                .inc();
            count(shared, st, false, labels::limit());
            let d = refuse(
                current.rules.rule_name(&out).map(str::to_owned),
                refusal.reason(),
            );
            audit(shared, st, conn, Some(identity), AuditDecision::Made(d));
            return;
        }
    };
    let mut header = Vec::new();
    if st.spec.proxy_protocol {
        let rule = current.rules.rule_name(&out);
        // Clients rarely bind their socket; when one did, its path is the source.
        let client = stream.peer_addr().ok();
        let client_path = client
            .as_ref()
            .and_then(|a| a.as_pathname())
            .map(|p| p.as_os_str().as_encoded_bytes())
            .unwrap_or_default();
        if let Err(e) = crate::proxy::for_connection(
            &st.spec.name,
            &st.path_bytes,
            client_path,
            &identity,
            rule,
            &mut header,
        ) {
            tracing::warn!(listener = %st.spec.name, error = %e, "PROXY header");
        }
    }
    let shared2 = shared.clone();
    let st2 = st.clone();
    shared.tracker.spawn(async move {
        let pending = Pending {
            identity,
            current,
            out,
            conn,
            slot,
            header,
            accepted_at,
        };
        forward_one(shared2, st2, stream, pending).await;
    });
}

/// An allowed gate connection on its way to the backend.
struct Pending {
    identity: Identity,
    current: Arc<Current>,
    out: Outcome,
    conn: u64,
    slot: Slot,
    header: Vec<u8>,
    accepted_at: Instant,
}

async fn forward_one(shared: Arc<Shared>, st: Arc<ListenerState>, client: UnixStream, p: Pending) {
    let Some(backend_path) = st.spec.backend.as_deref() else {
        return;
    };
    let budget = st
        .spec
        .decision_timeout
        .saturating_sub(p.accepted_at.elapsed());
    let header = &p.header;
    let connect = async {
        let mut b = connect_backend(backend_path).await?;
        if !header.is_empty() {
            use tokio::io::AsyncWriteExt;
            b.write_all(header).await?;
        }
        Ok::<_, io::Error>(b)
    };
    let failure = match tokio::time::timeout(budget, connect).await {
        Ok(Ok(backend)) => Ok(backend),
        Ok(Err(e)) => Err((
            labels::backend(),
            format!("backend {}: {e}", backend_path.display()),
        )),
        Err(_) => {
            shared
                .metrics
                .limit_rejections
                .get_or_create(&ReasonLabels {
                    listener: st.label.listener.clone(),
                    reason: "decision_timeout",
                })
                .inc();
            Err((
                labels::limit(),
                format!(
                    "limit: no decision within decision_timeout = {:?} (backend connect)",
                    st.spec.decision_timeout
                ),
            ))
        }
    };
    let backend = match failure {
        Ok(b) => {
            count(&shared, &st, true, p.current.rules.label(&p.out));
            let d = AuditDecision::Deferred {
                current: p.current,
                outcome: p.out,
            };
            audit(&shared, &st, p.conn, Some(p.identity), d);
            b
        }
        Err((label, reason)) => {
            count(&shared, &st, false, label);
            let d = refuse(p.current.rules.rule_name(&p.out).map(str::to_owned), reason);
            audit(
                &shared,
                &st,
                p.conn,
                Some(p.identity),
                AuditDecision::Made(d),
            );
            return;
        }
    };
    st.active.inc();
    let end = forward::relay(
        shared.relay,
        &client,
        &backend,
        st.spec.idle_timeout,
        &st.to_backend,
        &st.to_client,
        &shared.hard,
    )
    .await;
    st.active.dec();
    if end != End::Done {
        tracing::debug!(listener = %st.spec.name, connection = p.conn, ?end, "relay ended");
    }
    drop(p.slot);
}

/// Connects to a backend. A full backlog (EAGAIN for AF_UNIX) is retried with backoff:
/// the decision timeout, not the first attempt, decides when to give up.
async fn connect_backend(path: &std::path::Path) -> io::Result<UnixStream> {
    let mut pause = Duration::from_millis(1);
    loop {
        match UnixStream::connect(path).await {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            r => return r,
        }
    }
}
