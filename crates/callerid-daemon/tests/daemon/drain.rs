//! Shutdown: stop accepting at once, let open connections finish.

use crate::support::*;
use std::os::unix::net::UnixStream;

#[test]
fn shutdown_stops_accepting_and_drains() {
    let d = TestDaemon::gate(
        r#"
version = 1
default = "allow"

[[listener]]
name = "dr"
path = "{dir}/gate.sock"
backend = "{dir}/backend.sock"
"#,
    );
    let _b = echo_backend(&d.path("backend.sock"));
    let mut open = UnixStream::connect(&d.socket).unwrap();
    assert!(roundtrip(&mut open, "one\n"));
    let socket = d.socket.clone();
    d.stop_while(|_| {
        // The listener goes away (the file is removed once accepting stopped) ...
        let deadline = std::time::Instant::now() + PATIENCE;
        while socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "socket file never removed"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            UnixStream::connect(&socket).is_err(),
            "no new connections while draining"
        );
        // ... while the open connection keeps working until its client closes it.
        assert!(
            roundtrip(&mut open, "two\n"),
            "open connection served during the drain"
        );
        drop(open);
    });
}

#[test]
fn drain_deadline_closes_what_is_left() {
    let dir_cfg = r#"
version = 1
default = "allow"

[[listener]]
name = "dl"
path = "{dir}/gate.sock"
backend = "{dir}/backend.sock"
"#;
    let d = TestDaemon::gate(dir_cfg);
    let _b = echo_backend(&d.path("backend.sock"));
    let mut open = UnixStream::connect(&d.socket).unwrap();
    assert!(roundtrip(&mut open, "one\n"));
    // The test daemon's drain timeout is 2 s; the client never closes.
    d.stop_while(|_| {});
    assert!(refused(&mut open), "closed by the drain deadline");
}
