//! The daemon: listeners, accept workers, reload, drain.

use crate::audit::{Audit, AuditEvent, AuditSink};
use crate::config::{GateConfig, ListenerSpec};
use crate::decision::{ListenerCtx, PolicyHandle, PolicySource, Rules, Verdict};
use crate::error::Error;
use crate::forward::{self, End};
use crate::limits::{Limits, Slot};
use crate::listener::{self, Origin};
use crate::metrics::{
    DirectionLabels, ListenerLabel, Metrics, MetricsAddr, MetricsListener, ReasonLabels,
    ResultLabel, RuleLabels,
};
use callerid::{Identifier, Identity};
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
}

impl DaemonConfig {
    /// A `serve` daemon on `path` with the given policy source.
    pub fn serve(path: Option<PathBuf>, policy: PolicySource) -> Self {
        Self {
            mode: Mode::Serve,
            listeners: vec![ListenerSpec::new("serve", path)],
            policy,
            audit: None,
            audit_queue: 4096,
            metrics: None,
            drain_timeout: Duration::from_secs(10),
            socket_activation: true,
            handle_signals: true,
            notify: true,
            accept_workers: 0,
        }
    }

    /// A `gate` daemon from a gate configuration file (listeners and policy).
    pub fn gate(config: PathBuf) -> Result<Self, Error> {
        let parsed = GateConfig::load(&config)?;
        Ok(Self {
            mode: Mode::Gate,
            listeners: parsed.listeners,
            policy: PolicySource::GateConfig(config),
            audit: None,
            audit_queue: 4096,
            metrics: None,
            drain_timeout: Duration::from_secs(10),
            socket_activation: true,
            handle_signals: true,
            notify: true,
            accept_workers: 0,
        })
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
    ctx: ListenerCtx,
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
    identifier: Identifier,
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
}

/// A started daemon: listeners bound, policy loaded. [`Daemon::run`] serves.
pub struct Daemon {
    shared: Arc<Shared>,
    listeners: Vec<(Arc<ListenerState>, UnixListener, Origin, Option<u64>)>,
    metrics_listener: Option<MetricsListener>,
    audit_thread: Option<std::thread::JoinHandle<()>>,
    notes: Vec<String>,
    drain_timeout: Duration,
    handle_signals: bool,
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
        let rules = match &cfg.policy {
            PolicySource::Embedded => Rules::embedded_default(),
            PolicySource::PolicyFile(p) => Rules::from_file(p)?,
            PolicySource::GateConfig(p) => GateConfig::load(p)?.rules,
        };
        let identifier = Identifier::new().map_err(Error::Identifier)?;
        notes.push(
            "connect-time cgroup capture (BPF) is not built in: cgroup comes from the peer's pidfd (kernel_now)".into(),
        );

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
            let state = ListenerState {
                ctx: ListenerCtx {
                    name: name.clone(),
                    tenant: spec.tenant.clone(),
                },
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
            identifier,
            policy: PolicyHandle::new(rules, cfg.policy.clone()),
            metrics,
            audit,
            seq: AtomicU64::new(0),
            stop: CancellationToken::new(),
            hard: CancellationToken::new(),
            tracker: TaskTracker::new(),
            notify: cfg.notify,
        });
        Ok(Self {
            shared,
            listeners,
            metrics_listener,
            audit_thread,
            notes,
            drain_timeout: cfg.drain_timeout,
            handle_signals: cfg.handle_signals,
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
                    Origin::Activated(_) => st.spec.path.clone(),
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
        let signals = if self.handle_signals {
            Some(spawn_signal_task(self.shared.clone())?)
        } else {
            None
        };

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
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        Ok(())
    }
}

fn notify(shared: &Shared, states: &[sd_notify::NotifyState<'_>]) {
    if shared.notify {
        if let Err(e) = sd_notify::notify(states) {
            tracing::debug!(error = %e, "sd_notify");
        }
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

fn spawn_signal_task(shared: Arc<Shared>) -> Result<tokio::task::JoinHandle<()>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let err = |source| Error::Io {
        what: "install signal handler",
        source,
    };
    let mut hup = signal(SignalKind::hangup()).map_err(err)?;
    let mut term = signal(SignalKind::terminate()).map_err(err)?;
    let mut int = signal(SignalKind::interrupt()).map_err(err)?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hup.recv() => { let _ = reload(&shared); }
                _ = term.recv() => { tracing::info!("SIGTERM: stop accepting, draining"); shared.stop.cancel(); }
                _ = int.recv() => { tracing::info!("SIGINT: stop accepting, draining"); shared.stop.cancel(); }
            }
        }
    }))
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

