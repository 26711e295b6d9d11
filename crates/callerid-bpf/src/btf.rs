//! BTF reading, the one fix-up the object's own BTF needs before the kernel takes it, and
//! a small CO-RE resolver: field byte offsets (the only relocation kind the capture
//! program uses) re-computed against the running kernel's BTF, by type and field name.

use crate::elf::{Elf, Le};
use crate::error::ObjectError;

const BTF_MAGIC: u16 = 0xeb9f;

const KIND_INT: u8 = 1;
const KIND_PTR: u8 = 2;
const KIND_ARRAY: u8 = 3;
const KIND_STRUCT: u8 = 4;
const KIND_UNION: u8 = 5;
const KIND_ENUM: u8 = 6;
const KIND_TYPEDEF: u8 = 8;
const KIND_VOLATILE: u8 = 9;
const KIND_CONST: u8 = 10;
const KIND_RESTRICT: u8 = 11;
const KIND_FUNC_PROTO: u8 = 13;
const KIND_VAR: u8 = 14;
const KIND_DATASEC: u8 = 15;
const KIND_DECL_TAG: u8 = 17;
const KIND_TYPE_TAG: u8 = 18;
const KIND_ENUM64: u8 = 19;

/// `BPF_CORE_FIELD_BYTE_OFFSET`.
pub(crate) const CORE_FIELD_BYTE_OFFSET: u32 = 0;

/// A struct or union member.
#[derive(Debug, Clone, Copy)]
struct Member {
    name_off: u32,
    type_id: u32,
    bit_offset: u32,
    bitfield: bool,
}

/// One BTF type record.
#[derive(Debug, Clone)]
struct Type {
    name_off: u32,
    kind: u8,
    /// `size` or `type`, depending on the kind.
    size_or_type: u32,
    members: Vec<Member>,
    /// Where the record starts in the blob (for in-place fix-ups).
    pos: usize,
}

/// A parsed BTF blob. Type id `n` is `types[n]`; id 0 is `void`.
#[derive(Debug)]
pub(crate) struct Btf<'a> {
    blob: &'a [u8],
    strings: &'a [u8],
    types: Vec<Type>,
}

