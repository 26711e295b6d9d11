//! gate forwarding: large payloads both ways at once, half-close in each direction.

use crate::support::*;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

const SIZE: usize = 3 * 1024 * 1024 + 17;

fn payload(seed: u8) -> Vec<u8> {
    (0..SIZE)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Sends `data` on a clone of the socket, then half-closes; reads everything back.
fn duplex(s: UnixStream, data: Vec<u8>) -> Vec<u8> {
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(&data).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut r = s;
    r.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    got
}

const CONFIG: &str = r#"
version = 1
default = "allow"

[[listener]]
name = "fwd"
path = "{dir}/gate.sock"
backend = "{dir}/backend.sock"
"#;

#[test]
fn megabytes_both_ways_with_half_close() {
    megabytes_both_ways(callerid_daemon::RelayMode::Copy);
}

#[test]
fn megabytes_both_ways_with_half_close_auto() {
    megabytes_both_ways(callerid_daemon::RelayMode::Auto);
}

#[test]
fn megabytes_both_ways_with_half_close_spliced() {
    megabytes_both_ways(callerid_daemon::RelayMode::Splice);
}

fn megabytes_both_ways(mode: callerid_daemon::RelayMode) {
    let d = TestDaemon::gate_tuned(CONFIG, |c| c.relay = mode);
    let l = UnixListener::bind(d.path("backend.sock")).unwrap();
    let backend = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        duplex(s, payload(7))
    });
    let got_by_client = duplex(UnixStream::connect(&d.socket).unwrap(), payload(1));
    let got_by_backend = backend.join().unwrap();
    assert!(
        got_by_backend == payload(1),
        "backend got {} bytes",
        got_by_backend.len()
    );
    assert!(
        got_by_client == payload(7),
        "client got {} bytes",
        got_by_client.len()
    );
    let text = d.scrape();
    assert_eq!(
        sample(
            &text,
            r#"callerid_forwarded_bytes_total{listener="fwd",direction="to_backend"}"#
        ),
        Some(SIZE as f64)
    );
    assert_eq!(
        sample(
            &text,
            r#"callerid_forwarded_bytes_total{listener="fwd",direction="to_client"}"#
        ),
        Some(SIZE as f64)
    );
}

#[test]
fn client_half_close_keeps_the_answer_coming() {
    // Request/response over a half-closed connection: the backend reads to EOF, then
    // answers. Works only if the gate propagates shutdown(SHUT_WR) and keeps the
    // other direction open.
    let d = TestDaemon::gate(CONFIG);
    let l = UnixListener::bind(d.path("backend.sock")).unwrap();
    let backend = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).unwrap();
        s.write_all(format!("got {} bytes", req.len()).as_bytes())
            .unwrap();
    });
    let mut c = UnixStream::connect(&d.socket).unwrap();
    c.write_all(&vec![b'x'; 2 * 1024 * 1024]).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, format!("got {} bytes", 2 * 1024 * 1024));
    backend.join().unwrap();
}

#[test]
fn backend_half_close_keeps_the_upload_going() {
    let d = TestDaemon::gate(CONFIG);
    let l = UnixListener::bind(d.path("backend.sock")).unwrap();
    let backend = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"hello, send me everything").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).unwrap();
        req.len()
    });
    let mut c = UnixStream::connect(&d.socket).unwrap();
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut greet = String::new();
    c.read_to_string(&mut greet).unwrap(); // EOF arrives: the backend half-closed
    assert_eq!(greet, "hello, send me everything");
    c.write_all(&vec![b'y'; 1536 * 1024]).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(backend.join().unwrap(), 1536 * 1024);
}

#[test]
fn denied_connections_are_closed_at_once() {
    let d = TestDaemon::gate(&CONFIG.replace("default = \"allow\"", "default = \"deny\""));
    let _backend = echo_backend(&d.path("backend.sock"));
    let mut c = UnixStream::connect(&d.socket).unwrap();
    assert!(refused(&mut c));
    let audit = d.audit_lines(1);
    assert_eq!(audit[0]["allow"], false);
    assert_eq!(audit[0]["listener"], "fwd");
}
