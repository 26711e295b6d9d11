//! Plain Unix-socket helpers for tests that talk to a daemon from outside: an echo
//! backend behind a gate, a one-message round trip through it, and reading a whole
//! answer from `serve`.
//!
//! Each takes the caller's patience (an upper bound for a blocking read, not a timing
//! assertion) so every test binary keeps its own.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

/// Binds `path` and, on a thread per connection, sends back everything a client sends
/// until it shuts down its writing side.
pub fn echo_backend(path: &Path) -> io::Result<JoinHandle<()>> {
    let l = UnixListener::bind(path)?;
    Ok(std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let Ok(mut r) = s.try_clone() else { return };
                let _ = std::io::copy(&mut r, &mut s);
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
        }
    }))
}

/// Sends `msg` over an established connection and reads as many bytes back: `Ok(true)`
/// when they are `msg` again, `Ok(false)` when the connection refuses, closes or answers
/// something else. An error only when the read timeout cannot be set.
pub fn roundtrip(s: &mut UnixStream, msg: &str, patience: Duration) -> io::Result<bool> {
    s.set_read_timeout(Some(patience))?;
    if s.write_all(msg.as_bytes()).is_err() {
        return Ok(false);
    }
    let mut got = vec![0u8; msg.len()];
    Ok(s.read_exact(&mut got).is_ok() && got == msg.as_bytes())
}

/// Connects to `socket` and reads everything until the other side closes.
pub fn ask(socket: &Path, patience: Duration) -> io::Result<String> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(patience))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