impl<'a> Btf<'a> {
    /// Parses a standalone BTF blob (`/sys/kernel/btf/vmlinux` or an object's `.BTF`).
    pub(crate) fn parse(blob: &'a [u8]) -> Result<Self, ObjectError> {
        if blob.u16_at(0)? != BTF_MAGIC {
            return Err(ObjectError::Btf("bad magic".into()));
        }
        let hdr_len = blob.u32_at(4)? as usize;
        let type_off = hdr_len + blob.u32_at(8)? as usize;
        let type_len = blob.u32_at(12)? as usize;
        let str_off = hdr_len + blob.u32_at(16)? as usize;
        let str_len = blob.u32_at(20)? as usize;
        let strings = blob.sub(str_off, str_len)?;
        let data = blob.sub(type_off, type_len)?;
        let void = Type {
            name_off: 0,
            kind: 0,
            size_or_type: 0,
            members: Vec::new(),
            pos: 0,
        };
        let mut types = vec![void];
        let mut p = 0usize;
        while p < data.len() {
            let name_off = data.u32_at(p)?;
            let info = data.u32_at(p + 4)?;
            let size_or_type = data.u32_at(p + 8)?;
            let kind = ((info >> 24) & 0x1f) as u8;
            let vlen = (info & 0xffff) as usize;
            let kflag = info >> 31 == 1;
            let pos = type_off + p;
            p += 12;
            let mut members = Vec::new();
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = p + i * 12;
                        let raw = data.u32_at(m + 8)?;
                        let (bit_offset, bitfield) = if kflag {
                            (raw & 0x00ff_ffff, raw >> 24 != 0)
                        } else {
                            (raw, false)
                        };
                        members.push(Member {
                            name_off: data.u32_at(m)?,
                            type_id: data.u32_at(m + 4)?,
                            bit_offset,
                            bitfield,
                        });
                    }
                    vlen * 12
                }
                KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
                KIND_DATASEC | KIND_ENUM64 => vlen * 12,
                0 | 20.. => return Err(ObjectError::Btf(format!("unknown BTF kind {kind}"))),
                _ => 0,
            };
            p += extra;
            if p > data.len() {
                return Err(ObjectError::Btf("type section truncated".into()));
            }
            types.push(Type {
                name_off,
                kind,
                size_or_type,
                members,
                pos,
            });
        }
        Ok(Self {
            blob,
            strings,
            types,
        })
    }

    /// The string at `off` of the string section.
    pub(crate) fn str_at(&self, off: u32) -> Result<&'a str, ObjectError> {
        let rest = self
            .strings
            .get(off as usize..)
            .ok_or(ObjectError::BadString {
                offset: off as usize,
            })?;
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).map_err(|_| ObjectError::BadString {
            offset: off as usize,
        })
    }

    fn ty(&self, id: u32) -> Result<&Type, ObjectError> {
        self.types
            .get(id as usize)
            .ok_or_else(|| ObjectError::Btf(format!("no type id {id}")))
    }

    fn name(&self, id: u32) -> Result<&'a str, ObjectError> {
        self.str_at(self.ty(id)?.name_off)
    }

    /// Follows typedefs and qualifiers to the underlying type.
    fn skip_mods(&self, mut id: u32) -> Result<u32, ObjectError> {
        for _ in 0..64 {
            let t = self.ty(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_or_type;
                }
                _ => return Ok(id),
            }
        }
        Err(ObjectError::Btf("type modifier loop".into()))
    }

    /// The id of the struct called `name`.
    pub(crate) fn struct_id(&self, name: &str) -> Result<u32, ObjectError> {
        for (id, t) in self.types.iter().enumerate().skip(1) {
            if t.kind == KIND_STRUCT && self.str_at(t.name_off)? == name {
                return u32::try_from(id).map_err(|_| ObjectError::Btf("too many types".into()));
            }
        }
        Err(ObjectError::Btf(format!("no struct {name}")))
    }

    /// The id of the first integer type called `name`.
    pub(crate) fn int_id(&self, name: &str) -> Result<u32, ObjectError> {
        for (id, t) in self.types.iter().enumerate().skip(1) {
            if t.kind == KIND_INT && self.str_at(t.name_off)? == name {
                return u32::try_from(id).map_err(|_| ObjectError::Btf("too many types".into()));
            }
        }
        Err(ObjectError::Btf(format!("no integer type {name}")))
    }

    /// The size of a struct/union/int type.
    pub(crate) fn size_of(&self, id: u32) -> Result<u32, ObjectError> {
        let t = self.ty(self.skip_mods(id)?)?;
        match t.kind {
            KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 => Ok(t.size_or_type),
            KIND_PTR => Ok(8),
            k => Err(ObjectError::Btf(format!("no size for BTF kind {k}"))),
        }
    }

    /// A copy of the blob in which every `DATASEC` of size 0 gets the size of the ELF
    /// section it describes. clang leaves those sizes to the loader, and the kernel
    /// rejects a zero-sized `DATASEC`.
    pub(crate) fn with_datasec_sizes(&self, elf: &Elf<'_>) -> Result<Vec<u8>, ObjectError> {
        let mut out = self.blob.to_vec();
        for t in self
            .types
            .iter()
            .filter(|t| t.kind == KIND_DATASEC && t.size_or_type == 0)
        {
            let name = self.str_at(t.name_off)?;
            let size = elf.section(name).map(|s| s.data.len()).unwrap_or(0);
            let size =
                u32::try_from(size).map_err(|_| ObjectError::Btf("section too big".into()))?;
            let at = t.pos + 8;
            out.get_mut(at..at + 4)
                .ok_or(ObjectError::Truncated { offset: at, len: 4 })?
                .copy_from_slice(&size.to_le_bytes());
        }
        Ok(out)
    }

    /// Finds member `name` of struct/union `id`, looking through anonymous struct and
    /// union members as C does. Returns (bit offset from the start of `id`, member).
    fn find_member(
        &self,
        id: u32,
        name: &str,
        depth: u32,
    ) -> Result<Option<(u32, Member)>, ObjectError> {
        if depth > 32 {
            return Ok(None);
        }
        let t = self.ty(self.skip_mods(id)?)?;
        if t.kind != KIND_STRUCT && t.kind != KIND_UNION {
            return Ok(None);
        }
        for m in &t.members {
            let mname = self.str_at(m.name_off)?;
            if mname == name {
                return Ok(Some((m.bit_offset, *m)));
            }
            if mname.is_empty()
                && let Some((off, found)) = self.find_member(m.type_id, name, depth + 1)?
            {
                // A corrupt offset that overflows just does not match.
                return Ok(m.bit_offset.checked_add(off).map(|o| (o, found)));
            }
        }
        Ok(None)
    }

    /// A coarse shape of a field's type, to refuse matching e.g. a pointer to an integer.
    fn shape(&self, id: u32) -> Result<(u8, u32), ObjectError> {
        let id = self.skip_mods(id)?;
        let t = self.ty(id)?;
        Ok(match t.kind {
            KIND_INT | KIND_ENUM | KIND_ENUM64 => (KIND_INT, t.size_or_type),
            KIND_PTR => (KIND_PTR, 8),
            k => (k, 0),
        })
    }
}

