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

/// How bytes are moved between the two sockets (measured in `benches/relay.rs` and
/// `benches/connections.rs`; numbers in docs/daemon.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayMode {
    /// Copy through user space until a direction has moved [`SPLICE_AFTER`] bytes,
    /// then splice it. Short request/response connections never pay for pipes; bulk
    /// transfers get zero-copy. The default.
    #[default]
    Auto,
    /// `read`/`write` through a user-space buffer (lazily allocated, 32 KiB per
    /// direction).
    Copy,
    /// `splice(2)` through a pipe per direction (made on the first byte): no copy to
    /// user space, two more descriptors per active direction.
    Splice,
}

/// Bytes a direction moves by copying before [`RelayMode::Auto`] switches it to
/// splice: creating the pipe costs about as much as copying this much.
pub const SPLICE_AFTER: u64 = 256 * 1024;

/// Relays until both directions are done, an error, the idle timeout, or `cancel`.
pub(crate) async fn relay(
    mode: RelayMode,
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
            pump(mode, client, backend, to_backend, &last, epoch),
            pump(mode, backend, client, to_client, &last, epoch)
        )
        .map(|_| ())
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
    mode: RelayMode,
    from: &UnixStream,
    to: &UnixStream,
    counter: &Counter,
    last: &AtomicU64,
    epoch: Instant,
) -> io::Result<()> {
    let switch_at = match mode {
        RelayMode::Splice => 0,
        RelayMode::Auto => SPLICE_AFTER,
        RelayMode::Copy => u64::MAX,
    };
    let mut moved = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if moved >= switch_at {
            // Everything read so far has been written: the stream is at a clean cut.
            drop(buf);
            return pump_splice(from, to, counter, last, epoch).await;
        }
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
        moved += n as u64;
    }
    half_close(to)
}

/// The source will send no more: tell the other side, keep the reverse direction.
fn half_close(to: &UnixStream) -> io::Result<()> {
    match rustix::net::shutdown(to.as_fd(), rustix::net::Shutdown::Write) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::NOTCONN => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Pipe capacity for splicing (the unprivileged maximum by default).
const PIPE: usize = 1 << 20;

async fn pump_splice(
    from: &UnixStream,
    to: &UnixStream,
    counter: &Counter,
    last: &AtomicU64,
    epoch: Instant,
) -> io::Result<()> {
    use rustix::pipe::{PipeFlags, SpliceFlags, pipe_with, splice};
    use tokio::io::Interest;
    let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    // The pipe is made on the first readable event: an idle direction holds no fds.
    let mut pipe = None;
    loop {
        from.readable().await?;
        let (pr, pw, cap) = match &pipe {
            Some(p) => p,
            None => {
                let (pr, pw) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
                let cap = rustix::pipe::fcntl_setpipe_size(&pw, PIPE).unwrap_or(64 * 1024);
                pipe.insert((pr, pw, cap))
            }
        };
        let (pr, pw, cap) = (pr, pw, *cap);
        let n = match from.try_io(Interest::READABLE, || {
            splice(from, None, pw, None, cap, flags).map_err(io::Error::from)
        }) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let mut left = n;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(pr, None, to, None, left, flags).map_err(io::Error::from)
            }) {
                Ok(k) => left -= k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        counter.inc_by(n as u64);
    }
    half_close(to)
}
