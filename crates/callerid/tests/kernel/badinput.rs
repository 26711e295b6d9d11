//! Sockets that have no peer to identify, and descriptors that are not sockets.

use callerid::{Error, Identifier, WrongSocketKind};
use std::os::fd::BorrowedFd;

fn kind(r: callerid::Result<callerid::Identity>) -> WrongSocketKind {
    match r {
        Err(Error::WrongSocket { kind, .. }) => kind,
        other => panic!("expected a WrongSocket error, got {other:?}"),
    }
}

#[test]
fn tcp_socket() {
    let ident = Identifier::new().expect("identifier");
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp listen");
    let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("tcp connect");
    let (s, _) = l.accept().expect("tcp accept");
    assert_eq!(kind(ident.identify(&s)), WrongSocketKind::NotUnix);
    assert_eq!(kind(ident.identify(&c)), WrongSocketKind::NotUnix);
    assert_eq!(kind(ident.identify(&l)), WrongSocketKind::Listening);
}

#[test]
fn listening_socket() {
    let ident = Identifier::new().expect("identifier");
    let l = crate::support::listener();
    let e = ident.identify(&l.listener);
    assert_eq!(kind(e), WrongSocketKind::Listening);
}

#[test]
fn unconnected_datagram_and_stream() {
    let ident = Identifier::new().expect("identifier");
    let d = std::os::unix::net::UnixDatagram::unbound().expect("dgram");
    assert_eq!(kind(ident.identify(&d)), WrongSocketKind::Datagram);
    let s = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        None,
    )
    .expect("socket");
    assert_eq!(kind(ident.identify(&s)), WrongSocketKind::NotConnected);
}

#[test]
fn not_a_socket_and_closed_fd() {
    let ident = Identifier::new().expect("identifier");
    let f = std::fs::File::open("/proc/self/status").expect("file");
    let e = ident.identify(&f);
    assert_eq!(kind(e), WrongSocketKind::NotASocket);
    // SAFETY: no file is open at this number (far above any fd the test opens); the
    // kernel answers EBADF and nothing is ever closed through it.
    let closed = unsafe { BorrowedFd::borrow_raw(1 << 20) };
    let e = ident.identify(&closed);
    let err = e.expect_err("closed fd");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the io error is the source"
    );
    assert!(err.to_string().contains("SO_PEERCRED"), "{err}");
    assert_eq!(kind(Err(err)), WrongSocketKind::NotASocket);
}

#[test]
fn identify_pid_of_nothing() {
    let ident = Identifier::new().expect("identifier");
    assert!(matches!(ident.identify_pid(0), Err(Error::PeerGone { .. })));
    assert!(matches!(
        ident.identify_pid(u32::MAX),
        Err(Error::PeerGone { .. })
    ));
    // pid_max is at most 2^22: this pid cannot exist.
    assert!(matches!(
        ident.identify_pid(1 << 23),
        Err(Error::PeerGone { .. })
    ));
}
