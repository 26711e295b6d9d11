//! Loads the embedded, clang-built object (`bpf/capture.bpf.o`, built from
//! `bpf/capture.bpf.c`): applies its CO-RE and map relocations, creates its two maps,
//! loads the program and links it to the cgroup2 root.

use crate::btf::{self, Btf};
use crate::elf::{Elf, Le};
use crate::error::{CaptureError, ObjectError};
use crate::sys::{self, MapSpec, ProgSpec, SockCgroup};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// The object, committed next to its source; `.ci/run` checks they match.
static OBJECT: &[u8] = include_bytes!("../bpf/capture.bpf.o");

pub(crate) const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
const PROG_SECTION: &str = "cgroup/getsockname_unix";
const PROG_NAME: &str = "callerid_gsn";
const MAP_SYMBOL: &str = "sock_cgroup";
const VALUE_STRUCT: &str = "sock_cgroup";
const TGID_SYMBOL: &str = "daemon_tgid";

const INSN: usize = 8;
const LD_IMM64: u8 = 0x18;
const PSEUDO_MAP_FD: u8 = 1;
const PSEUDO_MAP_VALUE: u8 = 2;

/// What stays alive while capture is on.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The SK_STORAGE map (looked up by socket fd).
    pub(crate) map: OwnedFd,
    /// The cgroup link: closing it (or dying) detaches the program.
    pub(crate) link: OwnedFd,
}

