//! PROXY protocol v2 (haproxy's `proxy-protocol.txt`, section 2.2) header sent to a
//! gate's backend before any client byte, carrying the caller's kernel identity.
//!
//! Layout (all integers big-endian; `docs/daemon.md` has the table):
//! signature (12) · ver/cmd `0x21` (PROXY) or `0x20` (LOCAL) · family `0x31`
//! (AF_UNIX stream) or `0x00` · length (2) · for AF_UNIX: source and destination
//! addresses, 108 bytes each, NUL-padded · TLVs `type(1) length(2) value`.
//!
//! callerid's TLVs live in the range the spec reserves for custom use (0xE0–0xEF):
//! see [`Tlv`].

/// The 12-byte signature every v2 header starts with.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Length of one AF_UNIX address in the header (`sun_path`).
pub const UNIX_ADDR_LEN: usize = 108;

/// Header type byte of callerid's custom TLVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum Tlv {
    /// Peer uid at `connect()` (`SO_PEERCRED`), u32.
    Uid = 0xE0,
    /// Peer gid at `connect()`, u32.
    Gid = 0xE1,
    /// Peer pid in the daemon's pid namespace, u32; absent when not visible.
    Pid = 0xE2,
    /// pidfs id of the peer process (unique per boot), u64; absent when unknown.
    PidfsId = 0xE3,
    /// cgroup v2 id of the peer (connect-time when captured), u64; absent when unknown.
    CgroupId = 0xE4,
    /// The identity record as JSON (DESIGN.md §2), UTF-8; absent if it does not fit.
    IdentityJson = 0xE5,
    /// Name of the gate listener the client connected to, UTF-8.
    Listener = 0xE6,
    /// Name of the policy rule that allowed the connection, UTF-8; absent for the
    /// policy default.
    Rule = 0xE7,
    /// Innermost container id, UTF-8; absent when not in a container.
    ContainerId = 0xE8,
}

/// The command of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Health check or connection made by the proxy itself: addresses carry nothing.
    Local,
    /// A relayed connection.
    Proxy,
}

/// What goes into (or came out of) a v2 header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// LOCAL (`None` addresses) or PROXY.
    pub command: Option<Command>,
    /// AF_UNIX source (the client's bound path, usually empty) and destination (the
    /// listener path); `None` for an `AF_UNSPEC` header.
    pub unix: Option<(Vec<u8>, Vec<u8>)>,
    /// TLVs in order: `(type, value)`.
    pub tlvs: Vec<(u8, Vec<u8>)>,
}

/// Why a v2 header could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Fewer bytes than the header needs.
    #[error("PROXY v2 header truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The data does not start with the v2 signature.
    #[error("not a PROXY v2 header (bad signature)")]
    BadSignature,
    /// Version nibble other than 2 or an unknown command.
    #[error("unsupported PROXY version/command byte {0:#04x}")]
    BadVersion(u8),
    /// Address family/transport we do not produce or read.
    #[error("unsupported PROXY address family byte {0:#04x}")]
    BadFamily(u8),
    /// A TLV runs past the end of the header.
    #[error("TLV {kind:#04x} at offset {offset} overruns the header")]
    TlvOverrun {
        /// TLV type.
        kind: u8,
        /// Offset inside the TLV area.
        offset: usize,
    },
    /// An address longer than `sun_path`.
    #[error("AF_UNIX address of {0} bytes does not fit in 108")]
    AddressTooLong(usize),
    /// The header (or one TLV) would exceed the 16-bit length field.
    #[error("PROXY v2 header too long ({0} bytes)")]
    TooLong(usize),
}

impl Header {
    /// Appends the encoded header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ProxyError> {
        let start = out.len();
        out.extend_from_slice(&SIGNATURE);
        out.push(match self.command {
            Some(Command::Proxy) => 0x21,
            Some(Command::Local) | None => 0x20,
        });
        out.push(if self.unix.is_some() { 0x31 } else { 0x00 });
        out.extend_from_slice(&[0, 0]);
        if let Some((src, dst)) = &self.unix {
            for a in [src, dst] {
                if a.len() > UNIX_ADDR_LEN {
                    out.truncate(start);
                    return Err(ProxyError::AddressTooLong(a.len()));
                }
                out.extend_from_slice(a);
                out.resize(out.len() + UNIX_ADDR_LEN - a.len(), 0);
            }
        }
        for (kind, value) in &self.tlvs {
            let Ok(len) = u16::try_from(value.len()) else {
                out.truncate(start);
                return Err(ProxyError::TooLong(value.len()));
            };
            out.push(*kind);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(value);
        }
        let body = out.len() - start - 16;
        let Ok(len) = u16::try_from(body) else {
            out.truncate(start);
            return Err(ProxyError::TooLong(body));
        };
        out[start + 14..start + 16].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Parses a header at the start of `buf`; returns it and the bytes it took.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize), ProxyError> {
        if buf.len() < 16 {
            if !SIGNATURE.starts_with(&buf[..buf.len().min(12)]) {
                return Err(ProxyError::BadSignature);
            }
            return Err(ProxyError::Truncated {
                need: 16,
                have: buf.len(),
            });
        }
        if buf[..12] != SIGNATURE {
            return Err(ProxyError::BadSignature);
        }
        let command = match buf[12] {
            0x20 => Command::Local,
            0x21 => Command::Proxy,
            b => return Err(ProxyError::BadVersion(b)),
        };
        let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        let total = 16 + len;
        if buf.len() < total {
            return Err(ProxyError::Truncated {
                need: total,
                have: buf.len(),
            });
        }
        let body = &buf[16..total];
        let (unix, tlv_area) = match buf[13] {
            0x00 => (None, body),
            0x31 | 0x32 => {
                if body.len() < 2 * UNIX_ADDR_LEN {
                    return Err(ProxyError::Truncated {
                        need: 16 + 2 * UNIX_ADDR_LEN,
                        have: total,
                    });
                }
                let trim =
                    |a: &[u8]| a[..a.iter().position(|&b| b == 0).unwrap_or(a.len())].to_vec();
                (
                    Some((
                        trim(&body[..UNIX_ADDR_LEN]),
                        trim(&body[UNIX_ADDR_LEN..2 * UNIX_ADDR_LEN]),
                    )),
                    &body[2 * UNIX_ADDR_LEN..],
                )
            }
            b => return Err(ProxyError::BadFamily(b)),
        };
        let mut tlvs = Vec::new();
        let mut off = 0;
        while off < tlv_area.len() {
            let kind = tlv_area[off];
            if off + 3 > tlv_area.len() {
                return Err(ProxyError::TlvOverrun { kind, offset: off });
            }
            let l = usize::from(u16::from_be_bytes([tlv_area[off + 1], tlv_area[off + 2]]));
            let end = off + 3 + l;
            if end > tlv_area.len() {
                return Err(ProxyError::TlvOverrun { kind, offset: off });
            }
            tlvs.push((kind, tlv_area[off + 3..end].to_vec()));
            off = end;
        }
        Ok((
            Self {
                command: Some(command),
                unix,
                tlvs,
            },
            total,
        ))
    }

    /// The first TLV of this type.
    pub fn tlv(&self, kind: Tlv) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(k, _)| *k == kind as u8)
            .map(|(_, v)| v.as_slice())
    }

    /// A u32 TLV (big-endian).
    pub fn tlv_u32(&self, kind: Tlv) -> Option<u32> {
        self.tlv(kind)
            .and_then(|v| v.try_into().ok())
            .map(u32::from_be_bytes)
    }

    /// A u64 TLV (big-endian).
    pub fn tlv_u64(&self, kind: Tlv) -> Option<u64> {
        self.tlv(kind)
            .and_then(|v| v.try_into().ok())
            .map(u64::from_be_bytes)
    }
}

