//! Where a few fields sit in this kernel's structs, read from its BTF
//! (/sys/kernel/btf/vmlinux): what `ram_cgroup_mkdir` needs to read a new
//! cgroup's id and hierarchy (see `ram_common::maps::CgroupLayout`). The
//! programs are built without CO-RE relocations, so the offsets come in a
//! map instead; this reads only what that needs of the format (the type
//! section's struct and union members, and the strings).

use std::path::Path;

use ram_common::maps::CgroupLayout;

use crate::host::{HostError, Result};

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;

/// One struct or union of the type section: its name and members
/// (name, type id, bit offset).
struct Composite {
    name: u32,
    members: Vec<(u32, u32, u32)>,
}

/// The parts of a BTF blob this module reads.
pub struct Btf {
    strings: Vec<u8>,
    /// By type id (id 0 is void): Some for structs and unions.
    composites: Vec<Option<Composite>>,
}

fn bad(path: &Path, why: impl Into<String>) -> HostError {
    HostError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, why.into()))
}

impl Btf {
    pub fn from_file(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| HostError::io(path, e))?;
        Self::parse(&data).map_err(|why| bad(path, why))
    }

    pub fn parse(data: &[u8]) -> std::result::Result<Self, String> {
        let u32_at = |offset: usize| -> std::result::Result<u32, String> {
            data.get(offset..offset + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| format!("truncated at byte {offset}"))
        };
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err("not little-endian BTF (bad magic)".into());
        }
        let header_len = u32_at(4)? as usize;
        let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
        let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
        let types_start = header_len + type_off;
        let types_end = types_start + type_len;
        let strings = data
            .get(header_len + str_off..header_len + str_off + str_len)
            .ok_or("string section outside the file")?
            .to_vec();
        let mut composites = vec![None];
        let mut at = types_start;
        while at < types_end {
            let name = u32_at(at)?;
            let info = u32_at(at + 4)?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 != 0;
            at += 12;
            // Bytes that follow the common part, by kind.
            let extra = match kind {
                1 | 14 | 17 => 4,             // int, var, decl_tag
                3 => 12,                      // array
                4 | 5 | 15 | 19 => 12 * vlen, // struct, union, datasec, enum64
                6 | 13 => 8 * vlen,           // enum, func_proto
                2 | 7..=12 | 16 | 18 => 0,    // ptr, fwd, typedef, qualifiers, func, float, type_tag
                other => return Err(format!("unknown BTF kind {other}")),
            };
            if kind == KIND_STRUCT || kind == KIND_UNION {
                let mut members = Vec::with_capacity(vlen);
                for m in 0..vlen {
                    let base = at + m * 12;
                    let offset = u32_at(base + 8)?;
                    // With kind_flag, the low 24 bits are the bit offset.
                    let bits = if kind_flag { offset & 0x00ff_ffff } else { offset };
                    members.push((u32_at(base)?, u32_at(base + 4)?, bits));
                }
                composites.push(Some(Composite { name, members }));
            } else {
                composites.push(None);
            }
            at += extra;
        }
        Ok(Btf { strings, composites })
    }

    fn string(&self, offset: u32) -> &[u8] {
        let rest = self.strings.get(offset as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|b| *b == 0).unwrap_or(rest.len())]
    }

    /// The byte offset of `member` in the struct named `name`, looking
    /// into anonymous struct and union members.
    pub fn member_offset(&self, name: &str, member: &str) -> Option<u32> {
        let id = self.composites.iter().position(|c| {
            c.as_ref().is_some_and(|c| self.string(c.name) == name.as_bytes() && !c.members.is_empty())
        })?;
        self.find_member(id, member, 0).map(|bits| bits / 8)
    }

    fn find_member(&self, id: usize, member: &str, base_bits: u32) -> Option<u32> {
        let composite = self.composites.get(id)?.as_ref()?;
        for (name, _, bits) in &composite.members {
            if self.string(*name) == member.as_bytes() {
                return Some(base_bits + bits);
            }
        }
        // Anonymous members (name 0) hold fields of their own.
        composite
            .members
            .iter()
            .filter(|(name, ..)| *name == 0)
            .find_map(|(_, type_id, bits)| self.find_member(*type_id as usize, member, base_bits + bits))
    }

    /// The offsets `ram_cgroup_mkdir` reads.
    pub fn cgroup_layout(&self) -> std::result::Result<CgroupLayout, String> {
        let find = |name: &str, member: &str| {
            self.member_offset(name, member).ok_or_else(|| format!("struct {name} has no member {member}"))
        };
        Ok(CgroupLayout {
            ready: 1,
            cgroup_kn: find("cgroup", "kn")?,
            cgroup_root: find("cgroup", "root")?,
            kernfs_node_id: find("kernfs_node", "id")?,
            cgroup_root_hierarchy_id: find("cgroup_root", "hierarchy_id")?,
            _pad: 0,
        })
    }
}

/// This kernel's offsets, from its BTF.
pub fn kernel_cgroup_layout() -> Result<CgroupLayout> {
    let path = Path::new(VMLINUX);
    Btf::from_file(path)?.cgroup_layout().map_err(|why| bad(path, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob with `struct s { int a; union { long b; int c; }; }`.
    fn blob() -> Vec<u8> {
        let strings = b"\0s\0a\0b\0c\0int\0long\0".to_vec();
        let (s, a, b, c, int, long) = (1u32, 3, 5, 7, 9, 13);
        let mut types = Vec::new();
        let mut push = |words: &[u32]| words.iter().for_each(|w| types.extend_from_slice(&w.to_le_bytes()));
        // 1: int
        push(&[int, 1 << 24, 4, 32]);
        // 2: long
        push(&[long, 1 << 24, 8, 64]);
        // 3: anonymous union { long b; int c; }
        push(&[0, (5 << 24) | 2, 8, b, 2, 0, c, 1, 0]);
        // 4: struct s { int a; <union at bit 64> }
        push(&[s, (4 << 24) | 2, 16, a, 1, 0, 0, 3, 64]);
        let mut data = Vec::new();
        for word in [0x0001_eb9f_u32, 24, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
            data.extend_from_slice(&word.to_le_bytes());
        }
        data.extend_from_slice(&types);
        data.extend_from_slice(&strings);
        data
    }

    #[test]
    fn finds_members_directly_and_inside_anonymous_unions() {
        let btf = Btf::parse(&blob()).expect("parse");
        assert_eq!(btf.member_offset("s", "a"), Some(0));
        assert_eq!(btf.member_offset("s", "b"), Some(8));
        assert_eq!(btf.member_offset("s", "c"), Some(8));
        assert_eq!(btf.member_offset("s", "d"), None);
        assert_eq!(btf.member_offset("t", "a"), None);
    }

    #[test]
    fn refuses_what_is_not_btf() {
        assert!(Btf::parse(b"not btf at all, not at all").is_err());
        let mut truncated = blob();
        truncated.truncate(40);
        assert!(Btf::parse(&truncated).is_err());
    }

    #[test]
    fn this_kernels_cgroup_layout_when_it_has_btf() {
        // The running kernel's own BTF, where there is one (not a fixture:
        // what ramd will read on this very host).
        if !Path::new(VMLINUX).exists() {
            return;
        }
        let layout = kernel_cgroup_layout().expect("cgroup layout from vmlinux BTF");
        assert_eq!(layout.ready, 1);
        assert!(layout.cgroup_kn > 0 && layout.cgroup_root > 0, "{layout:?}");
    }
}