/// Loads the program for `tgid` and attaches it at `cgroup2_root`.
pub(crate) fn load(cgroup2_root: &Path, tgid: u32) -> Result<Loaded, CaptureError> {
    let elf = Elf::parse(OBJECT)?;
    let local = Btf::parse(elf.section(".BTF")?.data)?;
    let vmlinux = std::fs::read(KERNEL_BTF).map_err(|source| CaptureError::Read {
        path: KERNEL_BTF.into(),
        source,
    })?;
    let kernel = Btf::parse(&vmlinux)?;

    let prog = elf.section(PROG_SECTION)?;
    let mut insns = prog.data.to_vec();
    apply_core(&elf, &local, &kernel, &mut insns)?;

    let btf_blob = local.with_datasec_sizes(&elf)?;
    let btf_fd =
        sys::btf_load(&btf_blob).map_err(|(source, log)| CaptureError::BtfLoad { source, log })?;
    let value_id = local.struct_id(VALUE_STRUCT)?;
    let value_size = local.size_of(value_id)?;
    if value_size as usize != size_of::<SockCgroup>() {
        return Err(ObjectError::Btf(format!(
            "struct {VALUE_STRUCT} is {value_size} bytes, the loader expects {}",
            size_of::<SockCgroup>()
        ))
        .into());
    }
    let map = sys::map_create(&MapSpec {
        name: MAP_SYMBOL,
        map_type: sys::MAP_TYPE_SK_STORAGE,
        key_size: 4,
        value_size,
        max_entries: 0,
        flags: sys::F_NO_PREALLOC,
        btf: Some((btf_fd.as_fd(), local.int_id("int")?, value_id)),
    })
    .map_err(|source| CaptureError::Syscall {
        op: "BPF_MAP_CREATE sock_cgroup",
        source,
    })?;
    let rodata = rodata_map(&elf, tgid)?;

    for rel in elf.rels_for(prog.index)? {
        let sym = elf
            .symbols
            .get(rel.sym)
            .ok_or_else(|| ObjectError::MissingSymbol(format!("#{}", rel.sym)))?;
        let section = elf
            .sections
            .get(usize::from(sym.shndx))
            .map_or("", |s| s.name);
        let at = crate::elf::us(rel.offset)?;
        let index = at / INSN;
        let bad = |why: &str| ObjectError::BadInstruction {
            index,
            why: why.into(),
        };
        if !at.is_multiple_of(INSN)
            || insns.get(at) != Some(&LD_IMM64)
            || at.checked_add(2 * INSN).is_none_or(|end| insns.len() < end)
        {
            return Err(bad("not a 64-bit immediate load").into());
        }
        let (src, fd, off) = match section {
            ".maps" if sym.name == MAP_SYMBOL => (PSEUDO_MAP_FD, &map, 0),
            ".rodata" => {
                let addend = insns.as_slice().u32_at(at + 4)?;
                let off = u32::try_from(sym.value).map_err(|_| bad("symbol offset too large"))?;
                let off = off
                    .checked_add(addend)
                    .ok_or_else(|| bad("symbol offset too large"))?;
                (PSEUDO_MAP_VALUE, &rodata, off)
            }
            _ => return Err(bad(&format!("reference to unknown {section}:{}", sym.name)).into()),
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(fd);
        insns[at + 1] = (insns[at + 1] & 0x0f) | (src << 4);
        insns[at + 4..at + 8].copy_from_slice(&fd.to_le_bytes());
        insns[at + INSN + 4..at + INSN + 8].copy_from_slice(&off.to_le_bytes());
    }

    let license = elf.section("license")?.data;
    let prog_fd = sys::prog_load(&ProgSpec {
        name: PROG_NAME,
        prog_type: sys::PROG_TYPE_CGROUP_SOCK_ADDR,
        expected_attach_type: sys::ATTACH_CGROUP_UNIX_GETSOCKNAME,
        insns: &insns,
        license,
    })
    .map_err(|(source, log)| CaptureError::Load { source, log })?;

    let root = File::open(cgroup2_root).map_err(|source| CaptureError::Read {
        path: cgroup2_root.into(),
        source,
    })?;
    let link = sys::link_create(
        prog_fd.as_fd(),
        root.as_fd(),
        sys::ATTACH_CGROUP_UNIX_GETSOCKNAME,
    )
    .map_err(|source| CaptureError::Attach {
        cgroup: cgroup2_root.into(),
        source,
    })?;
    // The link holds the program, and the program its maps; only the SK_STORAGE map (for
    // lookups) and the link (to stay attached) need our descriptors.
    Ok(Loaded { map, link })
}

/// Re-computes every CO-RE field offset against the running kernel and patches it in.
fn apply_core(
    elf: &Elf<'_>,
    local: &Btf<'_>,
    kernel: &Btf<'_>,
    insns: &mut [u8],
) -> Result<(), ObjectError> {
    let ext = elf.section(".BTF.ext")?.data;
    for relo in btf::core_relos(ext, local, PROG_SECTION)? {
        let at = relo.insn_off as usize;
        let index = at / INSN;
        let bad = |why: String| ObjectError::BadInstruction { index, why };
        if relo.kind != btf::CORE_FIELD_BYTE_OFFSET {
            return Err(bad(format!(
                "CO-RE relocation kind {} is not supported",
                relo.kind
            )));
        }
        let off = btf::field_byte_offset(local, &relo, kernel)?;
        let insn = insns
            .get_mut(at..at + INSN)
            .ok_or_else(|| bad("outside the program".into()))?;
        match insn[0] & 0x07 {
            // LDX, ST, STX: the field offset is the 16-bit `off`.
            1..=3 => {
                let cur = i16::from_le_bytes([insn[2], insn[3]]);
                if i64::from(cur) != i64::from(off.local) {
                    return Err(bad(format!(
                        "offset {cur} is not the compiled {}",
                        off.local
                    )));
                }
                let new = i16::try_from(off.target).map_err(|_| bad("offset too large".into()))?;
                insn[2..4].copy_from_slice(&new.to_le_bytes());
            }
            // ALU/ALU64 with an immediate operand: the offset is `imm`.
            4 | 7 if insn[0] & 0x08 == 0 => {
                let new = i32::try_from(off.target).map_err(|_| bad("offset too large".into()))?;
                insn[4..8].copy_from_slice(&new.to_le_bytes());
            }
            _ => return Err(bad("CO-RE relocation on an unsupported instruction".into())),
        }
    }
    Ok(())
}

/// The object's `.rodata` as a frozen, program-read-only array map, with the daemon's
/// tgid written into `daemon_tgid`. Frozen, the verifier treats its content as constant.
fn rodata_map(elf: &Elf<'_>, tgid: u32) -> Result<OwnedFd, CaptureError> {
    let sec = elf.section(".rodata")?;
    let sym = elf.symbol(TGID_SYMBOL)?;
    if usize::from(sym.shndx) != sec.index || sym.size != 4 {
        return Err(ObjectError::MissingSymbol(format!("{TGID_SYMBOL} (u32 in .rodata)")).into());
    }
    let mut value = sec.data.to_vec();
    let at = crate::elf::us(sym.value)?;
    value
        .get_mut(at..at.saturating_add(4))
        .ok_or(ObjectError::Truncated { offset: at, len: 4 })?
        .copy_from_slice(&tgid.to_ne_bytes());
    let value_size =
        u32::try_from(value.len()).map_err(|_| ObjectError::Btf(".rodata too big".into()))?;
    let map = sys::map_create(&MapSpec {
        name: "callerid.rodata",
        map_type: sys::MAP_TYPE_ARRAY,
        key_size: 4,
        value_size,
        max_entries: 1,
        flags: sys::F_RDONLY_PROG,
        btf: None,
    })
    .map_err(|source| CaptureError::Syscall {
        op: "BPF_MAP_CREATE .rodata",
        source,
    })?;
    sys::map_update(map.as_fd(), &0u32.to_ne_bytes(), &value).map_err(|source| {
        CaptureError::Syscall {
            op: "BPF_MAP_UPDATE_ELEM .rodata",
            source,
        }
    })?;
    sys::map_freeze(map.as_fd()).map_err(|source| CaptureError::Syscall {
        op: "BPF_MAP_FREEZE .rodata",
        source,
    })?;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded object parses and has what the loader binds to, without a kernel.
    #[test]
    fn embedded_object_has_what_the_loader_needs() {
        let elf = Elf::parse(OBJECT).expect("elf");
        let local = Btf::parse(elf.section(".BTF").expect(".BTF").data).expect("btf");
        assert_eq!(
            local
                .size_of(local.struct_id(VALUE_STRUCT).expect("value"))
                .expect("size"),
            8
        );
        assert!(elf.symbol(MAP_SYMBOL).is_ok());
        assert!(elf.symbol(TGID_SYMBOL).is_ok());
        let relos = btf::core_relos(
            elf.section(".BTF.ext").expect("ext").data,
            &local,
            PROG_SECTION,
        )
        .expect("relos");
        assert_eq!(relos.len(), 3, "{relos:?}");
        assert!(relos.iter().all(|r| r.kind == btf::CORE_FIELD_BYTE_OFFSET));
    }

    #[test]
    fn garbage_objects_are_errors() {
        assert!(Elf::parse(b"").is_err());
        assert!(Elf::parse(b"\x7fELF\x02\x01").is_err());
        let mut copy = OBJECT.to_vec();
        copy.truncate(200);
        assert!(Elf::parse(&copy).is_err());
        assert!(Btf::parse(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0]).is_err());
    }
}