/// One `bpf_core_relo` record of `.BTF.ext`.
#[derive(Debug, Clone)]
pub(crate) struct CoreRelo {
    /// Byte offset of the instruction within its program section.
    pub(crate) insn_off: u32,
    /// Root type id in the object's BTF.
    pub(crate) type_id: u32,
    /// Access string such as `0:0:0:0`.
    pub(crate) access: String,
    /// Relocation kind (`bpf_core_relo_kind`).
    pub(crate) kind: u32,
}

/// The CO-RE relocations `.BTF.ext` records for program section `section`.
pub(crate) fn core_relos(
    ext: &[u8],
    btf: &Btf<'_>,
    section: &str,
) -> Result<Vec<CoreRelo>, ObjectError> {
    if ext.u16_at(0)? != BTF_MAGIC {
        return Err(ObjectError::Btf(".BTF.ext: bad magic".into()));
    }
    let hdr_len = ext.u32_at(4)? as usize;
    if hdr_len < 32 {
        return Ok(Vec::new());
    }
    let off = hdr_len + ext.u32_at(24)? as usize;
    let len = ext.u32_at(28)? as usize;
    if len == 0 {
        return Ok(Vec::new());
    }
    let data = ext.sub(off, len)?;
    let rec_size = data.u32_at(0)? as usize;
    if rec_size < 16 {
        return Err(ObjectError::Btf(
            ".BTF.ext: core_relo record too small".into(),
        ));
    }
    let mut out = Vec::new();
    let mut p = 4;
    while p < data.len() {
        let sec = btf.str_at(data.u32_at(p)?)?;
        let n = data.u32_at(p + 4)? as usize;
        p += 8;
        for i in 0..n {
            let at = i
                .checked_mul(rec_size)
                .and_then(|o| o.checked_add(p))
                .ok_or(ObjectError::Truncated {
                    offset: p,
                    len: rec_size,
                })?;
            let r = data.sub(at, rec_size)?;
            if sec == section {
                out.push(CoreRelo {
                    insn_off: r.u32_at(0)?,
                    type_id: r.u32_at(4)?,
                    access: btf.str_at(r.u32_at(8)?)?.to_owned(),
                    kind: r.u32_at(12)?,
                });
            }
        }
        p = n
            .checked_mul(rec_size)
            .and_then(|len| len.checked_add(p))
            .ok_or(ObjectError::Truncated {
                offset: p,
                len: rec_size,
            })?;
    }
    Ok(out)
}

/// The byte offset of a field, as the object was compiled (`local`) and as the running
/// kernel lays it out (`target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldOffset {
    pub(crate) local: u32,
    pub(crate) target: u32,
}

