//! The only unsafe code of the crate: the `bpf(2)` commands the loader needs, and
//! `getsockname(2)` into a caller-owned buffer.
//!
//! Each command gets its own `#[repr(C)]` prefix of `union bpf_attr`; the kernel accepts a
//! shorter attr and treats the rest as zero.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_int = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_BTF_LOAD: libc::c_int = 18;
const BPF_MAP_FREEZE: libc::c_int = 22;
const BPF_LINK_CREATE: libc::c_int = 28;

/// `BPF_MAP_TYPE_ARRAY`.
pub(crate) const MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_SK_STORAGE`.
pub(crate) const MAP_TYPE_SK_STORAGE: u32 = 24;
/// `BPF_F_NO_PREALLOC` (required for local storage maps).
pub(crate) const F_NO_PREALLOC: u32 = 1;
/// `BPF_F_RDONLY_PROG`: the program may only read the map (its `.rodata`).
pub(crate) const F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_PROG_TYPE_CGROUP_SOCK_ADDR`.
pub(crate) const PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
/// `BPF_CGROUP_UNIX_GETSOCKNAME` (Linux 6.7).
pub(crate) const ATTACH_CGROUP_UNIX_GETSOCKNAME: u32 = 53;

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoByFdAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The head of `struct bpf_link_info`.
#[repr(C)]
#[derive(Default)]
struct LinkInfoHead {
    link_type: u32,
    id: u32,
    prog_id: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
}

#[repr(C)]
#[derive(Default)]
struct MapFreezeAttr {
    map_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
}

/// Runs one `bpf(2)` command whose attr is `T`.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed `#[repr(C)]` prefix of `union bpf_attr`
    // for `cmd`, and we pass its exact size; every pointer stored inside it (as u64) points
    // into buffers the caller keeps alive for the duration of this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Wraps a `bpf(2)` return value that is a new file descriptor.
fn owned(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned `fd` as a new descriptor (O_CLOEXEC) that nothing
    // else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // Descriptors are non-negative.
    fd.as_raw_fd().unsigned_abs()
}

fn ptr_u64<T>(p: *const T) -> u64 {
    p as usize as u64
}

/// Copies `name` into a NUL-terminated 16-byte object name (truncated).
fn obj_name(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().take(15).zip(name.bytes()) {
        *o = b;
    }
    out
}

/// `BPF_BTF_LOAD`. On failure the kernel's BTF verifier log is returned with the error.
pub(crate) fn btf_load(blob: &[u8]) -> Result<OwnedFd, (io::Error, String)> {
    let size = u32::try_from(blob.len())
        .map_err(|_| (io::Error::from_raw_os_error(libc::E2BIG), String::new()))?;
    let mut attr = BtfLoadAttr {
        btf: ptr_u64(blob.as_ptr()),
        btf_size: size,
        ..Default::default()
    };
    match bpf(BPF_BTF_LOAD, &mut attr).and_then(owned) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            let mut log = vec![0u8; 64 * 1024];
            let mut attr = BtfLoadAttr {
                btf: ptr_u64(blob.as_ptr()),
                btf_size: size,
                btf_log_buf: ptr_u64(log.as_mut_ptr()),
                btf_log_size: log.len() as u32,
                btf_log_level: 1,
            };
            match bpf(BPF_BTF_LOAD, &mut attr).and_then(owned) {
                Ok(fd) => Ok(fd),
                Err(_) => Err((first, log_text(&log))),
            }
        }
    }
}

/// What `BPF_MAP_CREATE` is asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) map_type: u32,
    pub(crate) key_size: u32,
    pub(crate) value_size: u32,
    pub(crate) max_entries: u32,
    pub(crate) flags: u32,
    /// BTF object and the key and value type ids in it.
    pub(crate) btf: Option<(BorrowedFd<'a>, u32, u32)>,
}

/// `BPF_MAP_CREATE`.
pub(crate) fn map_create(spec: &MapSpec<'_>) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type: spec.map_type,
        key_size: spec.key_size,
        value_size: spec.value_size,
        max_entries: spec.max_entries,
        map_flags: spec.flags,
        map_name: obj_name(spec.name),
        ..Default::default()
    };
    if let Some((fd, key, value)) = spec.btf {
        attr.btf_fd = fd_u32(fd);
        attr.btf_key_type_id = key;
        attr.btf_value_type_id = value;
    }
    bpf(BPF_MAP_CREATE, &mut attr).and_then(owned)
}

/// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`. `key` and `value` must have the map's sizes.
pub(crate) fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: fd_u32(map),
        key: ptr_u64(key.as_ptr()),
        value: ptr_u64(value.as_ptr()),
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// `BPF_MAP_FREEZE`: user space can no longer write the map either.
pub(crate) fn map_freeze(map: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = MapFreezeAttr {
        map_fd: fd_u32(map),
    };
    bpf(BPF_MAP_FREEZE, &mut attr).map(drop)
}