/// Identifies and decides. A failed identification is a deny with the reason.
fn identify_and_decide(
    shared: &Shared,
    st: &ListenerState,
    stream: &UnixStream,
) -> (Option<Identity>, Verdict) {
    let t0 = Instant::now();
    let identity = shared.identifier.identify(stream);
    st.identify_seconds.observe(t0.elapsed().as_secs_f64());
    match identity {
        Ok(identity) => {
            let t1 = Instant::now();
            let verdict = shared.policy.get().decide(&identity, &st.ctx);
            st.decide_seconds.observe(t1.elapsed().as_secs_f64());
            (Some(identity), verdict)
        }
        Err(e) => {
            let reason = failure_label(&e);
            shared
                .metrics
                .identify_failures
                .get_or_create(&ReasonLabels {
                    listener: st.label.listener.clone(),
                    reason,
                })
                .inc();
            (
                None,
                Verdict::refuse(format!("identification failed: {}", error_chain(&e))),
            )
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn count_verdict(shared: &Shared, st: &ListenerState, v: &Verdict) {
    let labels = RuleLabels {
        listener: st.label.listener.clone(),
        rule: Arc::from(v.rule.as_deref().unwrap_or("")),
    };
    if v.allow {
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
    verdict: Verdict,
) {
    shared.audit.record(AuditEvent {
        time: SystemTime::now(),
        connection: conn,
        listener: st.label.listener.clone(),
        identity,
        verdict,
    });
}

#[derive(Serialize)]
struct Answer<'a> {
    identity: Option<&'a Identity>,
    decision: &'a Verdict,
}

/// serve: identify, decide, answer one line, close — inline on the accept worker.
fn serve_one(shared: &Arc<Shared>, st: &Arc<ListenerState>, stream: UnixStream, buf: &mut Vec<u8>) {
    let conn = shared.seq.fetch_add(1, Ordering::Relaxed);
    let (identity, verdict) = identify_and_decide(shared, st, &stream);
    count_verdict(shared, st, &verdict);
    buf.clear();
    // A denied caller learns the decision, not what we know about it.
    let shown = if verdict.allow {
        identity.as_ref()
    } else {
        None
    };
    if serde_json::to_writer(
        &mut *buf,
        &Answer {
            identity: shown,
            decision: &verdict,
        },
    )
    .is_err()
    {
        buf.clear();
    }
    buf.push(b'\n');
    audit(shared, st, conn, identity, verdict);
    match stream.try_write(buf) {
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

/// gate: identify, decide and check limits inline; connect to the backend and relay
/// on a task of its own.
fn gate_one(shared: &Arc<Shared>, st: &Arc<ListenerState>, stream: UnixStream) {
    let accepted_at = Instant::now();
    let conn = shared.seq.fetch_add(1, Ordering::Relaxed);
    let (identity, mut verdict) = identify_and_decide(shared, st, &stream);
    let mut slot = None;
    if verdict.allow {
        let key = match (&identity, st.limits.wants_identity_key()) {
            (Some(id), true) => Some(st.limits.key(id)),
            _ => None,
        };
        match st.limits.admit(key) {
            Ok(s) => slot = Some(s),
            Err(refusal) => {
                shared
                    .metrics
                    .limit_rejections
                    .get_or_create(&ReasonLabels {
                        listener: st.label.listener.clone(),
                        reason: refusal.label(),
                    })
                    .inc();
                verdict = Verdict {
                    allow: false,
                    rule: verdict.rule,
                    reasons: vec![refusal.reason()],
                };
            }
        }
    }
    let (identity, slot) = match (identity, slot) {
        (Some(identity), Some(slot)) if verdict.allow => (identity, slot),
        (identity, _) => {
            count_verdict(shared, st, &verdict);
            audit(shared, st, conn, identity, verdict);
            return; // dropping the stream closes it at once
        }
    };
    let mut header = Vec::new();
    if st.spec.proxy_protocol {
        if let Err(e) = crate::proxy::for_connection(
            &st.spec.name,
            &st.path_bytes,
            &identity,
            verdict.rule.as_deref(),
            &mut header,
        ) {
            tracing::warn!(listener = %st.spec.name, error = %e, "PROXY header");
        }
    }
    let shared2 = shared.clone();
    let st2 = st.clone();
    shared.tracker.spawn(async move {
        forward_one(
            shared2,
            st2,
            stream,
            identity,
            verdict,
            conn,
            slot,
            header,
            accepted_at,
        )
        .await;
    });
}

#[allow(clippy::too_many_arguments)]
async fn forward_one(
    shared: Arc<Shared>,
    st: Arc<ListenerState>,
    client: UnixStream,
    identity: Identity,
    mut verdict: Verdict,
    conn: u64,
    slot: Slot,
    header: Vec<u8>,
    accepted_at: Instant,
) {
    let Some(backend_path) = st.spec.backend.clone() else {
        return;
    };
    let budget = st
        .spec
        .decision_timeout
        .saturating_sub(accepted_at.elapsed());
    let connect = async {
        let b = connect_backend(&backend_path).await?;
        if !header.is_empty() {
            use tokio::io::AsyncWriteExt;
            let mut b = b;
            b.write_all(&header).await?;
            return Ok::<_, io::Error>(b);
        }
        Ok(b)
    };
    let backend = match tokio::time::timeout(budget, connect).await {
        Ok(Ok(b)) => Some(b),
        Ok(Err(e)) => {
            verdict = Verdict {
                allow: false,
                rule: verdict.rule,
                reasons: vec![format!("backend {}: {e}", backend_path.display())],
            };
            None
        }
        Err(_) => {
            shared
                .metrics
                .limit_rejections
                .get_or_create(&ReasonLabels {
                    listener: st.label.listener.clone(),
                    reason: "decision_timeout",
                })
                .inc();
            verdict = Verdict {
                allow: false,
                rule: verdict.rule,
                reasons: vec![format!(
                    "limit: no decision within decision_timeout = {:?} (backend connect)",
                    st.spec.decision_timeout
                )],
            };
            None
        }
    };
    count_verdict(&shared, &st, &verdict);
    audit(&shared, &st, conn, Some(identity), verdict);
    let Some(backend) = backend else { return };
    st.active.inc();
    let end = forward::relay(
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
        tracing::debug!(listener = %st.spec.name, connection = conn, ?end, "relay ended");
    }
    drop(slot);
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