/// Resolves a `FIELD_BYTE_OFFSET` relocation: walks the access path through the local
/// types to learn the field *names*, then walks the same names through every same-named
/// struct of the kernel's BTF. All matching kernel structs must agree.
pub(crate) fn field_byte_offset(
    local: &Btf<'_>,
    relo: &CoreRelo,
    target: &Btf<'_>,
) -> Result<FieldOffset, ObjectError> {
    let err = |why: String| ObjectError::Core {
        access: relo.access.clone(),
        why,
    };
    let mut idx = relo.access.split(':').map(str::parse::<u32>);
    if idx.next() != Some(Ok(0)) {
        return Err(err("only a zero first index is supported".into()));
    }
    let root = local.skip_mods(relo.type_id)?;
    let root_kind = local.ty(root)?.kind;
    let root_name = local.name(root)?;
    // libbpf's "flavor" convention: `struct foo___v2` matches kernel `struct foo`.
    let essential = root_name.split("___").next().unwrap_or(root_name);
    if essential.is_empty() || (root_kind != KIND_STRUCT && root_kind != KIND_UNION) {
        return Err(err("root type must be a named struct or union".into()));
    }
    let mut names = Vec::new();
    let mut cur = root;
    let mut local_bits = 0u32;
    for i in idx {
        let i = i.map_err(|_| err("malformed access string".into()))? as usize;
        let t = local.ty(local.skip_mods(cur)?)?;
        let m = *t
            .members
            .get(i)
            .ok_or_else(|| err(format!("no member #{i}")))?;
        let name = local.str_at(m.name_off)?;
        if name.is_empty() || m.bitfield {
            return Err(err(
                "anonymous and bitfield members are not supported".into()
            ));
        }
        names.push(name);
        local_bits = local_bits
            .checked_add(m.bit_offset)
            .ok_or_else(|| err("offset overflow".into()))?;
        cur = m.type_id;
    }
    let local_shape = local.shape(cur)?;

    let mut found: Option<u32> = None;
    for (id, t) in target.types.iter().enumerate().skip(1) {
        if t.kind != root_kind || target.str_at(t.name_off)? != essential {
            continue;
        }
        let mut tcur = u32::try_from(id).map_err(|_| err("too many kernel types".into()))?;
        let mut bits = 0u32;
        let mut ok = true;
        for name in &names {
            match target.find_member(tcur, name, 0)? {
                Some((off, m)) if !m.bitfield && bits.checked_add(off).is_some() => {
                    bits += off;
                    tcur = m.type_id;
                }
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok || target.shape(tcur)? != local_shape || !bits.is_multiple_of(8) {
            continue;
        }
        let off = bits / 8;
        match found {
            Some(prev) if prev != off => {
                return Err(err(format!(
                    "kernel structs named {essential} disagree ({prev} vs {off})"
                )));
            }
            _ => found = Some(off),
        }
    }
    let target = found.ok_or_else(|| {
        err(format!(
            "the kernel has no struct {essential} with field {}",
            names.join(".")
        ))
    })?;
    Ok(FieldOffset {
        local: local_bits / 8,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds BTF blobs for tests: named structs, pointers and ints.
    #[derive(Default)]
    struct Builder {
        types: Vec<u8>,
        strings: Vec<u8>,
        next: u32,
    }

    impl Builder {
        fn new() -> Self {
            Self {
                types: Vec::new(),
                strings: vec![0],
                next: 1,
            }
        }
        fn name(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }
        fn push(
            &mut self,
            name: &str,
            kind: u8,
            vlen: u32,
            size_or_type: u32,
            extra: &[u32],
        ) -> u32 {
            let name = self.name(name);
            for w in [name, (u32::from(kind) << 24) | vlen, size_or_type]
                .iter()
                .chain(extra)
            {
                self.types.extend_from_slice(&w.to_le_bytes());
            }
            self.next += 1;
            self.next - 1
        }
        fn int(&mut self, name: &str, size: u32) -> u32 {
            self.push(name, KIND_INT, 0, size, &[size * 8])
        }
        fn ptr(&mut self, to: u32) -> u32 {
            self.push("", KIND_PTR, 0, to, &[])
        }
        /// `members`: (name, type id, byte offset).
        fn record(&mut self, kind: u8, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
            let mut extra = Vec::new();
            for (n, t, off) in members {
                extra.extend([self.name(n), *t, off * 8]);
            }
            self.push(name, kind, members.len() as u32, size, &extra)
        }
        fn blob(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            for w in [
                24u32,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strings.len() as u32,
            ] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// The local side, as clang emits it from `kernel_types.h`: every field at offset 0.
    fn local() -> (Vec<u8>, u32) {
        let mut b = Builder::new();
        let u64t = b.int("unsigned long long", 8);
        let kn = b.record(KIND_STRUCT, "kernfs_node", 8, &[("id", u64t, 0)]);
        let pkn = b.ptr(kn);
        let cg = b.record(KIND_STRUCT, "cgroup", 8, &[("kn", pkn, 0)]);
        let pcg = b.ptr(cg);
        let scd = b.record(KIND_STRUCT, "sock_cgroup_data", 8, &[("cgroup", pcg, 0)]);
        let sock = b.record(KIND_STRUCT, "sock", 8, &[("sk_cgrp_data", scd, 0)]);
        let us = b.record(KIND_STRUCT, "unix_sock", 8, &[("sk", sock, 0)]);
        (b.blob(), us)
    }

    /// A kernel-like side: real offsets, and `sk_cgrp_data` reached through an anonymous
    /// union member, as C allows.
    fn kernel(cgroup_ptr_is_int: bool) -> Vec<u8> {
        let mut b = Builder::new();
        let u64t = b.int("u64", 8);
        let kn = b.record(
            KIND_STRUCT,
            "kernfs_node",
            136,
            &[("flags", u64t, 0), ("id", u64t, 96)],
        );
        let pkn = b.ptr(kn);
        let cg = b.record(
            KIND_STRUCT,
            "cgroup",
            2240,
            &[("self", u64t, 0), ("kn", pkn, 288)],
        );
        let pcg = if cgroup_ptr_is_int { u64t } else { b.ptr(cg) };
        let scd = b.record(
            KIND_STRUCT,
            "sock_cgroup_data",
            16,
            &[("cgroup", pcg, 0), ("classid", u64t, 8)],
        );
        let anon = b.record(
            KIND_UNION,
            "",
            16,
            &[("sk_cgrp_data", scd, 0), ("other", u64t, 0)],
        );
        let sock = b.record(
            KIND_STRUCT,
            "sock",
            760,
            &[("common", u64t, 0), ("", anon, 672)],
        );
        b.record(KIND_STRUCT, "unix_sock", 1152, &[("sk", sock, 0)]);
        b.blob()
    }

    fn relo(type_id: u32, access: &str) -> CoreRelo {
        CoreRelo {
            insn_off: 0,
            type_id,
            access: access.into(),
            kind: CORE_FIELD_BYTE_OFFSET,
        }
    }

    #[test]
    fn field_offsets_follow_names_not_positions() {
        let (lblob, us) = local();
        let kblob = kernel(false);
        let (l, k) = (
            Btf::parse(&lblob).expect("local"),
            Btf::parse(&kblob).expect("kernel"),
        );
        let off = field_byte_offset(&l, &relo(us, "0:0:0:0"), &k).expect("resolve");
        assert_eq!(
            off,
            FieldOffset {
                local: 0,
                target: 672
            }
        );
        let cg = l.struct_id("cgroup").expect("cgroup");
        assert_eq!(
            field_byte_offset(&l, &relo(cg, "0:0"), &k)
                .expect("kn")
                .target,
            288
        );
        let kn = l.struct_id("kernfs_node").expect("kn");
        assert_eq!(
            field_byte_offset(&l, &relo(kn, "0:0"), &k)
                .expect("id")
                .target,
            96
        );
    }

    #[test]
    fn a_field_of_another_shape_does_not_match() {
        let (lblob, us) = local();
        let kblob = kernel(true);
        let (l, k) = (
            Btf::parse(&lblob).expect("local"),
            Btf::parse(&kblob).expect("kernel"),
        );
        let err = field_byte_offset(&l, &relo(us, "0:0:0:0"), &k).expect_err("pointer vs int");
        assert!(matches!(err, ObjectError::Core { .. }), "{err}");
    }

    #[test]
    fn bad_access_strings_are_errors() {
        let (lblob, us) = local();
        let kblob = kernel(false);
        let (l, k) = (
            Btf::parse(&lblob).expect("local"),
            Btf::parse(&kblob).expect("kernel"),
        );
        for access in ["1:0", "0:7", "0:x", "", "0:0:0:0:0:0"] {
            assert!(
                field_byte_offset(&l, &relo(us, access), &k).is_err(),
                "{access}"
            );
        }
        assert!(field_byte_offset(&l, &relo(9999, "0:0"), &k).is_err());
    }

    /// The running kernel's BTF, when there is one, has every field the program reads.
    #[test]
    fn running_kernel_has_the_fields() {
        let Ok(vmlinux) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            return;
        };
        let k = Btf::parse(&vmlinux).expect("kernel BTF parses");
        let (lblob, us) = local();
        let l = Btf::parse(&lblob).expect("local");
        let off = field_byte_offset(&l, &relo(us, "0:0:0:0"), &k).expect("sk_cgrp_data.cgroup");
        assert!(off.target > 0);
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the parser.
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = Btf::parse(&bytes);
            let _ = core_relos(&bytes, &Btf::parse(&local().0).expect("local"), "x");
        }

        /// Corrupting any byte of a valid blob never panics parsing or resolving.
        #[test]
        fn corrupted_blobs_never_panic(at in 0usize..4096, byte in proptest::num::u8::ANY) {
            let (mut lblob, us) = local();
            let n = lblob.len();
            lblob[at % n] = byte;
            let kblob = kernel(false);
            let k = Btf::parse(&kblob).expect("kernel");
            if let Ok(l) = Btf::parse(&lblob) {
                let _ = field_byte_offset(&l, &relo(us, "0:0:0:0"), &k);
            }
        }
    }
}
