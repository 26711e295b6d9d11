//! Prometheus metrics and the endpoint that serves them in the text format.

use crate::error::Error;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ListenerLabel {
    pub(crate) listener: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RuleLabels {
    pub(crate) listener: Arc<str>,
    pub(crate) rule: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    pub(crate) listener: Arc<str>,
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DirectionLabels {
    pub(crate) listener: Arc<str>,
    pub(crate) direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabel {
    pub(crate) result: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 µs .. ~0.5 s: identification is microseconds, decision timeouts are seconds.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        1e-6, 2.0, 20,
    ))
}

/// Every metric the daemon exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) accepted: Family<ListenerLabel, Counter>,
    pub(crate) allowed: Family<RuleLabels, Counter>,
    pub(crate) denied: Family<RuleLabels, Counter>,
    pub(crate) identify_failures: Family<ReasonLabels, Counter>,
    pub(crate) limit_rejections: Family<ReasonLabels, Counter>,
    pub(crate) identify_seconds: Family<ListenerLabel, Histogram, fn() -> Histogram>,
    pub(crate) decide_seconds: Family<ListenerLabel, Histogram, fn() -> Histogram>,
    pub(crate) active: Family<ListenerLabel, Gauge>,
    pub(crate) bytes: Family<DirectionLabels, Counter>,
    pub(crate) audit_dropped: Counter,
    pub(crate) reloads: Family<ResultLabel, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("callerid");
        let accepted = Family::default();
        let allowed = Family::default();
        let denied = Family::default();
        let identify_failures = Family::default();
        let limit_rejections = Family::default();
        let identify_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let decide_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let active = Family::default();
        let bytes = Family::default();
        let audit_dropped = Counter::default();
        let reloads = Family::default();
        registry.register(
            "connections_accepted",
            "Connections accepted, by listener",
            accepted.clone(),
        );
        registry.register(
            "connections_allowed",
            "Connections allowed, by listener and rule",
            allowed.clone(),
        );
        registry.register(
            "connections_denied",
            "Connections denied, by listener and rule",
            denied.clone(),
        );
        registry.register(
            "identify_failures",
            "Identification failures (each denied), by listener and reason",
            identify_failures.clone(),
        );
        registry.register(
            "limit_rejections",
            "Connections refused by a limit (max_connections, max_per_identity, decision_timeout)",
            limit_rejections.clone(),
        );
        registry.register_with_unit(
            "identify_duration",
            "Time to identify a connection's peer",
            prometheus_client::registry::Unit::Seconds,
            identify_seconds.clone(),
        );
        registry.register_with_unit(
            "decide_duration",
            "Time to evaluate the policy for one connection",
            prometheus_client::registry::Unit::Seconds,
            decide_seconds.clone(),
        );
        registry.register(
            "connections_active",
            "Connections open now, by listener",
            active.clone(),
        );
        registry.register_with_unit(
            "forwarded",
            "Bytes forwarded by gate listeners, by direction",
            prometheus_client::registry::Unit::Bytes,
            bytes.clone(),
        );
        registry.register(
            "audit_dropped",
            "Audit records dropped because the audit queue was full",
            audit_dropped.clone(),
        );
        registry.register(
            "policy_reloads",
            "Policy reloads, by result",
            reloads.clone(),
        );
        Self {
            registry,
            accepted,
            allowed,
            denied,
            identify_failures,
            limit_rejections,
            identify_seconds,
            decide_seconds,
            active,
            bytes,
            audit_dropped,
            reloads,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Where the metrics endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAddr {
    /// A loopback TCP address.
    Tcp(std::net::SocketAddr),
    /// A Unix socket path.
    Unix(std::path::PathBuf),
}

impl MetricsAddr {
    /// `127.0.0.1:9099` / `[::1]:9099` (loopback only: the metrics name rules and
    /// listeners), or a path (anything containing `/`).
    pub fn parse(s: &str) -> Result<Self, Error> {
        if let Ok(addr) = s.parse::<std::net::SocketAddr>() {
            if !addr.ip().is_loopback() {
                return Err(Error::Metrics {
                    addr: s.into(),
                    what: "only loopback TCP addresses are served (use a Unix path otherwise)"
                        .into(),
                    source: None,
                });
            }
            return Ok(Self::Tcp(addr));
        }
        if s.contains('/') {
            return Ok(Self::Unix(s.into()));
        }
        Err(Error::Metrics {
            addr: s.into(),
            what: "neither IP:PORT nor a path".into(),
            source: None,
        })
    }
}

pub(crate) enum MetricsListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, std::path::PathBuf, Option<u64>),
}

impl MetricsListener {
    pub(crate) fn bind(addr: &MetricsAddr) -> Result<Self, Error> {
        let err = |what: &str, e: std::io::Error| Error::Metrics {
            addr: format!("{addr:?}"),
            what: what.into(),
            source: Some(e),
        };
        match addr {
            MetricsAddr::Tcp(a) => {
                let l = std::net::TcpListener::bind(a).map_err(|e| err("bind", e))?;
                l.set_nonblocking(true)
                    .map_err(|e| err("set non-blocking", e))?;
                Ok(Self::Tcp(
                    tokio::net::TcpListener::from_std(l).map_err(|e| err("register", e))?,
                ))
            }
            MetricsAddr::Unix(p) => {
                let l = crate::listener::bind("metrics", p, Some(0o660), None)?;
                let ino = crate::listener::path_inode(p);
                Ok(Self::Unix(
                    tokio::net::UnixListener::from_std(l).map_err(|e| err("register", e))?,
                    p.clone(),
                    ino,
                ))
            }
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Tcp(l) => l
                .local_addr()
                .map(|a| format!("http://{a}/metrics"))
                .unwrap_or_default(),
            Self::Unix(_, p, _) => format!("unix:{}", p.display()),
        }
    }

    /// Serves until `stop` fires; each scrape is answered on its own task.
    pub(crate) async fn serve(
        self,
        metrics: Arc<Metrics>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                r = accept(&self) => match r {
                    Ok(Conn::Tcp(s)) => { tokio::spawn(answer(s, metrics.clone())); }
                    Ok(Conn::Unix(s)) => { tokio::spawn(answer(s, metrics.clone())); }
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics endpoint: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        if let Self::Unix(_, p, ino) = &self {
            crate::listener::unlink_if_ours(p, *ino);
        }
    }
}

enum Conn {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(l: &MetricsListener) -> std::io::Result<Conn> {
    match l {
        MetricsListener::Tcp(l) => l.accept().await.map(|(s, _)| Conn::Tcp(s)),
        MetricsListener::Unix(l, _, _) => l.accept().await.map(|(s, _)| Conn::Unix(s)),
    }
}

/// A minimal HTTP/1.x answer: whatever the request line says, the metrics are the
/// reply (the endpoint serves nothing else). The request is read with a size and
/// time bound so a stuck scraper holds nothing.
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    metrics: Arc<Metrics>,
) {
    let mut buf = [0u8; 4096];
    let mut got = 0;
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf[got..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    got += n;
                    if buf[..got].windows(4).any(|w| w == b"\r\n\r\n")
                        || buf[..got].windows(2).any(|w| w == b"\n\n")
                        || got == buf.len()
                    {
                        return;
                    }
                }
            }
        }
    })
    .await;
    if read.is_err() {
        return;
    }
    let (status, body) = if buf[..got].starts_with(b"GET ") {
        ("200 OK", metrics.render())
    } else {
        ("405 Method Not Allowed", String::from("only GET\n"))
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(body.as_bytes()).await;
        let _ = s.shutdown().await;
    })
    .await;
}
