//! The audit log: one JSON line per decision, written by its own thread so that a slow
//! disk or a blocked stdout never reaches the accept loop. The queue is bounded; a full
//! queue drops the record and counts it (`callerid_audit_dropped_total`).

use crate::decision::{Current, Decision};
use callerid::{CgroupAt, Identity, Provenance};
use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::SystemTime;

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    /// Standard output.
    Stdout,
    /// Appended to this file (reopened on reload, for log rotation).
    File(PathBuf),
}

/// One decision to record.
#[derive(Debug)]
pub(crate) struct AuditEvent {
    pub(crate) time: SystemTime,
    pub(crate) connection: u64,
    pub(crate) listener: Arc<str>,
    pub(crate) identity: Option<Identity>,
    pub(crate) decision: AuditDecision,
}

/// The decision of an audit record.
#[derive(Debug)]
pub(crate) enum AuditDecision {
    /// Made in full on the accept path.
    Made(Decision),
    /// Made without reasons on the accept path (no allocation there); the writer
    /// rebuilds the full decision from the same immutable policy and identity.
    Deferred {
        current: std::sync::Arc<Current>,
        outcome: callerid_policy::Outcome,
    },
}

/// The sending side, shared by every accept worker.
#[derive(Debug, Clone)]
pub(crate) struct Audit {
    tx: Option<SyncSender<AuditEvent>>,
    dropped: Counter,
    reopen: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
}

impl Audit {
    /// No audit log.
    pub(crate) fn disabled(dropped: Counter) -> Self {
        Self {
            tx: None,
            dropped,
            reopen: Arc::new(AtomicBool::new(false)),
            closed: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Starts the writer thread. Fails if the file cannot be opened now (later
    /// failures are logged and the writer keeps trying on reopen).
    pub(crate) fn start(
        sink: AuditSink,
        capacity: usize,
        dropped: Counter,
    ) -> Result<(Self, std::thread::JoinHandle<()>), crate::Error> {
        let out = open(&sink)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity.max(1));
        let reopen = Arc::new(AtomicBool::new(false));
        let flag = reopen.clone();
        let closed = Arc::new(AtomicBool::new(false));
        let closed2 = closed.clone();
        let handle = std::thread::Builder::new()
            .name("callerid-audit".into())
            .spawn(move || writer(rx, out, sink, flag, closed2))
            .map_err(|source| crate::Error::Io {
                what: "spawn audit writer thread",
                source,
            })?;
        Ok((
            Self {
                tx: Some(tx),
                dropped,
                reopen,
                closed,
            },
            handle,
        ))
    }

    /// Queues a record without ever waiting.
    pub(crate) fn record(&self, ev: AuditEvent) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(ev) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.inc();
            }
        }
    }

    /// Asks the writer to reopen its file before the next line.
    pub(crate) fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Ends the log: the writer writes what is queued and exits, even while other
    /// clones of the sender are still alive.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

fn open(sink: &AuditSink) -> Result<Box<dyn Write + Send>, crate::Error> {
    match sink {
        AuditSink::Stdout => Ok(Box::new(std::io::stdout())),
        AuditSink::File(p) => {
            use std::os::unix::fs::OpenOptionsExt;
            // Audit lines describe other users' processes: not world-readable.
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(p)
                .map_err(|source| crate::Error::File {
                    what: "open audit log",
                    path: p.clone(),
                    source,
                })?;
            Ok(Box::new(f))
        }
    }
}

fn writer(
    rx: Receiver<AuditEvent>,
    out: Box<dyn Write + Send>,
    sink: AuditSink,
    reopen: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut line = Vec::with_capacity(2048);
    loop {
        let ev = match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(ev) => ev,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !closed.load(Ordering::Acquire) => {
                continue;
            }
            Err(_) => match rx.try_recv() {
                Ok(ev) => ev,
                Err(_) => break,
            },
        };
        let mut next = Some(ev);
        // Write everything queued, then flush once: one syscall per burst.
        while let Some(ev) = next {
            if reopen.swap(false, Ordering::Relaxed) {
                let _ = out.flush();
                match open(&sink) {
                    Ok(f) => out = std::io::BufWriter::with_capacity(64 * 1024, f),
                    Err(e) => {
                        tracing::error!(error = %e, "audit: reopen failed, keeping the old file")
                    }
                }
            }
            line.clear();
            let decision = match &ev.decision {
                AuditDecision::Made(d) => std::borrow::Cow::Borrowed(d),
                AuditDecision::Deferred { current, outcome } => {
                    std::borrow::Cow::Owned(match &ev.identity {
                        Some(id) => current.rules.decide(id, &ev.listener),
                        None => Decision {
                            allow: outcome.allow,
                            rule: None,
                            reasons: Vec::new(),
                        },
                    })
                }
            };
            if serde_json::to_writer(&mut line, &AuditLine::new(&ev, &decision)).is_ok() {
                line.push(b'\n');
                if let Err(e) = out.write_all(&line) {
                    tracing::error!(error = %e, "audit: write failed");
                }
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            tracing::error!(error = %e, "audit: flush failed");
        }
    }
    let _ = out.flush();
}