/// Builds the header a gate sends for an allowed connection. The identity JSON is
/// left out (with everything else kept) when it would overflow the 16-bit length.
pub(crate) fn for_connection(
    listener: &str,
    listener_path: &[u8],
    client_path: &[u8],
    identity: &callerid::Identity,
    rule: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<(), ProxyError> {
    let peer = identity.peer();
    let mut tlvs: Vec<(u8, Vec<u8>)> = Vec::with_capacity(9);
    tlvs.push((Tlv::Uid as u8, peer.uid.get().to_be_bytes().to_vec()));
    tlvs.push((Tlv::Gid as u8, peer.gid.get().to_be_bytes().to_vec()));
    if let Some(pid) = peer.pid {
        tlvs.push((Tlv::Pid as u8, pid.get().to_be_bytes().to_vec()));
    }
    if let Some(id) = identity.process().and_then(|p| p.pidfs_id) {
        tlvs.push((Tlv::PidfsId as u8, id.get().to_be_bytes().to_vec()));
    }
    if let Some(cg) = identity.cgroup() {
        tlvs.push((Tlv::CgroupId as u8, cg.id.get().to_be_bytes().to_vec()));
    }
    if let Some(c) = identity.workload().and_then(|w| w.container.as_ref()) {
        tlvs.push((Tlv::ContainerId as u8, c.id.as_bytes().to_vec()));
    }
    tlvs.push((Tlv::Listener as u8, listener.as_bytes().to_vec()));
    if let Some(rule) = rule {
        tlvs.push((Tlv::Rule as u8, rule.as_bytes().to_vec()));
    }
    let fixed: usize = 2 * UNIX_ADDR_LEN + tlvs.iter().map(|(_, v)| 3 + v.len()).sum::<usize>();
    if let Ok(json) = serde_json::to_vec(identity)
        && fixed + 3 + json.len() <= usize::from(u16::MAX)
    {
        tlvs.push((Tlv::IdentityJson as u8, json));
    }
    let dst = &listener_path[..listener_path.len().min(UNIX_ADDR_LEN)];
    let src = &client_path[..client_path.len().min(UNIX_ADDR_LEN)];
    Header {
        command: Some(Command::Proxy),
        unix: Some((src.to_vec(), dst.to_vec())),
        tlvs,
    }
    .encode(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip(
            proxy in any::<bool>(),
            unix in proptest::option::of((proptest::collection::vec(1u8..=255, 0..=108), proptest::collection::vec(1u8..=255, 0..=108))),
            tlvs in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..8),
        ) {
            let h = Header { command: Some(if proxy { Command::Proxy } else { Command::Local }), unix, tlvs };
            let mut out = b"xx".to_vec();
            h.encode(&mut out).unwrap();
            out.extend_from_slice(b"payload");
            let (back, used) = Header::parse(&out[2..]).unwrap();
            prop_assert_eq!(back, h);
            prop_assert_eq!(&out[2 + used..], b"payload");
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Header::parse(&data);
            let mut with_sig = SIGNATURE.to_vec();
            with_sig.extend_from_slice(&data);
            let _ = Header::parse(&with_sig);
        }
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Header::parse(b"GET / HTTP/1.1\r\n\r\n"),
            Err(ProxyError::BadSignature)
        );
        assert!(matches!(
            Header::parse(&SIGNATURE[..5]),
            Err(ProxyError::Truncated { .. })
        ));
        let mut long = Vec::new();
        let h = Header {
            command: None,
            unix: None,
            tlvs: vec![(0xE5, vec![0; 70000])],
        };
        assert_eq!(h.encode(&mut long), Err(ProxyError::TooLong(70000)));
        assert!(long.is_empty());
    }
}
