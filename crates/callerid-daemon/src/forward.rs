//! Relaying an allowed connection to its backend: both directions at once, half-close
//! propagated (`shutdown(SHUT_WR)` on the other side when one side stops sending),
//! idle timeout, byte counters.

use prometheus_client::metrics::counter::Counter;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UnixStream;

/// Relay buffer per direction, allocated on the first byte (idle connections hold
/// none).
const BUF: usize = 32 * 1024;

/// How a relay ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Both sides finished sending.
    Done,
    /// Nothing moved for the idle timeout.
    Idle,
    /// A socket error (reset, broken pipe).
    Error(io::ErrorKind),
    /// The daemon's drain deadline passed.
    Cancelled,
}

/// Relays until both directions are done, an error, the idle timeout, or `cancel`.
pub(crate) async fn relay(
    client: &UnixStream,
    backend: &UnixStream,
    idle: Option<Duration>,
    to_backend: &Counter,
    to_client: &Counter,
    cancel: &tokio_util::sync::CancellationToken,
) -> End {
    let epoch = Instant::now();
    let last = AtomicU64::new(0);
    let both = async {
        tokio::try_join!(
            pump(client, backend, to_backend, &last, epoch),
            pump(backend, client, to_client, &last, epoch)
        )
    };
    let idle_watch = async {
        match idle {
            Some(idle) => loop {
                let seen = last.load(Ordering::Relaxed);
                tokio::time::sleep_until((epoch + Duration::from_millis(seen) + idle).into()).await;
                if last.load(Ordering::Relaxed) == seen {
                    return;
                }
            },
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = both => match r {
            Ok(_) => End::Done,
            Err(e) => End::Error(e.kind()),
        },
        () = idle_watch => End::Idle,
        () = cancel.cancelled() => End::Cancelled,
    }
}

async fn pump(
    from: &UnixStream,
    to: &UnixStream,
    counter: &Counter,
    last: &AtomicU64,
    epoch: Instant,
) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        from.readable().await?;
        if buf.is_empty() {
            buf.resize(BUF, 0);
        }
        let n = match from.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let mut off = 0;
        while off < n {
            to.writable().await?;
            match to.try_write(&buf[off..n]) {
                Ok(k) => off += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        counter.inc_by(n as u64);
    }
    // The source will send no more: tell the other side, keep the reverse direction.
    match rustix::net::shutdown(to.as_fd(), rustix::net::Shutdown::Write) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::NOTCONN => Ok(()),
        Err(e) => Err(e.into()),
    }
}