/// The audit line (documented in docs/daemon.md; names are stable).
#[derive(Serialize)]
struct AuditLine<'a> {
    time: Rfc3339,
    connection: u64,
    listener: &'a str,
    allow: bool,
    rule: Option<&'a str>,
    reasons: &'a [String],
    peer: Option<PeerLine>,
    pidfs_id: Option<u64>,
    process_state: Option<callerid::ProcessState>,
    cgroup: Option<CgroupLine<'a>>,
    container: Option<&'a callerid::workload::ContainerRef<'static>>,
    pod: Option<&'a callerid::workload::Pod<'static>>,
    unit: Option<&'a str>,
    user_unit: Option<&'a str>,
    drift: Option<&'a [callerid::DriftKind]>,
    warnings: Vec<&'a str>,
}

#[derive(Serialize)]
struct PeerLine {
    pid: Option<u32>,
    uid: u32,
    gid: u32,
}

#[derive(Serialize)]
struct CgroupLine<'a> {
    id: u64,
    path: Option<&'a str>,
    at: CgroupAt,
    provenance: Option<Provenance>,
}

impl<'a> AuditLine<'a> {
    fn new(ev: &'a AuditEvent, decision: &'a Decision) -> Self {
        let id = ev.identity.as_ref();
        let wl = id.and_then(|i| i.workload());
        Self {
            time: Rfc3339(ev.time),
            connection: ev.connection,
            listener: &ev.listener,
            allow: decision.allow,
            rule: decision.rule.as_deref(),
            reasons: &decision.reasons,
            peer: id.map(|i| {
                let p = i.peer();
                PeerLine {
                    pid: p.pid.map(|p| p.get()),
                    uid: p.uid.get(),
                    gid: p.gid.get(),
                }
            }),
            pidfs_id: id
                .and_then(|i| i.process())
                .and_then(|p| p.pidfs_id)
                .map(|p| p.get()),
            process_state: id.and_then(|i| i.process()).map(|p| p.state),
            cgroup: id.and_then(|i| {
                i.cgroup().map(|c| CgroupLine {
                    id: c.id.get(),
                    path: c.path.as_deref(),
                    at: c.at,
                    provenance: i.provenance().cgroup,
                })
            }),
            container: wl.and_then(|w| w.container.as_ref()),
            pod: wl.and_then(|w| w.pod.as_ref()),
            unit: wl.and_then(|w| w.unit.as_deref()),
            user_unit: wl.and_then(|w| w.user_unit.as_deref()),
            drift: id.and_then(|i| i.drift()).map(|d| d.changed.as_slice()),
            warnings: id
                .map(|i| i.warnings().iter().map(|w| w.code.as_str()).collect())
                .unwrap_or_default(),
        }
    }
}

/// A UTC time in RFC 3339 with microseconds, e.g. `2026-12-04T16:05:09.123456Z`.
pub(crate) struct Rfc3339(pub(crate) SystemTime);

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self
            .0
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = d.as_secs();
        let days = i64::try_from(secs / 86_400).unwrap_or(0);
        let rem = secs % 86_400;
        let (y, m, day) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            d.subsec_micros()
        )
    }
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m as u32, d as u32)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_796_400_309, 123_456_000);
        assert_eq!(Rfc3339(t).to_string(), "2026-12-04T16:05:09.123456Z");
        assert_eq!(
            Rfc3339(SystemTime::UNIX_EPOCH).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(Rfc3339(leap).to_string(), "2000-02-29T00:00:00.000000Z");
    }
}
