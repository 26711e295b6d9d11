//! Just enough of ELF64 (little-endian, `EM_BPF`) to read a clang-built BPF object:
//! sections by name, the symbol table and `SHT_REL` relocations. Every read is
//! bounds-checked; a malformed object is an [`ObjectError`], never a panic.

use crate::error::ObjectError;

const EM_BPF: u16 = 247;
const SHT_SYMTAB: u32 = 2;
const SHT_REL: u32 = 9;

/// Little-endian field reads over a byte slice.
pub(crate) trait Le {
    fn u16_at(&self, off: usize) -> Result<u16, ObjectError>;
    fn u32_at(&self, off: usize) -> Result<u32, ObjectError>;
    fn u64_at(&self, off: usize) -> Result<u64, ObjectError>;
    fn sub(&self, off: usize, len: usize) -> Result<&[u8], ObjectError>;
}

impl Le for [u8] {
    fn u16_at(&self, off: usize) -> Result<u16, ObjectError> {
        let b = self.sub(off, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32_at(&self, off: usize) -> Result<u32, ObjectError> {
        let b = self.sub(off, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64_at(&self, off: usize) -> Result<u64, ObjectError> {
        let b = self.sub(off, 8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
    fn sub(&self, off: usize, len: usize) -> Result<&[u8], ObjectError> {
        off.checked_add(len)
            .and_then(|end| self.get(off..end))
            .ok_or(ObjectError::Truncated { offset: off, len })
    }
}

/// Converts a file offset or size to `usize`.
pub(crate) fn us(v: u64) -> Result<usize, ObjectError> {
    usize::try_from(v).map_err(|_| ObjectError::Truncated {
        offset: usize::MAX,
        len: 0,
    })
}

/// One section header.
#[derive(Debug, Clone)]
pub(crate) struct Section<'a> {
    pub(crate) index: usize,
    pub(crate) name: &'a str,
    pub(crate) kind: u32,
    pub(crate) link: u32,
    pub(crate) info: u32,
    pub(crate) data: &'a [u8],
}

/// One symbol table entry.
#[derive(Debug, Clone)]
pub(crate) struct Symbol<'a> {
    pub(crate) name: &'a str,
    pub(crate) shndx: u16,
    pub(crate) value: u64,
    pub(crate) size: u64,
}

/// One `Elf64_Rel`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rel {
    pub(crate) offset: u64,
    pub(crate) sym: usize,
}

/// A parsed object: its sections and symbols borrow the input bytes.
#[derive(Debug)]
pub(crate) struct Elf<'a> {
    pub(crate) sections: Vec<Section<'a>>,
    pub(crate) symbols: Vec<Symbol<'a>>,
}

fn cstr_at(table: &[u8], off: usize) -> Result<&str, ObjectError> {
    let rest = table.get(off..).ok_or(ObjectError::Truncated {
        offset: off,
        len: 1,
    })?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(ObjectError::BadString { offset: off })?;
    std::str::from_utf8(&rest[..end]).map_err(|_| ObjectError::BadString { offset: off })
}

impl<'a> Elf<'a> {
    /// Parses the section headers and the symbol table.
    pub(crate) fn parse(data: &'a [u8]) -> Result<Self, ObjectError> {
        let ident = data.sub(0, 16)?;
        if &ident[..4] != b"\x7fELF" || ident[4] != 2 || ident[5] != 1 {
            return Err(ObjectError::NotElf64Le);
        }
        let machine = data.u16_at(18)?;
        if machine != EM_BPF {
            return Err(ObjectError::NotBpf { machine });
        }
        let shoff = us(data.u64_at(0x28)?)?;
        let shentsize = usize::from(data.u16_at(0x3a)?);
        let shnum = usize::from(data.u16_at(0x3c)?);
        let shstrndx = usize::from(data.u16_at(0x3e)?);
        if shentsize < 64 {
            return Err(ObjectError::NotElf64Le);
        }
        let mut raw = Vec::with_capacity(shnum);
        for i in 0..shnum {
            let at = shoff
                .checked_add(i * shentsize)
                .ok_or(ObjectError::Truncated {
                    offset: shoff,
                    len: 64,
                })?;
            let h = data.sub(at, 64)?;
            let offset = us(h.u64_at(24)?)?;
            let size = us(h.u64_at(32)?)?;
            let kind = h.u32_at(4)?;
            // SHT_NOBITS sections (.bss) have no bytes in the file.
            let bytes = if kind == 8 {
                &[][..]
            } else {
                data.sub(offset, size)?
            };
            raw.push((h.u32_at(0)?, kind, h.u32_at(40)?, h.u32_at(44)?, bytes));
        }
        let shstr = raw
            .get(shstrndx)
            .map(|r| r.4)
            .ok_or(ObjectError::NotElf64Le)?;
        let mut sections = Vec::with_capacity(shnum);
        for (index, (name, kind, link, info, data)) in raw.into_iter().enumerate() {
            let name = cstr_at(shstr, name as usize)?;
            sections.push(Section {
                index,
                name,
                kind,
                link,
                info,
                data,
            });
        }
        let mut symbols = Vec::new();
        if let Some(symtab) = sections.iter().find(|s| s.kind == SHT_SYMTAB) {
            let strtab = sections
                .get(symtab.link as usize)
                .map(|s| s.data)
                .ok_or(ObjectError::NotElf64Le)?;
            for e in symtab.data.chunks_exact(24) {
                symbols.push(Symbol {
                    name: cstr_at(strtab, e.u32_at(0)? as usize)?,
                    shndx: e.u16_at(6)?,
                    value: e.u64_at(8)?,
                    size: e.u64_at(16)?,
                });
            }
        }
        Ok(Self { sections, symbols })
    }

    /// The section called `name`.
    pub(crate) fn section(&self, name: &str) -> Result<&Section<'a>, ObjectError> {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ObjectError::MissingSection(name.to_owned()))
    }

    /// The relocations that apply to section `target`.
    pub(crate) fn rels_for(&self, target: usize) -> Result<Vec<Rel>, ObjectError> {
        let mut out = Vec::new();
        for s in self
            .sections
            .iter()
            .filter(|s| s.kind == SHT_REL && s.info as usize == target)
        {
            for e in s.data.chunks_exact(16) {
                let info = e.u64_at(8)?;
                out.push(Rel {
                    offset: e.u64_at(0)?,
                    sym: us(info >> 32)?,
                });
            }
        }
        Ok(out)
    }

    /// The symbol called `name`.
    pub(crate) fn symbol(&self, name: &str) -> Result<&Symbol<'a>, ObjectError> {
        self.symbols
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ObjectError::MissingSymbol(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static OBJECT: &[u8] = include_bytes!("../bpf/capture.bpf.o");

    proptest::proptest! {
        /// Corrupting any byte of the real object never panics the parser or the lookups.
        #[test]
        fn corrupted_objects_never_panic(at in 0usize..8192, byte in proptest::num::u8::ANY) {
            let mut obj = OBJECT.to_vec();
            let n = obj.len();
            obj[at % n] = byte;
            if let Ok(elf) = Elf::parse(&obj) {
                for s in &elf.sections {
                    let _ = elf.rels_for(s.index);
                }
                let _ = elf.section(".BTF");
                let _ = elf.symbol("daemon_tgid");
            }
        }

        /// Truncations never panic.
        #[test]
        fn truncated_objects_never_panic(len in 0usize..4096) {
            let _ = Elf::parse(&OBJECT[..len.min(OBJECT.len())]);
        }
    }
}
