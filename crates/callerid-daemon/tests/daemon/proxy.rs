//! The PROXY v2 header a gate sends to its backend, parsed back.

use crate::support::*;
use callerid_daemon::proxy::{Command, Header, Tlv};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

/// A gate listener `pp` that sends the PROXY header, and a backend thread that returns
/// all it received on the one connection it accepts.
fn gate_with_recording_backend() -> (TestDaemon, std::thread::JoinHandle<Vec<u8>>) {
    let d = TestDaemon::gate(
        r#"
version = 1
default = "allow"

[[listener]]
name = "pp"
path = "{dir}/gate.sock"
backend = "{dir}/backend.sock"
proxy_protocol = true
"#,
    );
    let l = UnixListener::bind(d.path("backend.sock")).unwrap();
    let backend = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    (d, backend)
}

#[test]
fn header_carries_the_callers_identity() {
    let (d, backend) = gate_with_recording_backend();
    let mut c = UnixStream::connect(&d.socket).unwrap();
    c.write_all(b"first client bytes").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let all = backend.join().unwrap();
    let (h, used) = Header::parse(&all).unwrap();
    assert_eq!(
        &all[used..],
        b"first client bytes",
        "the header comes first, then the client's bytes"
    );
    assert_eq!(h.command, Some(Command::Proxy));
    let (src, dst) = h.unix.clone().unwrap();
    assert!(src.is_empty(), "an unbound client has no address");
    assert_eq!(dst, d.socket.as_os_str().as_encoded_bytes());
    assert_eq!(
        h.tlv_u32(Tlv::Uid),
        Some(rustix::process::geteuid().as_raw())
    );
    assert_eq!(
        h.tlv_u32(Tlv::Gid),
        Some(rustix::process::getegid().as_raw())
    );
    assert_eq!(h.tlv_u32(Tlv::Pid), Some(std::process::id()));
    assert_eq!(h.tlv(Tlv::Listener), Some(&b"pp"[..]));
    let json: serde_json::Value =
        serde_json::from_slice(h.tlv(Tlv::IdentityJson).unwrap()).unwrap();
    assert_eq!(json["peer"]["pid"], std::process::id());
    assert_eq!(h.tlv_u64(Tlv::CgroupId), json["cgroup"]["id"].as_u64());
    assert_eq!(
        h.tlv_u64(Tlv::PidfsId),
        json["process"]["pidfs_id"].as_u64()
    );
    // The gate collects what its rules, audit and header use, nothing more.
    assert!(json["namespaces"].is_null(), "{json}");
    assert_eq!(json["provenance"]["namespaces"], "not_collected", "{json}");
    assert_eq!(
        json["provenance"]["user_namespace"], "not_collected",
        "{json}"
    );
    for (kind, _) in &h.tlvs {
        assert!(
            (0xE0..=0xEF).contains(kind),
            "only custom-range TLVs: {kind:#x}"
        );
    }
}

#[test]
fn a_bound_client_is_the_source_address() {
    let (d, backend) = gate_with_recording_backend();
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketType, bind, connect, socket};
    let fd = socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
    let me = d.path("client.sock");
    bind(&fd, &SocketAddrUnix::new(&me).unwrap()).unwrap();
    connect(&fd, &SocketAddrUnix::new(&d.socket).unwrap()).unwrap();
    let mut c = UnixStream::from(fd);
    c.write_all(b"x").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let all = backend.join().unwrap();
    let (h, _) = Header::parse(&all).unwrap();
    let (src, _) = h.unix.unwrap();
    assert_eq!(src, me.as_os_str().as_encoded_bytes());
}