/// The per-socket value the program stores; mirrors `struct sock_cgroup` in
/// `bpf/capture.bpf.c` (the loader checks the size against the object's BTF).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SockCgroup {
    pub(crate) cgroup_id: u64,
}

/// Looks up the SK_STORAGE value of socket `sock` (SK_STORAGE maps are keyed by socket fd).
/// `Ok(None)` when the socket has no value in this map.
pub(crate) fn sk_storage_lookup(
    map: BorrowedFd<'_>,
    sock: BorrowedFd<'_>,
) -> io::Result<Option<SockCgroup>> {
    let key: i32 = sock.as_raw_fd();
    let mut value = SockCgroup::default();
    let mut attr = MapElemAttr {
        map_fd: fd_u32(map),
        key: ptr_u64(&raw const key),
        value: ptr_u64(&raw mut value),
        ..Default::default()
    };
    match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
        Ok(_) => Ok(Some(value)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What `BPF_PROG_LOAD` is asked for.
#[derive(Debug)]
pub(crate) struct ProgSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) prog_type: u32,
    pub(crate) expected_attach_type: u32,
    /// Raw `struct bpf_insn` array (8 bytes each), relocations already applied.
    pub(crate) insns: &'a [u8],
    /// NUL-terminated license string.
    pub(crate) license: &'a [u8],
}

/// `BPF_PROG_LOAD`. On failure, loads again with a verifier log and returns it with the
/// first error.
pub(crate) fn prog_load(spec: &ProgSpec<'_>) -> Result<OwnedFd, (io::Error, String)> {
    let bad = |e| (io::Error::from_raw_os_error(e), String::new());
    if !spec.insns.len().is_multiple_of(8) || spec.license.last() != Some(&0) {
        return Err(bad(libc::EINVAL));
    }
    // Instructions are 8-byte records the kernel reads as u64-aligned data.
    let insns: Vec<u64> = spec
        .insns
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| bad(libc::E2BIG))?;
    let mut attr = ProgLoadAttr {
        prog_type: spec.prog_type,
        insn_cnt,
        insns: ptr_u64(insns.as_ptr()),
        license: ptr_u64(spec.license.as_ptr()),
        prog_name: obj_name(spec.name),
        expected_attach_type: spec.expected_attach_type,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr).and_then(owned) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            let mut log = vec![0u8; 256 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = ptr_u64(log.as_mut_ptr());
            match bpf(BPF_PROG_LOAD, &mut attr).and_then(owned) {
                Ok(fd) => Ok(fd),
                Err(_) => Err((first, log_text(&log))),
            }
        }
    }
}

/// `BPF_LINK_CREATE` for a cgroup program. A cgroup link attaches like
/// `BPF_F_ALLOW_MULTI` and is detached when its last descriptor closes — including when
/// the process dies, however it dies — unless it was pinned (we never pin).
pub(crate) fn link_create(
    prog: BorrowedFd<'_>,
    cgroup: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: fd_u32(prog),
        target_fd: fd_u32(cgroup),
        attach_type,
        flags: 0,
    };
    bpf(BPF_LINK_CREATE, &mut attr).and_then(owned)
}

/// `BPF_OBJ_GET_INFO_BY_FD` on a link: (link id, program id).
pub(crate) fn link_ids(link: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    let mut info = LinkInfoHead::default();
    let mut attr = InfoByFdAttr {
        bpf_fd: fd_u32(link),
        info_len: size_of::<LinkInfoHead>() as u32,
        info: ptr_u64(&raw mut info),
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok((info.id, info.prog_id))
}

/// `BPF_PROG_QUERY`: ids of the programs attached directly to `cgroup` for
/// `attach_type` (up to 1024).
pub(crate) fn prog_query(cgroup: BorrowedFd<'_>, attach_type: u32) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 1024];
    let mut attr = ProgQueryAttr {
        target_fd: fd_u32(cgroup),
        attach_type,
        prog_ids: ptr_u64(ids.as_mut_ptr()),
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// `getsockname(2)` into a `sockaddr_un` buffer whose content is discarded: the call is
/// made for the cgroup/getsockname_unix hook it runs.
pub(crate) fn getsockname_unix(sock: BorrowedFd<'_>) -> io::Result<()> {
    let mut addr = std::mem::MaybeUninit::<libc::sockaddr_un>::zeroed();
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `addr` is a writable buffer of `len` bytes and `len` is a valid in/out
    // pointer; the kernel writes at most `len` bytes and `sock` is a live descriptor.
    let ret = unsafe {
        libc::getsockname(
            sock.as_raw_fd(),
            addr.as_mut_ptr().cast::<libc::sockaddr>(),
            &raw mut len,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn log_text(log: &[u8]) -> String {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    String::from_utf8_lossy(&log[..end]).trim_end().to_owned()
}
